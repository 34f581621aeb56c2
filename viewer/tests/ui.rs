//! UI tests over a fixture model (no key server): what is drawn, what is
//! offered, by accessible label, plus two small image snapshots.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use irm_core::Rights;
use irm_core::protocol::DenyReason;
use irm_viewer::app::ViewerApp;
use irm_viewer::i18n::Lang;
use irm_viewer::model::{Document, Failure, Model, OpenDocument, Screen};
use irm_viewer::text::TextEncoding;
use irm_viewer::timing::{self, Timing};
use irm_viewer::watermark::WatermarkIdentity;
use irm_viewer::worker::Event;
use zeroize::Zeroizing;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A customer workbook as Excel saves it: two sheets, Japanese cells.
fn workbook_bytes() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let customers = book.add_worksheet().set_name("顧客").unwrap();
    for (r, row) in [
        ["顧客番号", "氏名", "電話番号"],
        ["1001", "山田 太郎", "03-1234-5678"],
        ["1002", "鈴木 花子", "06-9876-5432"],
    ]
    .iter()
    .enumerate()
    {
        for (c, text) in row.iter().enumerate() {
            customers.write_string(r as u32, c as u16, *text).unwrap();
        }
    }
    let calls = book.add_worksheet().set_name("対応履歴").unwrap();
    calls.write_string(0, 0, "日付").unwrap();
    calls.write_string(0, 1, "内容").unwrap();
    calls.write_string(1, 0, "11月23日").unwrap();
    calls.write_string(1, 1, "住所変更の依頼").unwrap();
    calls.write_number(2, 0, 45984).unwrap();
    calls.write_string(2, 1, "折り返し電話").unwrap();
    book.save_to_buffer().unwrap()
}

/// A small picture: a gradient with a dark band, as PNG bytes.
fn png_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(120, 80, |x, y| {
        if (30..50).contains(&y) {
            image::Rgb([20, 40, 90])
        } else {
            image::Rgb([(x * 2) as u8, 120, (y * 3) as u8])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// What Japanese Excel writes: CP932, CRLF.
const CUSTOMERS: &str = "顧客番号,氏名,フリガナ,電話番号,住所\r\n\
    1001,山田 太郎,ヤマダ タロウ,03-1234-5678,東京都足立区千住1-2-3\r\n\
    1002,鈴木 花子,スズキ ハナコ,06-9876-5432,大阪府大阪市北区梅田4-5\r\n\
    1003,髙橋 一郎,タカハシ イチロウ,011-222-3333,北海道札幌市中央区①番地\r\n";

fn cp932_document() -> Document {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(CUSTOMERS);
    assert!(!unmappable);
    let doc = Document::from_plaintext("customers.csv", &bytes);
    assert_eq!(doc.encoding(), Some(TextEncoding::ShiftJis));
    doc
}

fn open_app(rights: Rights, lang: Lang) -> ViewerApp {
    open_doc(cp932_document(), rights, lang)
}

fn open_doc(doc: Document, rights: Rights, lang: Lang) -> ViewerApp {
    let open = OpenDocument {
        doc: Arc::new(doc),
        rights,
        watermark: WatermarkIdentity {
            user: "yamada.taro".into(),
            display_name: None,
            device: "3f2a9c0d5e6b7a8190a1b2c3d4e5f601".into(),
            opened_at: "2026-11-23 06:40 UTC".into(),
            file_id: FIXTURE_FILE_ID.into(),
            watermark_id: None,
        },
        watermark_required: true,
        // Far enough that the countdown text is the same for a minute.
        lease_deadline: Instant::now() + Duration::from_secs(100 * 3600),
        // "30 d 0 h" for the next half hour, so snapshots stay the same.
        not_after_unix: Some(now_unix() + 30 * 86_400 + 1800),
        notices: Vec::new(),
        audit_alarm: None,
    };
    app_with(Screen::Open(open), lang)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The file id the fixture's watermark names, and nothing else on screen.
const FIXTURE_FILE_ID: &str = "9d3c61b0e2a84f17a5c4d6e8f0123456";

/// Whether the last frame painted the watermark: a text shape naming the
/// file id (the pixels come from these shapes).
fn watermark_painted(harness: &Harness<'_, ViewerApp>) -> bool {
    harness
        .output()
        .shapes
        .iter()
        .any(|clipped| match &clipped.shape {
            egui::Shape::Text(text) => text.galley.text().contains(FIXTURE_FILE_ID),
            _ => false,
        })
}

/// Every accessible label on screen, to see whether anything appeared.
fn labels(harness: &Harness<'_, ViewerApp>) -> std::collections::BTreeSet<String> {
    harness
        .query_all_by(|_| true)
        .filter_map(|node| node.accesskit_node().label())
        .collect()
}

fn app_with(screen: Screen, lang: Lang) -> ViewerApp {
    ViewerApp::new(
        Model {
            file_name: "customers.csv.irm".into(),
            screen,
            lang,
        },
        None,
    )
}

fn harness(app: ViewerApp) -> Harness<'static, ViewerApp> {
    harness_sized(app, egui::vec2(640.0, 260.0))
}

fn harness_sized(app: ViewerApp, size: egui::Vec2) -> Harness<'static, ViewerApp> {
    let mut harness = Harness::builder()
        .with_size(size)
        .wgpu()
        .with_context_setup(irm_viewer::fonts::install)
        .build_ui_state(|ui, app: &mut ViewerApp| app.show(ui), app);
    harness.run();
    harness
}

fn weak_doc(app: &ViewerApp) -> Weak<Document> {
    Arc::downgrade(&app.model.open().expect("an open document").doc)
}

fn copied_text(harness: &Harness<'_, ViewerApp>) -> Option<String> {
    harness
        .output()
        .platform_output
        .commands
        .iter()
        .find_map(|c| match c {
            egui::OutputCommand::CopyText(t) => Some(t.clone()),
            _ => None,
        })
}

/// The About menu tells staff that access is recorded and reviewed, in
/// both languages (issue #14).
#[test]
fn the_about_menu_says_access_is_recorded_and_reviewed() {
    for (lang, menu, text) in [
        (
            Lang::En,
            "About",
            "Access to customer files is recorded and reviewed",
        ),
        (
            Lang::Ja,
            "このアプリについて",
            "顧客ファイルへのアクセスは記録され、確認されます",
        ),
    ] {
        let mut harness = harness(open_app(Rights::VIEW, lang));
        harness.get_by_label(menu).click();
        harness.run();
        // A label's text is its accessibility value.
        let shown = harness
            .query_all_by(|node| {
                node.label()
                    .or_else(|| node.value())
                    .is_some_and(|l| l.starts_with(text))
            })
            .count();
        assert!(shown > 0, "{lang:?}: {:?}", labels(&harness));
    }
}

#[test]
fn cp932_csv_renders_japanese_with_the_watermark() {
    let mut harness = harness(open_app(Rights::VIEW, Lang::En));
    // The cells are real text in the accessibility tree...
    harness.get_by_label("山田 太郎");
    harness.get_by_label("大阪府大阪市北区梅田4-5");
    harness.get_by_label("顧客番号");
    harness.get_by_label("3 of 3 rows");
    harness.get_by_label("Encoding: Shift_JIS (CP932)");
    // ...and real glyphs under the tiled watermark in the picture.
    harness.snapshot("cp932_view_only_watermarked");
}

#[test]
fn a_new_device_on_the_account_stays_in_the_status_bar_in_both_languages() {
    let notice = irm_core::protocol::Notice {
        kind: irm_core::protocol::NoticeKind::NewDevice,
        at: now_unix(),
        device_id: "ab".repeat(16),
        device_name: "laptop-2".into(),
        code_origin: "request=00 requested_by=admin approved_by=admin2".into(),
    };
    for (lang, text) in [
        (
            Lang::En,
            "New device on your account: laptop-2. Not you? Tell your security team now.",
        ),
        (
            Lang::Ja,
            "あなたのアカウントに新しい端末が登録されました: laptop-2。心当たりがなければ、すぐにセキュリティ担当に連絡してください。",
        ),
    ] {
        let mut app = open_app(Rights::VIEW, lang);
        let Screen::Open(open) = &mut app.model.screen else {
            panic!("an open document")
        };
        open.notices.push(notice.clone());
        let harness = harness_sized(app, egui::vec2(1400.0, 260.0));
        harness.get_by_label(text);
    }
    // Without a notice there is no such line.
    let harness = harness(open_app(Rights::VIEW, Lang::En));
    assert!(
        harness
            .query_by_label_contains("New device on your account")
            .is_none()
    );
}

/// The device witnessed a newer audit checkpoint than the server signs now
/// (PROTOCOL.md §9.2): the status bar says so in red, in both languages.
#[test]
fn a_log_that_went_back_is_shown_in_the_status_bar() {
    for (lang, text) in [
        (
            Lang::En,
            "The key server's audit log went back or was rewritten. Tell your security team now.",
        ),
        (
            Lang::Ja,
            "鍵サーバーの監査ログが巻き戻されたか書き換えられました。すぐにセキュリティ担当に連絡してください。",
        ),
    ] {
        let mut app = open_app(Rights::VIEW, lang);
        let Screen::Open(open) = &mut app.model.screen else {
            panic!("an open document")
        };
        open.audit_alarm = Some("the key server's audit log went back".into());
        let harness = harness_sized(app, egui::vec2(1600.0, 260.0));
        harness.get_by_label(text);
    }
    let harness = harness(open_app(Rights::VIEW, Lang::En));
    assert!(
        harness
            .query_by_label_contains("audit log went back")
            .is_none()
    );
}

#[test]
fn view_only_offers_no_copy_print_or_export() {
    let mut harness = harness(open_app(Rights::VIEW, Lang::En));
    // No Copy button at all; Print and Export are there but disabled,
    // saying why.
    assert!(harness.query_by_label("Copy").is_none(), "no Copy button");
    for (label, why) in [
        (
            "Print",
            "Your permission for this file does not include printing.",
        ),
        (
            "Export",
            "Your permission for this file does not include exporting.",
        ),
    ] {
        assert!(harness.get_by_label(label).accesskit_node().is_disabled());
        harness.get_by_label(label).hover();
        harness.run();
        harness.get_by_label(why);
    }
    // Nor does Ctrl+P print.
    harness.key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::P]);
    harness.run();
    assert!(harness.query_by_label("Printing…").is_none());

    harness.get_by_label("Copying is not permitted").hover();
    harness.run();
    harness.get_by_label("Your permission for this file does not include copying.");

    // Ctrl+C (and the Copy event it becomes) puts nothing on the clipboard.
    harness.event(egui::Event::Copy);
    harness.key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::C]);
    harness.step();
    assert_eq!(copied_text(&harness), None);
    assert!(!harness.state().copy_pending());
}

#[test]
fn with_the_copy_right_a_row_is_copied_once_the_server_recorded_it() {
    let mut harness = harness(open_app(Rights::VIEW | Rights::COPY, Lang::En));
    let copy = harness.get_by_label("Copy");
    assert!(copy.accesskit_node().is_disabled(), "nothing selected yet");
    harness.get_by_label("2").click();
    harness.run();
    assert!(!harness.get_by_label("Copy").accesskit_node().is_disabled());
    harness.get_by_label("Copy").click();
    harness.run();
    // Held back until the worker reports that the key server recorded it.
    assert_eq!(copied_text(&harness), None);
    assert!(harness.state().copy_pending());
    harness
        .state_mut()
        .handle_event(Event::CopyReported(Ok(())));
    harness.step();
    assert_eq!(
        copied_text(&harness).as_deref(),
        Some("1002\t鈴木 花子\tスズキ ハナコ\t06-9876-5432\t大阪府大阪市北区梅田4-5")
    );
    harness.run();
    harness.get_by_label("Copied (recorded)");
}

#[test]
fn with_the_print_right_print_waits_for_the_worker_then_says_so() {
    let mut harness = harness(open_app(Rights::VIEW | Rights::PRINT, Lang::En));
    let print = harness.get_by_label("Print");
    assert!(!print.accesskit_node().is_disabled());
    print.hover();
    harness.run();
    harness.get_by_label(
        "Prints the rows in view with the watermark (Ctrl+P); the print is recorded.",
    );
    harness.get_by_label("Print").click();
    harness.run();
    harness.get_by_label("Printing…");
    assert!(
        harness.get_by_label("Print").accesskit_node().is_disabled(),
        "one print at a time"
    );
    harness.state_mut().handle_event(Event::Printed(Ok(1)));
    harness.run();
    harness.get_by_label("Sent to the printer (recorded)");
    assert!(!harness.get_by_label("Print").accesskit_node().is_disabled());
    // Ctrl+P does the same as the button.
    harness.key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::P]);
    harness.run();
    harness.get_by_label("Printing…");
}

#[test]
fn a_copy_the_server_refuses_never_reaches_the_clipboard() {
    let cases = [
        // An administrator took the right away after the grant.
        (
            Failure::Denied(DenyReason::RightNotGranted),
            "Not copied: your permission for this file does not include copying.",
        ),
        (
            Failure::Unreachable("connection refused".into()),
            "The copy could not be recorded by the key server, so it was not allowed.",
        ),
    ];
    for (failure, says) in cases {
        let mut harness = harness(open_app(Rights::VIEW | Rights::COPY, Lang::En));
        harness.get_by_label("1").click();
        harness.run();
        harness.get_by_label("Copy").click();
        harness.run();
        assert!(harness.state().copy_pending());
        assert_eq!(harness.state().pending_copy_rows(), Some(1));
        harness
            .state_mut()
            .handle_event(Event::CopyReported(Err(failure)));
        harness.step();
        assert_eq!(copied_text(&harness), None);
        harness.run();
        harness.get_by_label(says);
        // Dismissed, it goes.
        harness.get_by_label("Dismiss").click();
        harness.run();
        assert!(harness.query_by_label(says).is_none());
    }
}

#[test]
fn revoked_while_open_closes_and_wipes_the_document() {
    let mut harness = harness(open_app(Rights::VIEW, Lang::En));
    let doc = weak_doc(harness.state());
    harness
        .state_mut()
        .handle_event(Event::Closed(Failure::Denied(DenyReason::FileRevoked)));
    harness.run();
    assert!(
        doc.upgrade().is_none(),
        "the plaintext was dropped (and zeroized)"
    );
    assert!(harness.query_by_label("山田 太郎").is_none());
    harness.get_by_label("The document was closed");
    harness.get_by_label("An administrator has revoked this file.");
    harness.get_by_label("What to do next:");
    harness.get_by_label("Quit");
    assert!(harness.query_by_label("Try again").is_none());
    harness.snapshot("revoked_while_open");
}

#[test]
fn the_lease_ends_on_the_ui_clock_even_if_the_worker_is_silent() {
    let mut app = open_app(Rights::all(), Lang::En);
    if let Screen::Open(open) = &mut app.model.screen {
        open.lease_deadline = Instant::now();
    }
    let doc = weak_doc(&app);
    let harness = harness(app);
    assert!(doc.upgrade().is_none());
    harness.get_by_label("Your permission to view this file ran out and could not be renewed.");
}

#[test]
fn japanese_labels() {
    let mut harness = harness(open_app(Rights::VIEW | Rights::COPY, Lang::Ja));
    harness.get_by_label("言語");
    harness.get_by_label("絞り込み");
    harness.get_by_label("コピー");
    harness.get_by_label("3行中3行を表示");
    harness.get_by_label("文字コード: Shift_JIS (CP932)");
    harness.get_by_label("有効期限まで 30日0時間");
    harness.get_by_label_contains("利用許可の残り: 4日");
    assert!(harness.query_by_label("Copy").is_none());
    assert!(
        harness
            .get_by_label("エクスポート")
            .accesskit_node()
            .is_disabled()
    );
    harness.snapshot("japanese_copy_allowed");
}

#[test]
fn japanese_revoked_screen() {
    let mut harness = harness(open_app(Rights::VIEW, Lang::Ja));
    harness
        .state_mut()
        .handle_event(Event::Closed(Failure::Denied(DenyReason::FileRevoked)));
    harness.run();
    harness.get_by_label("文書は閉じられました");
    harness.get_by_label("管理者がこのファイルを失効させました。");
    harness.get_by_label("次にすること:");
    harness.get_by_label("終了");
}

#[test]
fn denial_screens_say_why_and_what_next() {
    let cases = [
        (
            Failure::Denied(DenyReason::NotRecipient),
            "You are not one of the people this file is shared with.",
        ),
        (
            Failure::Denied(DenyReason::PolicyExpired),
            "This file has expired.",
        ),
        (
            Failure::Unreachable("connection refused".into()),
            "The key server cannot be reached.",
        ),
        (
            Failure::NotEnrolled,
            "This computer is not registered with the key server.",
        ),
        (
            Failure::Corrupt("bad magic".into()),
            "The file is damaged or is not a sealed file.",
        ),
        (
            Failure::Unsupported("application/pdf".into()),
            "The viewer cannot show this kind of file.",
        ),
    ];
    for (failure, says) in cases {
        let harness = harness(app_with(Screen::CannotOpen(failure), Lang::En));
        harness.get_by_label("The file cannot be opened");
        harness.get_by_label(says);
        harness.get_by_label("What to do next:");
    }
}

#[test]
fn the_passphrase_screen_has_a_labelled_field() {
    let harness = harness(app_with(
        Screen::NeedPassphrase {
            error: Some(Failure::WrongPassphrase),
        },
        Lang::En,
    ));
    harness.get_by_label("Passphrase");
    harness.get_by_label("Unlock");
    harness.get_by_label("The passphrase is not correct.");
}

#[test]
fn the_language_menu_switches_to_japanese() {
    let mut harness = harness(open_app(Rights::VIEW, Lang::En));
    harness.get_by_label("Language").click();
    harness.run();
    harness.get_by_label("日本語").click();
    harness.run();
    assert_eq!(harness.state().model.lang, Lang::Ja);
    harness.get_by_label("絞り込み");
}

#[test]
fn with_the_export_right_export_asks_where_and_reports_the_result() {
    let mut harness = harness(open_app(Rights::VIEW | Rights::EXPORT, Lang::En));
    assert!(harness.query_by_label("Copy").is_none());
    let export = harness.get_by_label("Export");
    assert!(!export.accesskit_node().is_disabled());
    export.click();
    harness.run();
    harness.get_by_label("Save as");
    assert!(
        harness
            .query_all_by_value("customers-export.csv")
            .next()
            .is_some()
    );
    harness.get_by_label("Save").click();
    harness.run();
    harness.get_by_label("Exporting…");
    assert!(harness.query_by_label("Save as").is_none());
    harness
        .state_mut()
        .handle_event(Event::Exported(Ok("customers-export.csv".into())));
    harness.run();
    harness.get_by_label("Exported (recorded)");
}

#[test]
fn a_workbook_shows_each_sheet_as_a_tab() {
    let doc = Document::open(
        "customers.xlsx",
        Some(XLSX),
        None,
        Zeroizing::new(workbook_bytes()),
    )
    .expect("the workbook parses");
    let mut harness = harness(open_doc(doc, Rights::VIEW, Lang::Ja));
    harness.get_by_label("顧客");
    harness.get_by_label("山田 太郎");
    harness.get_by_label("2行中2行を表示");
    assert!(harness.query_by_label("住所変更の依頼").is_none());
    harness.get_by_label("対応履歴").click();
    harness.run();
    assert_eq!(harness.state().ui.sheet, 1);
    harness.get_by_label("住所変更の依頼");
    harness.get_by_label("45984");
    assert!(harness.query_by_label("山田 太郎").is_none());
    harness.snapshot("workbook_second_sheet");
}

#[test]
fn a_workbook_exports_its_original_bytes() {
    let bytes = workbook_bytes();
    let doc = Document::open(
        "customers.xlsx",
        Some(XLSX),
        None,
        Zeroizing::new(bytes.clone()),
    )
    .expect("the workbook parses");
    assert_eq!(doc.export_extension(), "xlsx");
    let mut out = Vec::new();
    doc.write_export(&mut out).unwrap();
    assert_eq!(out, bytes);
    let mut harness = harness(open_doc(doc, Rights::VIEW | Rights::EXPORT, Lang::En));
    harness.get_by_label("Export").click();
    harness.run();
    assert!(
        harness
            .query_all_by_value("customers-export.xlsx")
            .next()
            .is_some()
    );
}

#[test]
fn a_picture_is_drawn_under_the_watermark() {
    let doc = Document::open(
        "scan.png",
        Some("image/png"),
        None,
        Zeroizing::new(png_bytes()),
    )
    .expect("the picture decodes");
    let mut harness = harness(open_doc(doc, Rights::VIEW, Lang::En));
    // No table controls for a picture; Export is there, disabled.
    assert!(harness.query_by_label("Filter").is_none());
    assert!(harness.query_by_label("Copy").is_none());
    assert!(
        harness
            .get_by_label("Export")
            .accesskit_node()
            .is_disabled()
    );
    harness.snapshot("picture_watermarked");
    // Closing drops the texture with the document.
    let doc = weak_doc(harness.state());
    harness
        .state_mut()
        .handle_event(Event::Closed(Failure::Denied(DenyReason::FileRevoked)));
    harness.run();
    assert!(doc.upgrade().is_none());
}

#[test]
fn json_is_shown_pretty_printed() {
    let json = r#"{"顧客番号":1001,"氏名":"山田 太郎","タグ":["至急","折り返し"]}"#;
    let doc = Document::open(
        "order.json",
        Some("application/json"),
        None,
        Zeroizing::new(json.as_bytes().to_vec()),
    )
    .expect("text always opens");
    let harness = harness(open_doc(doc, Rights::VIEW, Lang::En));
    harness.get_by_label("  \"氏名\": \"山田 太郎\",");
    harness.get_by_label("    \"至急\",");
    harness.get_by_label("Encoding: UTF-8");
}

#[test]
fn a_damaged_workbook_or_picture_is_a_corrupt_file_not_a_crash() {
    let xlsx = workbook_bytes();
    let png = png_bytes();
    let cases = [
        ("customers.xlsx", XLSX, &xlsx[..xlsx.len() / 2]),
        ("scan.png", "image/png", &png[..png.len() / 2]),
        (
            "scan.jpg",
            "image/jpeg",
            &b"\xFF\xD8\xFF\xE0 not a jpeg"[..],
        ),
    ];
    for (name, media, bytes) in cases {
        let err = Document::open(name, Some(media), None, Zeroizing::new(bytes.to_vec()))
            .expect_err(name);
        // The worker shows it as Failure::Corrupt with this detail.
        let harness = harness(app_with(
            Screen::CannotOpen(Failure::Corrupt(err.to_string())),
            Lang::En,
        ));
        harness.get_by_label("The file is damaged or is not a sealed file.");
        harness.get_by_label(&err.to_string());
    }
}

#[test]
fn clicking_a_header_sorts_and_clicking_again_reverses() {
    let mut harness = harness(open_app(Rights::VIEW, Lang::En));
    harness.get_by_label("電話番号").click();
    harness.run();
    // 011 < 03 < 06 as text.
    assert_eq!(harness.state().ui.table.visible(), [3, 1, 2]);
    harness.get_by_label("電話番号 ▲").click();
    harness.run();
    assert_eq!(harness.state().ui.table.visible(), [2, 1, 3]);
    harness.get_by_label("電話番号 ▼");
    // The numeric column sorts as numbers.
    harness.get_by_label("顧客番号").click();
    harness.run();
    harness.get_by_label("顧客番号 ▲").click();
    harness.run();
    assert_eq!(harness.state().ui.table.visible(), [3, 2, 1]);
}

#[test]
fn with_timing_the_first_frame_with_data_and_a_benchmark_sort_are_reported() {
    // IRM_VIEWER_TIMING=1 and IRM_VIEWER_BENCH_SORT=3, lines kept in memory.
    let timing = Timing::in_memory(Some(3), true);
    let app = open_app(Rights::VIEW, Lang::En).with_timing(timing.clone());
    let mut harness = Harness::builder()
        .with_size(egui::vec2(640.0, 260.0))
        .with_context_setup(irm_viewer::fonts::install)
        .build_ui_state(|ui, app: &mut ViewerApp| app.show(ui), app);
    for _ in 0..8 {
        harness.step();
    }
    let lines = timing.lines();
    let parsed: Vec<Vec<(String, u64)>> = lines
        .iter()
        .map(|l| timing::parse_line(l).unwrap_or_else(|| panic!("a timing line: {l}")))
        .collect();
    let has = |key: &str| {
        parsed
            .iter()
            .filter(|f| f.iter().any(|(k, _)| k == key))
            .count()
    };
    assert_eq!(has("first_frame_at_ms"), 1, "{lines:?}");
    assert_eq!(has("first_data_frame_at_ms"), 1, "{lines:?}");
    assert_eq!(has("sort_ms"), 1, "{lines:?}");
    let data = parsed
        .iter()
        .find(|f| f[0].0 == "first_data_frame_at_ms")
        .expect("the first data line");
    assert!(
        data.iter().any(|(k, v)| k == "vm_hwm_kb" && *v > 0),
        "{data:?}"
    );
    // The sort took the header click's path: 011 < 03 < 06 as text.
    assert_eq!(harness.state().ui.table.visible(), [3, 1, 2]);
    assert!(
        harness
            .output()
            .viewport_output
            .values()
            .any(|v| v.commands.contains(&egui::ViewportCommand::Close)),
        "IRM_VIEWER_TIMING_EXIT: the window closes once everything was measured"
    );
    // No plaintext in any line: only numbers.
    for cell in ["山田", "1001", "03-1234-5678"] {
        assert!(lines.iter().all(|l| !l.contains(cell)), "{lines:?}");
    }
}

#[test]
fn without_timing_nothing_is_measured_and_no_sort_is_started() {
    // Only IRM_VIEWER_TIMING=1 makes a Timing; the others alone do nothing.
    assert!(Timing::from_vars(None, Some("3".as_ref()), Some("1".as_ref())).is_none());
    let mut harness = harness(open_app(Rights::VIEW, Lang::En));
    for _ in 0..4 {
        harness.step();
    }
    assert_eq!(harness.state().ui.table.visible(), [1, 2, 3], "file order");
    assert_eq!(harness.state().ui.table.sort, None);
}

/// `rows` customers, one per line; row i's id is "C{i:05}".
fn many_customers(rows: usize) -> Document {
    let mut csv = String::from("顧客番号,氏名,区分\n");
    for i in 1..=rows {
        let kind = if i % 10 == 0 { "重要" } else { "一般" };
        csv.push_str(&format!("C{i:05},顧客{i}様,{kind}\n"));
    }
    Document::from_plaintext("many.csv", csv.as_bytes())
}

#[test]
fn ctrl_f_searches_and_enter_jumps_to_each_match_in_view() {
    let app = open_doc(many_customers(1000), Rights::VIEW, Lang::En);
    let mut harness = harness_sized(app, egui::vec2(640.0, 400.0));
    assert!(
        harness.query_by_label("C00750").is_none(),
        "row 750 starts off screen"
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    harness.run();
    let field = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "Search");
    assert!(field.is_focused(), "Ctrl+F focuses the search box");
    field.type_text("重要");
    harness.run();
    harness.get_by_label("1 / 100");
    harness.key_press(egui::Key::Enter);
    harness.run();
    harness.get_by_label("2 / 100");
    assert_eq!(harness.state().ui.table.current_match(), Some(19));
    // Shift+Enter goes back, and wraps from the first to the last match.
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    harness.run();
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    harness.run();
    harness.get_by_label("100 / 100");
    // The last match, row 1000, was scrolled into view.
    harness.get_by_label("C01000");
    let (first, last) = harness.state().ui.table.on_screen().expect("rows drawn");
    assert!(first <= 999 && 999 <= last, "{first}..={last}");
    assert!(
        harness.query_by_label("C00010").is_none(),
        "row 10 is off screen now"
    );

    // The buttons do the same as the keys.
    harness.get_by_label("▼").click();
    harness.run();
    harness.get_by_label("1 / 100");
    harness.get_by_label("C00010");
}

#[test]
fn a_search_with_no_match_says_so_in_japanese() {
    let app = open_doc(many_customers(20), Rights::VIEW, Lang::Ja);
    let mut harness = harness(app);
    harness
        .get_by_role_and_label(egui::accesskit::Role::TextInput, "検索")
        .focus();
    harness.run();
    harness
        .get_by_role_and_label(egui::accesskit::Role::TextInput, "検索")
        .type_text("該当しない");
    harness.run();
    harness.get_by_label("一致なし");
    assert!(harness.get_by_label("▼").accesskit_node().is_disabled());
}

#[test]
fn dragging_the_handle_after_a_header_resizes_its_column() {
    let mut harness = harness(open_app(Rights::VIEW, Lang::En));
    let before = harness.state().ui.table.column_widths()[1];
    let header = harness.get_by_label("氏名").rect();
    let next = harness.get_by_label("フリガナ").rect();
    // The handle sits between this header cell and the next.
    let handle = egui::pos2((header.right() + next.left()) / 2.0, header.center().y);
    harness.hover_at(handle);
    harness.run();
    harness.drag_at(handle);
    harness.run();
    harness.hover_at(handle + egui::vec2(60.0, 0.0));
    harness.run();
    harness.drop_at(handle + egui::vec2(60.0, 0.0));
    harness.run();
    let after = harness.state().ui.table.column_widths()[1];
    assert!((after - before - 60.0).abs() < 1.0, "{before} -> {after}");
    // Sorting did not happen by accident.
    assert_eq!(harness.state().ui.table.sort, None);
}

#[test]
fn selected_text_is_copied_only_with_the_copy_right() {
    let memo = "お客様から折り返し依頼\n電話番号 03-1234-5678\n";
    for (rights, copied) in [(Rights::VIEW, false), (Rights::VIEW | Rights::COPY, true)] {
        let doc = Document::open(
            "memo.txt",
            Some("text/plain"),
            None,
            Zeroizing::new(memo.as_bytes().to_vec()),
        )
        .expect("text always opens");
        let mut harness = harness(open_doc(doc, rights, Lang::En));
        // No table controls for text, and no Copy button: copying is by
        // selecting and Ctrl+C.
        assert!(harness.query_by_label("Copy").is_none());
        assert!(harness.query_by_label("Search").is_none());
        // Drag across the line to select it, then copy.
        let line = harness.get_by_label("電話番号 03-1234-5678").rect();
        let (from, to) = (
            line.left_center() + egui::vec2(1.0, 0.0),
            line.right_center(),
        );
        harness.hover_at(from);
        harness.run();
        harness.drag_at(from);
        harness.run();
        harness.hover_at(to);
        harness.run();
        harness.drop_at(to);
        harness.run();
        harness.event(egui::Event::Copy);
        harness.run();
        // With the right the copy waits for the key server to record it;
        // without it nothing reaches the clipboard or the worker.
        assert_eq!(copied_text(&harness), None, "{rights:?}");
        assert_eq!(harness.state().copy_pending(), copied, "{rights:?}");
    }
}

fn with_not_after(mut app: ViewerApp, not_after_unix: Option<u64>) -> ViewerApp {
    if let Screen::Open(open) = &mut app.model.screen {
        open.not_after_unix = not_after_unix;
    }
    app
}

#[test]
fn the_status_bar_shows_the_time_left_until_the_file_expires() {
    let not_after = now_unix() + 30 * 86_400 + 1800;
    let mut window = harness(with_not_after(
        open_app(Rights::VIEW, Lang::En),
        Some(not_after),
    ));
    window.get_by_label("Expires in 30 d 0 h");
    // The lease is shown too, as what it is.
    window.get_by_label_contains("Lease: 4 d ");
    window.get_by_label("Expires in 30 d 0 h").hover();
    window.run();
    let when =
        irm_viewer::watermark::format_utc(std::time::UNIX_EPOCH + Duration::from_secs(not_after));
    window.get_by_label(&format!("After {when} nobody can open this file."));

    // Minutes away, and no expiry at all; in Japanese too.
    let soon = with_not_after(open_app(Rights::VIEW, Lang::En), Some(now_unix() + 290));
    harness(soon).get_by_label_contains("Expires in 4 min");
    let never = with_not_after(open_app(Rights::VIEW, Lang::En), None);
    harness(never).get_by_label("No expiry");
    let never = with_not_after(open_app(Rights::VIEW, Lang::Ja), None);
    harness(never).get_by_label("有効期限なし");
    let soon = with_not_after(open_app(Rights::VIEW, Lang::Ja), Some(now_unix() + 7300));
    harness(soon).get_by_label_contains("有効期限まで 2時間");
}

#[test]
fn a_required_watermark_cannot_be_switched_off() {
    let mut app = open_app(Rights::all(), Lang::En);
    // Even if the flag were set, a grant that requires the mark keeps it.
    app.ui.hide_waived_watermark = true;
    let harness = harness(app);
    assert!(harness.query_by_label("Show watermark").is_none());
    assert!(watermark_painted(&harness));
}

#[test]
fn a_waived_watermark_can_be_switched_off_and_then_none_is_drawn() {
    let mut app = open_app(Rights::VIEW, Lang::En);
    if let Screen::Open(open) = &mut app.model.screen {
        open.watermark_required = false;
    }
    let mut harness = harness(app);
    // Shown until the person switches it off.
    assert!(watermark_painted(&harness));
    harness.get_by_label("Show watermark").click();
    harness.run();
    assert!(harness.state().ui.hide_waived_watermark);
    assert!(
        !watermark_painted(&harness),
        "no watermark once switched off"
    );
    harness.get_by_label("Show watermark").click();
    harness.run();
    assert!(watermark_painted(&harness));
}

#[test]
fn a_print_failure_is_explained_in_the_language_shown() {
    let failure = Failure::Print(irm_viewer::print::PrintError::Rejected {
        program: "lp".into(),
        status: "exit status: 1".into(),
        message: "lp: The printer or class does not exist.".into(),
    });
    for (lang, notice, detail) in [
        (
            Lang::Ja,
            "印刷に失敗しました",
            "印刷コマンド lp が失敗しました(exit status: 1): lp: The printer or class does not exist.",
        ),
        (
            Lang::En,
            "Printing failed",
            "the print command lp failed (exit status: 1): lp: The printer or class does not exist.",
        ),
    ] {
        // Wide enough that the whole status bar, notice included, is on screen.
        let app = open_app(Rights::VIEW | Rights::PRINT, lang);
        let mut harness = harness_sized(app, egui::vec2(1100.0, 260.0));
        harness
            .state_mut()
            .handle_event(Event::Printed(Err(failure.clone())));
        harness.run();
        harness.get_by_label(notice).hover();
        harness.run();
        harness.get_by_label(detail);
    }
}

#[test]
fn right_click_and_dragging_out_offer_no_copy_without_the_copy_right() {
    // egui gives labels, table cells and selectable text no context menu of
    // its own, and cannot drag text out to other programs: so a right-click
    // must open nothing at all (no "Copy" item to bypass the gate), and a
    // drag past the window must put nothing anywhere.
    let memo = "お客様から折り返し依頼\n電話番号 03-1234-5678\n";
    let text_doc = || {
        Document::open(
            "memo.txt",
            Some("text/plain"),
            None,
            Zeroizing::new(memo.as_bytes().to_vec()),
        )
        .expect("text always opens")
    };
    let cases: [(&str, ViewerApp, &str); 2] = [
        ("table", open_app(Rights::VIEW, Lang::En), "山田 太郎"),
        (
            "text",
            open_doc(text_doc(), Rights::VIEW, Lang::En),
            "電話番号 03-1234-5678",
        ),
    ];
    for (kind, app, target) in cases {
        let mut harness = harness(app);
        let menus = |h: &Harness<'_, ViewerApp>| {
            h.query_all_by_role(egui::accesskit::Role::Menu).count()
                + h.query_all_by_role(egui::accesskit::Role::MenuItem).count()
        };
        let (labels_before, menus_before) = (labels(&harness), menus(&harness));
        harness.get_by_label(target).click_secondary();
        harness.run();
        assert_eq!(
            labels(&harness),
            labels_before,
            "{kind}: a right-click opened something"
        );
        assert_eq!(menus(&harness), menus_before, "{kind}: no menu opened");
        assert!(harness.query_by_label("Copy").is_none(), "{kind}");

        // Drag from the text to beyond the window's edge and let go.
        let from = harness.get_by_label(target).rect().center();
        harness.hover_at(from);
        harness.run();
        harness.drag_at(from);
        harness.run();
        let outside = egui::pos2(700.0, 300.0);
        harness.hover_at(outside);
        harness.run();
        harness.drop_at(outside);
        harness.run();
        harness.event(egui::Event::Copy);
        harness.run();
        assert_eq!(copied_text(&harness), None, "{kind}");
        assert!(!harness.state().copy_pending(), "{kind}");
        assert!(
            harness.output().platform_output.commands.is_empty(),
            "{kind}: {:?}",
            harness.output().platform_output.commands
        );
    }
}

/// A legacy .xls (BIFF8) workbook with Japanese text, written once by
/// `tests/fixtures/make_customers_xls.py`.
const CUSTOMERS_XLS: &[u8] = include_bytes!("fixtures/customers.xls");

#[test]
fn a_legacy_xls_workbook_opens_as_sheets_with_japanese_text() {
    let doc = Document::open(
        "customers.xls",
        Some("application/vnd.ms-excel"),
        None,
        Zeroizing::new(CUSTOMERS_XLS.to_vec()),
    )
    .expect("the XLS workbook parses");
    assert_eq!(doc.summary(), "2 sheets");
    assert_eq!(doc.export_extension(), "xls");
    let mut harness = harness(open_doc(doc, Rights::VIEW, Lang::Ja));
    harness.get_by_label("顧客");
    harness.get_by_label("髙橋 一郎");
    harness.get_by_label("大阪府大阪市北区梅田4-5");
    harness.get_by_label("3行中3行を表示");
    harness.get_by_label("対応履歴").click();
    harness.run();
    harness.get_by_label("住所変更の依頼");
    harness.get_by_label("2026-11-23");
    assert!(harness.query_by_label("髙橋 一郎").is_none());
}

#[test]
fn japanese_renders_with_only_the_fonts_the_viewer_ships() {
    // A bare context: egui's own fonts plus irm_viewer::fonts::install, no
    // system font. egui_kittest fails on any glyph no font can draw, so
    // every name, kana and kanji below must come from the bundled font.
    let mut harness = Harness::builder()
        .with_size(egui::vec2(640.0, 260.0))
        .with_context_setup(irm_viewer::fonts::install)
        .build_ui_state(
            |ui, app: &mut ViewerApp| app.show(ui),
            open_app(Rights::VIEW, Lang::Ja),
        );
    harness.run();
    harness.get_by_label("髙橋 一郎");
    harness.get_by_label("北海道札幌市中央区①番地");
    harness.get_by_label("タカハシ イチロウ");
}

// ---- #13 point 4: the viewer from the keyboard ----

/// The first and last rows (positions in the view) drawn last frame.
fn rows_drawn(harness: &Harness<'_, ViewerApp>) -> (usize, usize) {
    harness.state().ui.table.on_screen().expect("rows drawn")
}

#[test]
fn page_keys_home_and_ctrl_end_scroll_the_table() {
    let app = open_doc(many_customers(1000), Rights::VIEW, Lang::En);
    let mut harness = harness_sized(app, egui::vec2(640.0, 400.0));
    harness.get_by_label("C00001");
    let (_, last) = rows_drawn(&harness);
    harness.key_press(egui::Key::PageDown);
    harness.run();
    let (first, _) = rows_drawn(&harness);
    assert!(first > 0, "Page Down scrolled ({first})");
    assert!(harness.query_by_label("C00001").is_none());
    harness.key_press(egui::Key::PageDown);
    harness.run();
    let (second, _) = rows_drawn(&harness);
    assert!(
        second > first,
        "a second page further down ({first} -> {second})"
    );
    harness.key_press(egui::Key::PageUp);
    harness.run();
    assert_eq!(rows_drawn(&harness).0, first, "Page Up goes back a page");
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::End);
    harness.run();
    harness.get_by_label("C01000");
    let (_, end) = rows_drawn(&harness);
    assert_eq!(end, 999, "the last row is drawn");
    harness.key_press(egui::Key::Home);
    harness.run();
    harness.get_by_label("C00001");
    assert_eq!(rows_drawn(&harness), (0, last), "back at the top");
}

#[test]
fn arrow_keys_move_the_cursor_and_shift_extends_the_selection_in_the_view_shown() {
    let app = open_doc(many_customers(1000), Rights::VIEW | Rights::COPY, Lang::En);
    let mut harness = harness_sized(app, egui::vec2(640.0, 400.0));
    let cursor = |h: &Harness<'_, ViewerApp>| h.state().ui.table.cursor();
    let selected = |h: &Harness<'_, ViewerApp>| h.state().ui.table.selected_rows().to_vec();
    assert_eq!(cursor(&harness), None);
    // The first arrow lands on the top row; the next ones move.
    for _ in 0..3 {
        harness.key_press(egui::Key::ArrowDown);
    }
    harness.key_press(egui::Key::ArrowUp);
    harness.run();
    assert_eq!(cursor(&harness), Some(1));
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowDown);
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowDown);
    harness.run();
    assert_eq!(selected(&harness), [2, 3, 4], "data rows 2 to 4");
    harness.key_press(egui::Key::ArrowDown);
    harness.run();
    assert_eq!(selected(&harness), [5], "a plain move drops the range");
    // Shift+End selects to the last row, which comes into view.
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::End);
    harness.run();
    assert_eq!(cursor(&harness), Some(999));
    assert_eq!(selected(&harness).len(), 996);
    harness.get_by_label("C01000");
    // Ctrl+C reports every row selected (here far over the take-out limit).
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::C);
    harness.run();
    assert_eq!(harness.state().pending_copy_rows(), Some(996));
    harness
        .state_mut()
        .handle_event(Event::CopyReported(Err(Failure::Denied(
            DenyReason::ExportApprovalRequired,
        ))));
    harness.run();

    // Filtered and sorted: the cursor moves over what is shown.
    let filter = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "Filter");
    filter.focus();
    harness.run();
    harness
        .get_by_role_and_label(egui::accesskit::Role::TextInput, "Filter")
        .type_text("重要");
    harness.run();
    // The cursor stays on its row (1000 is 重要 too), and Home belongs to
    // the filter box while it has the keyboard...
    harness.key_press(egui::Key::Home);
    harness.run();
    assert_eq!(cursor(&harness), Some(99), "the last of 100 rows shown");
    assert_eq!(selected(&harness), [1000]);
    // ...and to the table once a row is clicked.
    harness.get_by_label("C00980").click();
    harness.run();
    assert_eq!(selected(&harness), [980]);
    harness.key_press(egui::Key::ArrowDown);
    harness.run();
    assert_eq!(selected(&harness), [990], "the next row shown");
    harness.get_by_label("顧客番号").click(); // sort ascending: no change
    harness.run();
    harness.get_by_label("顧客番号 ▲").click(); // descending
    harness.run();
    assert_eq!(selected(&harness), [990], "the cursor stays on its row");
    harness.key_press(egui::Key::Home);
    harness.run();
    assert_eq!(selected(&harness), [1000]);
    harness.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowDown);
    harness.run();
    harness.event(egui::Event::Copy);
    harness.run();
    harness
        .state_mut()
        .handle_event(Event::CopyReported(Ok(())));
    harness.step();
    assert_eq!(
        copied_text(&harness).as_deref(),
        Some("C01000\t顧客1000様\t重要\nC00990\t顧客990様\t重要")
    );
}

#[test]
fn clicking_anywhere_on_a_row_and_ctrl_c_copies_it_once_recorded() {
    let mut harness = harness(open_app(Rights::VIEW | Rights::COPY, Lang::En));
    // A cell, not the row number.
    harness.get_by_label("鈴木 花子").click();
    harness.run();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::C);
    harness.run();
    assert!(harness.state().copy_pending(), "Ctrl+C asked for the copy");
    assert_eq!(copied_text(&harness), None, "held until recorded");
    harness
        .state_mut()
        .handle_event(Event::CopyReported(Ok(())));
    harness.step();
    assert_eq!(
        copied_text(&harness).as_deref(),
        Some("1002\t鈴木 花子\tスズキ ハナコ\t06-9876-5432\t大阪府大阪市北区梅田4-5")
    );
    harness.run();
    // Shift+click extends from the row clicked first: both rows, in view
    // order, one line each (the key server is told two rows).
    harness
        .get_by_label("髙橋 一郎")
        .click_modifiers(egui::Modifiers::SHIFT);
    harness.run();
    harness.event(egui::Event::Copy); // what Ctrl+C becomes in the window
    harness.run();
    assert!(harness.state().copy_pending());
    assert_eq!(harness.state().pending_copy_rows(), Some(2));
    harness
        .state_mut()
        .handle_event(Event::CopyReported(Ok(())));
    harness.step();
    assert_eq!(
        copied_text(&harness).as_deref(),
        Some(
            "1002\t鈴木 花子\tスズキ ハナコ\t06-9876-5432\t大阪府大阪市北区梅田4-5\n\
             1003\t髙橋 一郎\tタカハシ イチロウ\t011-222-3333\t北海道札幌市中央区①番地"
        )
    );
}

#[test]
fn ctrl_c_without_the_copy_right_says_why_in_both_languages() {
    for (lang, says) in [
        (
            Lang::En,
            "Not copied: your permission for this file does not include copying.",
        ),
        (
            Lang::Ja,
            "コピーしませんでした: このファイルにはコピーの権限がありません。",
        ),
    ] {
        let mut harness = harness(open_app(Rights::VIEW, lang));
        harness.get_by_label("山田 太郎").click();
        harness.run();
        assert!(harness.query_by_label(says).is_none());
        harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::C);
        harness.event(egui::Event::Copy);
        harness.run();
        harness.get_by_label(says);
        assert_eq!(copied_text(&harness), None);
        assert!(!harness.state().copy_pending(), "nothing was reported");
    }
}

#[test]
fn a_copy_past_the_take_out_limit_says_how_to_ask_for_approval() {
    for (lang, title, next) in [
        (
            Lang::En,
            "Not copied: copying 3 rows at once needs an approved take-out first.",
            "Ask for one with `irm export request customers.csv.irm --for copy --reason TICKET`; once administrators approve it, copy again from this computer within an hour.",
        ),
        (
            Lang::Ja,
            "コピーしませんでした: 3行を一度にコピーするには、先に持ち出しの承認が必要です。",
            "`irm export request customers.csv.irm --for copy --reason チケット番号` で申請し、管理者の承認後1時間以内にこのパソコンからもう一度コピーしてください。",
        ),
    ] {
        let app = open_app(Rights::VIEW | Rights::COPY, lang);
        let mut harness = harness_sized(app, egui::vec2(1100.0, 300.0));
        harness.get_by_label("山田 太郎").click();
        harness.run();
        harness
            .get_by_label("髙橋 一郎")
            .click_modifiers(egui::Modifiers::SHIFT);
        harness.run();
        harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::C);
        harness.run();
        assert!(harness.state().copy_pending());
        harness
            .state_mut()
            .handle_event(Event::CopyReported(Err(Failure::Denied(
                DenyReason::ExportApprovalRequired,
            ))));
        harness.step();
        assert_eq!(copied_text(&harness), None, "refused: nothing copied");
        harness.run();
        harness.get_by_label(title);
        harness.get_by_label(next);
    }
}

/// A call centre's wide list: eleven columns, too wide for 1,100 px.
fn wide_customers() -> Document {
    let mut csv = String::from(
        "顧客番号,氏名,フリガナ,生年月日,電話番号,携帯電話,メールアドレス,郵便番号,住所,契約プラン,備考\n",
    );
    for i in 1..=20 {
        csv.push_str(&format!(
            "C{i:05},山田 太郎,ヤマダ タロウ,1980-04-01,03-1234-5678,090-1234-5678,\
             taro.yamada{i}@example.co.jp,120-0034,東京都足立区千住1-2-3 サンプルマンション101,\
             プレミアム年間,折り返し希望(平日午後)\n"
        ));
    }
    Document::from_plaintext("wide.csv", csv.as_bytes())
}

#[test]
fn fit_columns_brings_the_last_column_into_a_1100_px_window() {
    let app = open_doc(wide_customers(), Rights::VIEW, Lang::En);
    let mut harness = harness_sized(app, egui::vec2(1100.0, 400.0));
    let right_edge = |h: &Harness<'_, ViewerApp>| h.get_by_label("備考").rect().right();
    assert!(right_edge(&harness) > 1100.0, "the list starts too wide");
    harness.get_by_label("Fit columns").click();
    harness.run();
    let right = right_edge(&harness);
    assert!(right <= 1100.0, "the last column ends at {right}");
    // Its cells too: they sit under their header.
    let cell = harness
        .query_all_by_label("折り返し希望(平日午後)")
        .next()
        .expect("a cell of the last column")
        .rect();
    let header = harness.get_by_label("備考").rect();
    assert_eq!(cell.x_range(), header.x_range(), "cells under their header");
    // Every column keeps a readable width.
    let widths = harness.state().ui.table.column_widths().to_vec();
    assert!(widths.iter().all(|&w| w >= 40.0), "{widths:?}");
    // In Japanese too.
    let app = open_doc(wide_customers(), Rights::VIEW, Lang::Ja);
    let mut harness = harness_sized(app, egui::vec2(1100.0, 400.0));
    harness.get_by_label("列幅を合わせる").click();
    harness.run();
    assert!(right_edge(&harness) <= 1100.0);
}

#[test]
fn double_clicking_a_column_edge_fits_it_to_its_content() {
    let app = open_doc(wide_customers(), Rights::VIEW, Lang::En);
    // Wide enough that the address column's edge is on screen.
    let mut harness = harness_sized(app, egui::vec2(2000.0, 400.0));
    let address = "東京都足立区千住1-2-3 サンプルマンション101";
    let needed = harness.ctx.fonts_mut(|fonts| {
        fonts
            .layout_no_wrap(
                address.to_owned(),
                egui::TextStyle::Body.resolve(&egui::Style::default()),
                egui::Color32::WHITE,
            )
            .size()
            .x
    });
    // Narrow the address column by dragging its edge.
    let edge = |h: &Harness<'_, ViewerApp>| {
        let header = h.get_by_label("住所").rect();
        let next = h.get_by_label("契約プラン").rect();
        egui::pos2((header.right() + next.left()) / 2.0, header.center().y)
    };
    let at = edge(&harness);
    harness.hover_at(at);
    harness.run();
    harness.drag_at(at);
    harness.run();
    harness.hover_at(at - egui::vec2(300.0, 0.0));
    harness.run();
    harness.drop_at(at - egui::vec2(300.0, 0.0));
    harness.run();
    let narrowed = harness.state().ui.table.column_widths()[8];
    assert!(narrowed < needed, "{narrowed} < {needed}");
    // Double-click the edge: the column fits its longest text.
    // In one frame: the harness steps a quarter second per queued event,
    // slower than a double-click.
    let at = edge(&harness);
    harness.hover_at(at);
    harness.run();
    for pressed in [true, false, true, false] {
        harness.input_mut().events.push(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
    harness.step();
    harness.run();
    let fitted = harness.state().ui.table.column_widths()[8];
    assert!(
        fitted >= needed && fitted < needed + 40.0,
        "{fitted} fits {needed}"
    );
    assert_eq!(harness.state().ui.table.sort, None, "no sort by accident");
}

/// The clip rectangles the watermark was painted into last frame.
fn watermark_clips(harness: &Harness<'_, ViewerApp>) -> Vec<egui::Rect> {
    harness
        .output()
        .shapes
        .iter()
        .filter(|clipped| match &clipped.shape {
            egui::Shape::Text(text) => text.galley.text().contains(FIXTURE_FILE_ID),
            _ => false,
        })
        .map(|clipped| clipped.clip_rect)
        .collect()
}

#[test]
fn the_watermark_covers_the_rows_but_not_the_controls() {
    let harness = harness(open_app(Rights::VIEW | Rights::COPY, Lang::En));
    let clips = watermark_clips(&harness);
    assert!(!clips.is_empty(), "a watermark is painted");
    let cell = harness.get_by_label("山田 太郎").rect();
    assert!(
        clips.iter().any(|c| c.intersects(cell)),
        "it covers the rows"
    );
    let controls = [
        harness
            .get_by_role_and_label(egui::accesskit::Role::TextInput, "Filter")
            .rect(),
        harness
            .get_by_role_and_label(egui::accesskit::Role::TextInput, "Search")
            .rect(),
        harness.get_by_label("Copy").rect(),
        harness.get_by_label("Print").rect(),
        harness.get_by_label("1").rect(),
        harness.get_by_label("3").rect(),
        harness.get_by_label("3 of 3 rows").rect(),
    ];
    for control in controls {
        for clip in &clips {
            assert!(
                !clip.intersects(control),
                "the watermark ({clip:?}) is off the control at {control:?}"
            );
        }
    }
}
