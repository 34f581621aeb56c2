//! Japanese and English for every label, denial reason and tooltip.
//!
//! Every piece of UI text is a [`Msg`] with both translations in one match
//! arm, so a missing translation does not compile. An error type of the
//! viewer's own words itself next to its variants, given a [`Lang`]
//! (`PrintError::message` in `print.rs`): this module imports no other
//! module of the crate, so anything may use it. The language comes from
//! `LC_ALL`, `LC_MESSAGES` or `LANG` (first one set) and can be switched
//! from the menu.

use std::time::Duration;

use irm_core::protocol::DenyReason;

/// The UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 日本語
    Ja,
    /// English
    En,
}

impl Lang {
    /// From the POSIX locale variables: `ja*` is Japanese, anything else English.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let locale = var("LC_ALL")
            .or_else(|| var("LC_MESSAGES"))
            .or_else(|| var("LANG"));
        Self::from_locale(locale.as_deref())
    }

    /// `ja_JP.UTF-8`, `ja` and the like are Japanese.
    pub fn from_locale(locale: Option<&str>) -> Self {
        match locale {
            Some(l) if l.to_ascii_lowercase().starts_with("ja") => Self::Ja,
            _ => Self::En,
        }
    }

    /// The text of `msg` in this language.
    pub fn t(self, msg: Msg) -> &'static str {
        let (en, ja) = msg.texts();
        match self {
            Self::En => en,
            Self::Ja => ja,
        }
    }

    /// The lease, in the status bar: "Lease: 4 min 05 s". It is renewed
    /// in the background, so it is not the time the file can be read.
    pub fn lease_left(self, left: Duration) -> String {
        match self {
            Self::En => format!("Lease: {}", self.duration(left)),
            Self::Ja => format!("利用許可の残り: {}", self.duration(left)),
        }
    }

    /// The status bar's warning that devices were enrolled for the
    /// person's account (PROTOCOL.md §4.3), naming them.
    pub fn new_devices(self, names: &str) -> String {
        match self {
            Self::En => format!(
                "New device on your account: {names}. Not you? Tell your security team now."
            ),
            Self::Ja => format!(
                "あなたのアカウントに新しい端末が登録されました: {names}。心当たりがなければ、すぐにセキュリティ担当に連絡してください。"
            ),
        }
    }

    /// The time left until the file's expiry (the policy's not-after
    /// time, Unix seconds) at `now_unix`: "Expires in 29 d 23 h", "No
    /// expiry", "Expired".
    pub fn file_expiry(self, not_after_unix: Option<u64>, now_unix: u64) -> String {
        match (self, not_after_unix) {
            (Self::En, None) => "No expiry".into(),
            (Self::Ja, None) => "有効期限なし".into(),
            (Self::En, Some(at)) if at <= now_unix => "Expired".into(),
            (Self::Ja, Some(at)) if at <= now_unix => "有効期限切れ".into(),
            (Self::En, Some(at)) => format!(
                "Expires in {}",
                self.duration(Duration::from_secs(at - now_unix))
            ),
            (Self::Ja, Some(at)) => format!(
                "有効期限まで {}",
                self.duration(Duration::from_secs(at - now_unix))
            ),
        }
    }

    /// The tooltip of the expiry: when exactly ("2026-12-23 06:40 UTC").
    pub fn expires_at(self, when: &str) -> String {
        match self {
            Self::En => format!("After {when} nobody can open this file."),
            Self::Ja => format!("{when} 以降、このファイルは誰も開けません。"),
        }
    }

    /// "29 d 23 h", "4 h 05 min", "4 min 05 s" (and in Japanese).
    fn duration(self, left: Duration) -> String {
        let s = left.as_secs();
        let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
        match (self, d, h) {
            (Self::En, 0, 0) => format!("{m} min {s:02} s"),
            (Self::En, 0, h) => format!("{h} h {m:02} min"),
            (Self::En, d, h) => format!("{d} d {h} h"),
            (Self::Ja, 0, 0) => format!("{m}分{s:02}秒"),
            (Self::Ja, 0, h) => format!("{h}時間{m:02}分"),
            (Self::Ja, d, h) => format!("{d}日{h}時間"),
        }
    }

    /// "12 of 1,000 rows".
    pub fn rows_shown(self, shown: usize, total: usize) -> String {
        match self {
            Self::En => format!("{shown} of {total} rows"),
            Self::Ja => format!("{total}行中{shown}行を表示"),
        }
    }

    /// Why the key server refused, and what to do next.
    pub fn deny_reason(self, reason: DenyReason) -> (&'static str, &'static str) {
        use DenyReason as R;
        let ((en, en_next), (ja, ja_next)) = match reason {
            R::CredentialInvalid => (
                (
                    "The key server did not accept this computer's credentials.",
                    "Ask your administrator whether this device is still registered; you may need to enroll it again.",
                ),
                (
                    "鍵サーバーがこのパソコンの資格情報を受け付けませんでした。",
                    "この端末がまだ登録されているか管理者に確認してください。再登録が必要な場合があります。",
                ),
            ),
            R::UserSuspended => (
                (
                    "Your account has been suspended.",
                    "Contact your administrator.",
                ),
                (
                    "あなたのアカウントは停止されています。",
                    "管理者に連絡してください。",
                ),
            ),
            R::DeviceRevoked => (
                (
                    "This computer's access has been revoked.",
                    "Contact your administrator. Files cannot be opened on this device any more.",
                ),
                (
                    "このパソコンのアクセス権は取り消されました。",
                    "管理者に連絡してください。この端末ではファイルを開けなくなりました。",
                ),
            ),
            R::KeyUnknown => (
                (
                    "The file was sealed for a key this key server does not have.",
                    "Ask the sender to seal the file again for your organisation's key server.",
                ),
                (
                    "このファイルは、この鍵サーバーが持たない鍵で保護されています。",
                    "送信者に、所属組織の鍵サーバー向けに保護し直すよう依頼してください。",
                ),
            ),
            R::KeyRetired => (
                (
                    "The key this file was sealed with has been retired.",
                    "Ask the sender for a newly sealed copy.",
                ),
                (
                    "このファイルを保護した鍵は廃止されています。",
                    "送信者に新しく保護したファイルを依頼してください。",
                ),
            ),
            R::PolicyBindingFailed => (
                (
                    "The file's protection settings were altered after it was sealed.",
                    "Do not use this copy. Ask the sender for the file again and tell your administrator.",
                ),
                (
                    "このファイルの保護設定は保護後に改ざんされています。",
                    "このファイルは使わず、送信者に再送を依頼し、管理者に報告してください。",
                ),
            ),
            R::FileRevoked => (
                (
                    "An administrator has revoked this file.",
                    "You can no longer open it. Ask the file's owner if you still need the data.",
                ),
                (
                    "管理者がこのファイルを失効させました。",
                    "このファイルは開けなくなりました。必要な場合はファイルの所有者に相談してください。",
                ),
            ),
            R::NotRecipient => (
                (
                    "You are not one of the people this file is shared with.",
                    "Ask the file's owner to share it with you.",
                ),
                (
                    "あなたはこのファイルの共有相手に含まれていません。",
                    "ファイルの所有者に共有を依頼してください。",
                ),
            ),
            R::NotYetValid => (
                (
                    "This file cannot be opened yet.",
                    "Try again after the start time set by the sender.",
                ),
                (
                    "このファイルはまだ開けません。",
                    "送信者が設定した開始日時以降にもう一度お試しください。",
                ),
            ),
            R::PolicyExpired | R::FileExpired => (
                (
                    "This file has expired.",
                    "Ask the file's owner for a current copy if you still need it.",
                ),
                (
                    "このファイルは有効期限が切れています。",
                    "必要な場合はファイルの所有者に最新のファイルを依頼してください。",
                ),
            ),
            R::RightsRestricted => (
                (
                    "An administrator has restricted this file; no rights are left for you.",
                    "Contact your administrator.",
                ),
                (
                    "管理者がこのファイルを制限したため、あなたの権限はありません。",
                    "管理者に連絡してください。",
                ),
            ),
            R::RightNotGranted => (
                (
                    "Your permission does not include this action.",
                    "Ask the file's owner for the right if you need it.",
                ),
                (
                    "この操作の権限がありません。",
                    "必要な場合はファイルの所有者に権限を依頼してください。",
                ),
            ),
            R::RoleRequired => (
                (
                    "This needs an administrator or auditor role.",
                    "Contact your administrator.",
                ),
                (
                    "管理者または監査者の役割が必要です。",
                    "管理者に連絡してください。",
                ),
            ),
            R::EnrollmentCodeInvalid => (
                (
                    "The enrollment code is not valid.",
                    "Ask your administrator for a new enrollment code.",
                ),
                (
                    "登録コードが無効です。",
                    "管理者に新しい登録コードを依頼してください。",
                ),
            ),
            R::ExportApprovalRequired => (
                (
                    "Taking this much out of the file (saving it, or copying or printing many rows) needs administrators' approval first.",
                    "Ask for it with `irm export request FILE --reason TICKET` (add `--for copy` or `--for print` for a copy or print); once two administrators approve, try again within an hour.",
                ),
                (
                    "このファイルからこれだけの内容を持ち出す(保存、または多数の行のコピーや印刷)には、先に管理者の承認が必要です。",
                    "`irm export request ファイル --reason チケット番号` で申請し(コピーは `--for copy`、印刷は `--for print` を付ける)、管理者2名の承認後1時間以内にもう一度実行してください。",
                ),
            ),
            R::StateIntegrity => (
                (
                    "The key server refused: its records failed an integrity check.",
                    "Tell your security team now: someone may have changed the key server's database.",
                ),
                (
                    "鍵サーバーの記録が整合性検査に失敗したため拒否されました。",
                    "直ちにセキュリティ担当に連絡してください。鍵サーバーのデータベースが直接書き換えられた可能性があります。",
                ),
            ),
            R::StepUpRequired => (
                (
                    "Your access is paused for review: the key server saw far more activity than usual (for example many files in a few minutes).",
                    "Call your supervisor or security team. Access to customer files is recorded and reviewed; it opens again once two administrators have released it.",
                ),
                (
                    "通常より多くの操作(短時間に多数のファイルを開くなど)が検知されたため、アクセスは確認のため一時停止されています。",
                    "上長またはセキュリティ担当に連絡してください。顧客ファイルへのアクセスは記録・確認されています。管理者2名が解除すると再び開けます。",
                ),
            ),
            R::ServerSealed => (
                (
                    "The key server has just restarted and its keys are still locked.",
                    "Try again in a few minutes; the people who hold its key shares are unlocking it.",
                ),
                (
                    "鍵サーバーは再起動直後で、鍵がまだロックされています。",
                    "数分後にもう一度お試しください。鍵の分割保管者がロックを解除しています。",
                ),
            ),
            _ => (
                (
                    "The key server refused to open this file.",
                    "Contact your administrator.",
                ),
                (
                    "鍵サーバーがこのファイルを開くことを拒否しました。",
                    "管理者に連絡してください。",
                ),
            ),
        };
        match self {
            Self::En => (en, en_next),
            Self::Ja => (ja, ja_next),
        }
    }
}

/// Every fixed piece of UI text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// Menu: language.
    Language,
    /// Menu: watermark toggle (only when the grant waives it).
    ShowWatermark,
    /// Passphrase field label.
    Passphrase,
    /// Unlock button.
    Unlock,
    /// Heading of the passphrase screen.
    PassphrasePrompt,
    /// Spinner text.
    Opening,
    /// Copy button.
    Copy,
    /// Copy button tooltip.
    CopyHelp,
    /// Print button.
    Print,
    /// Export button.
    Export,
    /// Filter box label.
    Filter,
    /// Tooltip: no copy right.
    NoCopyRight,
    /// Tooltip: no print right.
    NoPrintRight,
    /// Tooltip: no export right.
    NoExportRight,
    /// Tooltip: the lease has ended.
    LeaseEnded,
    /// Status: copying is off.
    CopyingOff,
    /// The status bar's warning that the key server's audit log went back.
    AuditLogWentBack,
    /// Heading: the open document was closed.
    Closed,
    /// Heading: the file could not be opened.
    CannotOpen,
    /// "What to do next:"
    WhatNext,
    /// Try-again button.
    TryAgain,
    /// Quit button.
    Quit,
    /// Expired lease.
    ExpiredTitle,
    /// What to do about an expired lease.
    ExpiredNext,
    /// Server unreachable.
    UnreachableTitle,
    /// What to do when the server is unreachable.
    UnreachableNext,
    /// Not enrolled.
    NotEnrolledTitle,
    /// What to do when not enrolled.
    NotEnrolledNext,
    /// Wrong passphrase.
    WrongPassphraseTitle,
    /// What to do about a wrong passphrase.
    WrongPassphraseNext,
    /// Corrupt or not a sealed file.
    CorruptTitle,
    /// What to do about a corrupt file.
    CorruptNext,
    /// Something else failed.
    OtherTitle,
    /// What to do about something else.
    OtherNext,
    /// Usage report refused or failed: the copy was withdrawn.
    CopyNotRecorded,
    /// What to do when a copy could not be recorded.
    CopyNotRecordedNext,
    /// What to do without the copy right.
    AskForCopyRight,
    /// Button: close a message.
    Dismiss,
    /// Button: size the columns to fit the window.
    FitColumns,
    /// Tooltip of the fit-columns button.
    FitColumnsHelp,
    /// Status: copied.
    Copied,
    /// Status label before the encoding name.
    Encoding,
    /// Export dialog: path label.
    SaveAs,
    /// Export dialog: save button.
    Save,
    /// Export dialog: cancel button.
    Cancel,
    /// Export tooltip.
    ExportHelp,
    /// Status: exporting.
    Exporting,
    /// Status: exported.
    Exported,
    /// Status: export failed.
    ExportFailed,
    /// "Technical detail:"
    Detail,
    /// Print tooltip.
    PrintHelp,
    /// Print tooltip when the view is too long.
    PrintTooManyRows,
    /// Status: printing.
    Printing,
    /// Status: printed.
    Printed,
    /// Status: print failed.
    PrintFailed,
    /// What to do when a print failed.
    PrintFailedNext,
    /// Tooltip of the lease in the status bar.
    LeaseHelp,
    /// Before the contact a refused person should call (PROTOCOL.md §12).
    CallContact,
    /// The menu that says what this program is.
    About,
    /// In it: that access is recorded and reviewed (issue #14).
    AboutRecorded,
    /// Heading of the enrollment screen.
    EnrollTitle,
    /// What the enrollment screen is for.
    EnrollIntro,
    /// Enrollment: the invitation field's label.
    Invitation,
    /// Enrollment: what to paste into the invitation field.
    InvitationHint,
    /// Enrollment: the switch to the fields for enrolling without an invitation.
    EnrollManual,
    /// Enrollment: the pasted text holds no usable invitation.
    EnrollBadInvitation,
    /// Enrollment: the server's CA is not the one the invitation names.
    EnrollCaMismatch,
    /// Enrollment: server URL label.
    ServerUrl,
    /// Enrollment: CA file label.
    CaPath,
    /// Enrollment: user name label.
    UserName,
    /// Enrollment: one-time code label.
    EnrollCode,
    /// Enrollment: device name label.
    DeviceName,
    /// Enrollment: passphrase confirmation label.
    PassphraseAgain,
    /// Enrollment: submit button.
    EnrollButton,
    /// Enrollment: spinner text.
    Enrolling,
    /// Status after enrolling.
    Enrolled,
    /// Enrollment: a field is empty.
    EnrollMissing,
    /// Enrollment: the passphrases differ.
    EnrollPassphraseMismatch,
    /// Enrollment: bad server URL.
    EnrollBadUrl,
    /// Enrollment: CA file unreadable.
    EnrollCaUnreadable,
    /// Enrollment: wrong CA.
    EnrollBadCa,
    /// Enrollment: wrong code.
    EnrollWrongCode,
    /// Enrollment: server unreachable.
    EnrollUnreachable,
    /// Enrollment: already enrolled.
    EnrollAlready,
    /// Heading of the open-a-file screen.
    OpenTitle,
    /// How to open a file.
    OpenHint,
    /// Open screen: path field label.
    FilePath,
    /// Open screen: open button.
    OpenButton,
    /// Open screen: go to the parent folder.
    ParentDir,
    /// Open screen: a dropped file is not .irm.
    NotSealedFile,
    /// Label before a workbook's sheet tabs.
    Sheets,
    /// Search box label.
    Search,
    /// Search box tooltip.
    SearchHelp,
    /// Previous-match button tooltip.
    PreviousMatch,
    /// Next-match button tooltip.
    NextMatch,
    /// The search text is in no row.
    NoMatches,
    /// Column header tooltip.
    SortHelp,
    /// Column resize handle tooltip.
    ResizeHelp,
    /// Status while a big table is sorted.
    Sorting,
    /// A kind of file the viewer does not show.
    UnsupportedTitle,
    /// What to do about a kind the viewer does not show.
    UnsupportedNext,
}

impl Msg {
    /// (English, Japanese).
    fn texts(self) -> (&'static str, &'static str) {
        match self {
            Self::Language => ("Language", "言語"),
            Self::ShowWatermark => ("Show watermark", "透かしを表示"),
            Self::Passphrase => ("Passphrase", "パスフレーズ"),
            Self::Unlock => ("Unlock", "ロック解除"),
            Self::PassphrasePrompt => (
                "Enter the passphrase of this computer's credentials to open the file.",
                "ファイルを開くには、このパソコンの資格情報のパスフレーズを入力してください。",
            ),
            Self::Opening => ("Asking the key server…", "鍵サーバーに問い合わせ中…"),
            Self::Copy => ("Copy", "コピー"),
            Self::CopyHelp => (
                "Copies the selected rows (Ctrl+C); every copy is recorded. Click a row, or move with the arrow keys; Shift extends the selection.",
                "選択した行をコピーします(Ctrl+C)。コピーはすべて記録されます。行をクリックするか矢印キーで移動し、Shiftで選択を広げます。",
            ),
            Self::Print => ("Print", "印刷"),
            Self::Export => ("Export", "エクスポート"),
            Self::Filter => ("Filter", "絞り込み"),
            Self::NoCopyRight => (
                "Your permission for this file does not include copying.",
                "このファイルにはコピーの権限がありません。",
            ),
            Self::NoPrintRight => (
                "Your permission for this file does not include printing.",
                "このファイルには印刷の権限がありません。",
            ),
            Self::NoExportRight => (
                "Your permission for this file does not include exporting.",
                "このファイルにはエクスポートの権限がありません。",
            ),
            Self::LeaseEnded => (
                "Your permission has run out; wait for it to be renewed.",
                "権限の有効期間が切れました。更新されるまでお待ちください。",
            ),
            Self::CopyingOff => ("Copying is not permitted", "コピーは許可されていません"),
            Self::AuditLogWentBack => (
                "The key server's audit log went back or was rewritten. Tell your security team now.",
                "鍵サーバーの監査ログが巻き戻されたか書き換えられました。すぐにセキュリティ担当に連絡してください。",
            ),
            Self::Closed => ("The document was closed", "文書は閉じられました"),
            Self::CannotOpen => ("The file cannot be opened", "ファイルを開けません"),
            Self::WhatNext => ("What to do next:", "次にすること:"),
            Self::TryAgain => ("Try again", "再試行"),
            Self::Quit => ("Quit", "終了"),
            Self::ExpiredTitle => (
                "Your permission to view this file ran out and could not be renewed.",
                "このファイルの閲覧権限の有効期間が切れ、更新できませんでした。",
            ),
            Self::ExpiredNext => (
                "Check the network connection and open the file again.",
                "ネットワーク接続を確認して、もう一度ファイルを開いてください。",
            ),
            Self::UnreachableTitle => (
                "The key server cannot be reached.",
                "鍵サーバーに接続できません。",
            ),
            Self::UnreachableNext => (
                "Check the network connection (VPN, Wi-Fi) and try again. If it keeps failing, contact your administrator.",
                "ネットワーク接続(VPN・Wi-Fi)を確認して再試行してください。解決しない場合は管理者に連絡してください。",
            ),
            Self::NotEnrolledTitle => (
                "This computer is not registered with the key server.",
                "このパソコンは鍵サーバーに登録されていません。",
            ),
            Self::NotEnrolledNext => (
                "Ask your administrator for an enrollment code, then restart the viewer to register this computer.",
                "管理者から登録コードを受け取り、ビューアーを起動し直してこのパソコンを登録してください。",
            ),
            Self::WrongPassphraseTitle => (
                "The passphrase is not correct.",
                "パスフレーズが正しくありません。",
            ),
            Self::WrongPassphraseNext => (
                "Enter it again. If you have forgotten it, ask your administrator to enroll this computer again.",
                "もう一度入力してください。忘れた場合は管理者に再登録を依頼してください。",
            ),
            Self::CorruptTitle => (
                "The file is damaged or is not a sealed file.",
                "ファイルが壊れているか、保護されたファイルではありません。",
            ),
            Self::CorruptNext => (
                "Ask the sender for the file again.",
                "送信者にファイルの再送を依頼してください。",
            ),
            Self::OtherTitle => (
                "Something went wrong while opening the file.",
                "ファイルを開く途中で問題が発生しました。",
            ),
            Self::OtherNext => (
                "Try again. If it keeps failing, send the technical detail below to your administrator.",
                "再試行してください。解決しない場合は、下の技術情報を管理者に伝えてください。",
            ),
            Self::CopyNotRecorded => (
                "The copy could not be recorded by the key server, so it was not allowed.",
                "コピーを鍵サーバーに記録できなかったため、許可されませんでした。",
            ),
            Self::CopyNotRecordedNext => (
                "Check the network connection and copy again.",
                "ネットワーク接続を確認して、もう一度コピーしてください。",
            ),
            Self::AskForCopyRight => (
                "Ask the file's owner for the copy right if you need it.",
                "必要な場合はファイルの所有者にコピーの権限を依頼してください。",
            ),
            Self::Dismiss => ("Dismiss", "閉じる"),
            Self::FitColumns => ("Fit columns", "列幅を合わせる"),
            Self::FitColumnsHelp => (
                "Sizes the columns so that all of them fit the window. Double-click a column's edge to fit that column to its content.",
                "すべての列がウィンドウに収まるように列幅を調整します。列の境界をダブルクリックすると、その列を内容に合わせます。",
            ),
            Self::Copied => ("Copied (recorded)", "コピーしました(記録済み)"),
            Self::Encoding => ("Encoding", "文字コード"),
            Self::SaveAs => ("Save as", "保存先"),
            Self::Save => ("Save", "保存"),
            Self::Cancel => ("Cancel", "キャンセル"),
            Self::ExportHelp => (
                "Saves an unprotected copy (tables as UTF-8 CSV, other files as they were sealed); the export is recorded.",
                "保護されていないコピーを保存します(表はUTF-8のCSV、その他は保護前の形式)。エクスポートは記録されます。",
            ),
            Self::Exporting => ("Exporting…", "エクスポート中…"),
            Self::Exported => ("Exported (recorded)", "エクスポートしました(記録済み)"),
            Self::ExportFailed => ("Export failed", "エクスポートに失敗しました"),
            Self::Detail => ("Technical detail:", "技術情報:"),
            Self::PrintHelp => (
                "Prints the rows in view with the watermark (Ctrl+P); the print is recorded.",
                "表示中の行を透かし付きで印刷します(Ctrl+P)。印刷は記録されます。",
            ),
            Self::PrintTooManyRows => (
                "Too many rows to print: narrow the view to at most 1,000 rows with the filter.",
                "印刷する行が多すぎます。絞り込みで1,000行以下にしてください。",
            ),
            Self::Printing => ("Printing…", "印刷中…"),
            Self::Printed => (
                "Sent to the printer (recorded)",
                "プリンターに送りました(記録済み)",
            ),
            Self::PrintFailed => ("Printing failed", "印刷に失敗しました"),
            Self::PrintFailedNext => (
                "Check the printer and try again. If it keeps failing, send the detail to your administrator.",
                "プリンターを確認して再試行してください。解決しない場合は、詳細を管理者に伝えてください。",
            ),
            Self::LeaseHelp => (
                "How long this computer may keep the file open before asking the key server again; renewed automatically.",
                "鍵サーバーに再確認するまでこのファイルを開いておける時間です。自動的に更新されます。",
            ),
            Self::CallContact => ("Please call", "連絡先"),
            Self::About => ("About", "このアプリについて"),
            Self::AboutRecorded => (
                "Access to customer files is recorded and reviewed: every open, copy, print and export is logged with your name and this computer, and the log is checked by administrators and auditors.",
                "顧客ファイルへのアクセスは記録され、確認されます。開く・コピー・印刷・書き出しのたびに、あなたの名前とこのパソコンが記録され、管理者と監査担当がその記録を確認します。",
            ),
            Self::EnrollTitle => ("Register this computer", "このパソコンを登録"),
            Self::EnrollIntro => (
                "This computer has no credentials yet. Paste the invitation your administrator gave you, and choose a passphrase that protects your credentials. Access to customer files is recorded and reviewed.",
                "このパソコンにはまだ資格情報がありません。管理者から受け取った招待を貼り付け、資格情報を守るパスフレーズを決めてください。顧客ファイルへのアクセスは記録され、確認されます。",
            ),
            Self::Invitation => ("Invitation", "招待"),
            Self::InvitationHint => (
                "irm-invite:1?… — one line, or the two lines of two administrators",
                "irm-invite:1?… — 1行、または2人の管理者からの2行",
            ),
            Self::EnrollManual => (
                "No invitation: enter the server, CA certificate file and code instead",
                "招待がない場合: サーバー、CA証明書ファイル、コードを入力する",
            ),
            Self::EnrollBadInvitation => (
                "The invitation is not complete or was changed. Paste the whole line (both lines, if you received two halves), or ask your administrator again.",
                "招待が不完全か、変更されています。行全体(2つに分けて受け取った場合は両方の行)を貼り付けるか、管理者に再度依頼してください。",
            ),
            Self::EnrollCaMismatch => (
                "The server that answered is not the one the invitation names (its certificate fingerprint differs). Nothing was sent and the code is still valid. Check the invitation with your administrator.",
                "応答したサーバーは招待に記載されたサーバーではありません(証明書のフィンガープリントが異なります)。何も送信されておらず、コードはまだ有効です。管理者に招待を確認してください。",
            ),
            Self::ServerUrl => ("Key server URL", "鍵サーバーのURL"),
            Self::CaPath => ("CA certificate file", "CA証明書ファイル"),
            Self::UserName => ("User name", "ユーザー名"),
            Self::EnrollCode => ("One-time code", "ワンタイムコード"),
            Self::DeviceName => ("Device name", "端末名"),
            Self::PassphraseAgain => ("Passphrase (again)", "パスフレーズ(確認)"),
            Self::EnrollButton => ("Register", "登録"),
            Self::Enrolling => ("Registering with the key server…", "鍵サーバーに登録中…"),
            Self::Enrolled => (
                "This computer is registered.",
                "このパソコンを登録しました。",
            ),
            Self::EnrollMissing => ("Fill in every field.", "すべての項目を入力してください。"),
            Self::EnrollPassphraseMismatch => (
                "The two passphrases differ. Enter the same passphrase twice.",
                "2つのパスフレーズが一致しません。同じパスフレーズを2回入力してください。",
            ),
            Self::EnrollBadUrl => (
                "The key server URL is not valid. It looks like https://kas.example:8443.",
                "鍵サーバーのURLが正しくありません。https://kas.example:8443 のような形式です。",
            ),
            Self::EnrollCaUnreadable => (
                "The CA certificate file cannot be read. Check the path.",
                "CA証明書ファイルを読み込めません。パスを確認してください。",
            ),
            Self::EnrollBadCa => (
                "The CA certificate does not fit this key server (or is not a certificate). Use the ca.pem your administrator gave you.",
                "CA証明書がこの鍵サーバーのものではありません(または証明書ではありません)。管理者から受け取った ca.pem を指定してください。",
            ),
            Self::EnrollWrongCode => (
                "The user name or one-time code is not valid (or the code was used or has expired). Check them, or ask your administrator for a new code.",
                "ユーザー名またはワンタイムコードが正しくありません(使用済みか期限切れの可能性もあります)。確認するか、管理者に新しいコードを依頼してください。",
            ),
            Self::EnrollUnreachable => (
                "The key server cannot be reached. Check the URL and the network (VPN, Wi-Fi), then try again.",
                "鍵サーバーに接続できません。URLとネットワーク(VPN・Wi-Fi)を確認して再試行してください。",
            ),
            Self::EnrollAlready => (
                "This computer is already registered.",
                "このパソコンはすでに登録されています。",
            ),
            Self::OpenTitle => ("Open a sealed file", "保護されたファイルを開く"),
            Self::OpenHint => (
                "Drop a .irm file onto this window, or choose one below.",
                "このウィンドウに .irm ファイルをドロップするか、下から選んでください。",
            ),
            Self::FilePath => ("File", "ファイル"),
            Self::OpenButton => ("Open", "開く"),
            Self::ParentDir => ("Up one folder", "上のフォルダーへ"),
            Self::NotSealedFile => (
                "Only sealed files (.irm) can be opened.",
                "開けるのは保護されたファイル(.irm)だけです。",
            ),
            Self::Sheets => ("Sheets:", "シート:"),
            Self::Search => ("Search", "検索"),
            Self::SearchHelp => (
                "Ctrl+F: search. Enter: next match, Shift+Enter: previous match.",
                "Ctrl+F: 検索。Enter: 次の一致、Shift+Enter: 前の一致。",
            ),
            Self::PreviousMatch => ("Previous match (Shift+Enter)", "前の一致 (Shift+Enter)"),
            Self::NextMatch => ("Next match (Enter)", "次の一致 (Enter)"),
            Self::NoMatches => ("No matches", "一致なし"),
            Self::SortHelp => (
                "Click to sort by this column; click again to reverse.",
                "クリックでこの列で並べ替え、もう一度クリックで逆順。",
            ),
            Self::ResizeHelp => ("Drag to resize the column", "ドラッグで列幅を変更"),
            Self::Sorting => ("Sorting…", "並べ替え中…"),
            Self::UnsupportedTitle => (
                "The viewer cannot show this kind of file.",
                "このビューアーではこの種類のファイルを表示できません。",
            ),
            Self::UnsupportedNext => (
                "Ask the sender for it as CSV, Excel, text, PNG or JPEG.",
                "送信者にCSV、Excel、テキスト、PNGまたはJPEG形式での送付を依頼してください。",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_picks_the_language() {
        assert_eq!(Lang::from_locale(Some("ja_JP.UTF-8")), Lang::Ja);
        assert_eq!(Lang::from_locale(Some("ja")), Lang::Ja);
        assert_eq!(Lang::from_locale(Some("en_US.UTF-8")), Lang::En);
        assert_eq!(Lang::from_locale(Some("C")), Lang::En);
        assert_eq!(Lang::from_locale(None), Lang::En);
    }

    #[test]
    fn every_denial_has_both_languages() {
        for reason in DenyReason::ALL {
            let (en, en_next) = Lang::En.deny_reason(reason);
            let (ja, ja_next) = Lang::Ja.deny_reason(reason);
            assert!(!en.is_empty() && !en_next.is_empty());
            assert!(
                !ja.is_ascii() && !ja_next.is_ascii(),
                "{reason:?} has Japanese"
            );
            assert_ne!(en, ja);
        }
    }

    #[test]
    fn lease_formats() {
        assert_eq!(
            Lang::En.lease_left(Duration::from_secs(245)),
            "Lease: 4 min 05 s"
        );
        assert_eq!(
            Lang::Ja.lease_left(Duration::from_secs(245)),
            "利用許可の残り: 4分05秒"
        );
        assert_eq!(
            Lang::Ja.lease_left(Duration::from_secs(3720)),
            "利用許可の残り: 1時間02分"
        );
    }

    #[test]
    fn file_expiry_formats_at_every_scale_and_its_boundary() {
        const NOW: u64 = 1_800_000_000;
        let cases = [
            (None, "No expiry", "有効期限なし"),
            (Some(NOW - 1), "Expired", "有効期限切れ"),
            // not_after is exclusive: at that second the file is expired.
            (Some(NOW), "Expired", "有効期限切れ"),
            (
                Some(NOW + 1),
                "Expires in 0 min 01 s",
                "有効期限まで 0分01秒",
            ),
            (
                Some(NOW + 245),
                "Expires in 4 min 05 s",
                "有効期限まで 4分05秒",
            ),
            (
                Some(NOW + 3720),
                "Expires in 1 h 02 min",
                "有効期限まで 1時間02分",
            ),
            (
                Some(NOW + 30 * 86_400 + 5 * 3600 + 59),
                "Expires in 30 d 5 h",
                "有効期限まで 30日5時間",
            ),
        ];
        for (not_after, en, ja) in cases {
            assert_eq!(Lang::En.file_expiry(not_after, NOW), en, "{not_after:?}");
            assert_eq!(Lang::Ja.file_expiry(not_after, NOW), ja, "{not_after:?}");
        }
    }
}
