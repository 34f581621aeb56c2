//! `ViewerApp { model, ui, worker }`: one frame of drawing, the worker's
//! events applied to the model, and the copy gate put to work.
//!
//! Rights are enforced here from [`rights::decide`] alone: without `copy`
//! no label is selectable, there is no Copy button, Ctrl+C/Cut events are
//! removed before any widget sees them (and the person is told why nothing
//! was copied) and any clipboard output is dropped. With `copy`, clipboard
//! text is held back by [`ClipboardGate`] until the key server has recorded
//! the copy, then released; a refusal is explained ([`CopyRefusal`]).
//! Primary-selection output (X11/Wayland middle-click paste) is always
//! dropped: it would be an unrecorded copy.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use egui::{Button, CentralPanel, Color32, Panel, RichText, TextEdit, Ui};
use irm_client::Passphrase;
use zeroize::{Zeroize, Zeroizing};

use crate::copy::{self, ClipboardGate, CopyRefusal};
use crate::enroll::EnrollForm;
use crate::i18n::{Lang, Msg};
use crate::model::{Content, Failure, Model, Screen};
use crate::open_file::{self, FilePicker};
use crate::print::{MAX_PRINT_ROWS, PrintCommand};
use crate::rights::{self, Actions};
use crate::table::TableState;
use crate::table::{HeaderTexts, TableView};
use crate::timing::Timing;
use crate::watermark;
use crate::worker::{Command, Event, Source, Worker};

/// Clipboard text waiting for the key server to record the copy.
struct PendingCopy {
    text: Zeroizing<String>,
    /// The rows reported ([`copy::copied_rows`]).
    rows: usize,
}

/// Transient UI state: text fields, filter results, the row cursor.
#[derive(Default)]
pub struct UiState {
    /// The passphrase field (wiped once sent).
    pub passphrase: String,
    /// The filter box.
    pub filter: String,
    /// The shown table's sort, rows, search, widths and row cursor.
    pub table: TableState,
    /// Clipboard text waiting for the key server to record the copy.
    pending_copy: Option<PendingCopy>,
    /// Clipboard text the key server recorded, released this frame.
    approved_copy: Option<String>,
    /// Why the last copy did not happen, until the next one or dismissed.
    pub copy_refusal: Option<CopyRefusal>,
    /// Where this frame's watermark goes: the document's content (the
    /// table's cells, the text, the picture), not the controls around it.
    watermark_area: Option<egui::Rect>,
    /// A one-line notice in the status bar.
    pub notice: Option<Msg>,
    /// Detail for the notice (the exported file, the failure).
    pub notice_detail: Option<String>,
    /// The export path field, while the export row is open.
    pub export_path: Option<String>,
    /// Whether the watermark is drawn when the grant waives it.
    pub hide_waived_watermark: bool,
    /// Where prints go (`lp`, or `IRM_PRINT_COMMAND`).
    pub print_command: PrintCommand,
    /// Whether a print is with the worker (the button waits for it).
    print_pending: bool,
    /// The enrollment form.
    pub enroll: EnrollForm,
    /// The file chooser.
    pub picker: FilePicker,
    /// The workbook sheet shown (0 for other kinds).
    pub sheet: usize,
    /// The picture's texture while a picture is open; dropping the handle
    /// frees the texture (see `picture`).
    picture: Option<egui::TextureHandle>,
}

/// What starting a worker needs, for files chosen in the window and for
/// enrolling (the app has none in tests over a fixture model).
pub struct Launcher {
    /// The credentials directory (`irm_client::config_dir()`).
    pub config_dir: PathBuf,
    /// `IRM_PASSPHRASE`, for the first worker only.
    pub passphrase: Option<Passphrase>,
    /// Asks the window to repaint (from the worker thread).
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

/// The viewer: what it shows, how the UI stands, and the worker doing I/O.
pub struct ViewerApp {
    /// The document, rights, watermark identity and screen.
    pub model: Model,
    /// Transient UI state.
    pub ui: UiState,
    worker: Option<Worker>,
    launcher: Option<Launcher>,
    /// A file to open once enrolled (from the command line or dropped).
    pending_file: Option<PathBuf>,
    /// The window title last sent, so it is sent only on change.
    title: String,
    /// `IRM_VIEWER_TIMING=1`: the start measured (see `timing`).
    timing: Option<Timing>,
}

impl ViewerApp {
    /// An app over `model`; `worker` is `None` in tests over a fixture model.
    pub fn new(model: Model, worker: Option<Worker>) -> Self {
        Self {
            model,
            ui: UiState::default(),
            worker,
            launcher: None,
            pending_file: None,
            title: String::new(),
            timing: None,
        }
    }

    /// Measures the start, the first frame with the document and sorts
    /// (`IRM_VIEWER_TIMING=1`, see `timing`); the worker gets a clone.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = Some(timing);
        self
    }

    /// Lets the app start workers itself: to enroll, and to open files
    /// chosen or dropped in the window. `pending_file` is opened once
    /// enrolled.
    pub fn with_launcher(mut self, launcher: Launcher, pending_file: Option<PathBuf>) -> Self {
        self.launcher = Some(launcher);
        self.pending_file = pending_file;
        self
    }

    /// Opens `path`: the open document is closed and its plaintext dropped
    /// (wiped) first; the worker closes the old grant and asks for the new
    /// one, or a worker is started for it.
    pub fn open_file(&mut self, path: PathBuf) {
        if matches!(self.model.screen, Screen::Enroll) {
            self.pending_file = Some(path);
            return;
        }
        // The same clean-up as a close (every reference to the plaintext
        // dropped, the filter wiped); the screen is replaced just below.
        self.close(Failure::Other(String::new()));
        self.model.file_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.model.screen = Screen::Opening;
        if let Some(worker) = &self.worker {
            worker.send(Command::Open(path));
        } else if let Some(launcher) = &mut self.launcher {
            let wake = Arc::clone(&launcher.wake);
            let source = Source {
                file: path,
                config_dir: launcher.config_dir.clone(),
                passphrase: launcher.passphrase.take(),
            };
            self.worker = Some(Worker::spawn(source, move || wake()));
        }
    }

    fn send(&self, command: Command) {
        if let Some(worker) = &self.worker {
            worker.send(command);
        }
    }

    /// Applies one worker event to the model.
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::NeedPassphrase(error) => self.model.screen = Screen::NeedPassphrase { error },
            Event::Enrolled => {
                self.ui.enroll = EnrollForm::default();
                self.ui.notice = Some(Msg::Enrolled);
                self.ui.notice_detail = None;
                // With a file to open the worker goes on to open it (its
                // Opening event follows); otherwise choose one.
                self.model.screen = Screen::PickFile;
                self.pending_file = None;
            }
            Event::EnrollFailed(failure) => {
                // That worker has stopped; the next attempt starts another.
                self.worker = None;
                self.ui.enroll.busy = false;
                self.ui.enroll.error = Some(failure);
            }
            Event::Opening => self.model.screen = Screen::Opening,
            Event::Opened(open) => {
                // For tests and tools that wait for the window (no plaintext).
                eprintln!("irm-viewer: document shown: {}", open.doc.summary());
                self.ui.table.reset();
                self.ui.sheet = 0;
                self.ui.picture = None;
                self.model.screen = Screen::Open(open);
            }
            Event::Renewed {
                lease_deadline,
                notices,
                audit_alarm,
            } => {
                if let Screen::Open(open) = &mut self.model.screen {
                    open.lease_deadline = lease_deadline;
                    open.notices.extend(notices);
                    // Kept once raised: a later checkpoint that continues
                    // the witnessed one does not undo a cut-back log.
                    if audit_alarm.is_some() {
                        open.audit_alarm = audit_alarm;
                    }
                }
            }
            Event::CannotOpen(failure) => self.model.screen = Screen::CannotOpen(failure),
            Event::Closed(failure) => self.close(failure),
            Event::Exported(result) => match result {
                Ok(path) => {
                    self.ui.notice = Some(Msg::Exported);
                    self.ui.notice_detail = Some(path.display().to_string());
                }
                Err(failure) => self.show_failure(Msg::ExportFailed, &failure),
            },
            Event::Printed(result) => {
                self.ui.print_pending = false;
                match result {
                    Ok(pages) => {
                        self.ui.notice = Some(Msg::Printed);
                        self.ui.notice_detail = Some(format!("{pages} pages"));
                    }
                    Err(failure) => self.show_failure(Msg::PrintFailed, &failure),
                }
            }
            Event::CopyReported(result) => {
                let pending = self.ui.pending_copy.take();
                self.ui.notice_detail = None;
                match (result, pending) {
                    (Ok(()), Some(copy)) if self.model.open().is_some() => {
                        self.ui.approved_copy = Some(copy.text.as_str().to_owned());
                        self.ui.notice = Some(Msg::Copied);
                        self.ui.copy_refusal = None;
                    }
                    (Err(failure), pending) => {
                        // Said where the document is, in full: what was
                        // refused and how to ask for it.
                        let rows = pending.map_or(0, |copy| copy.rows);
                        self.ui.notice = None;
                        self.ui.copy_refusal = Some(CopyRefusal::from_failure(&failure, rows));
                    }
                    (Ok(()), _) => {
                        // Recorded, but the document closed meanwhile.
                        self.ui.notice = Some(Msg::CopyNotRecorded);
                    }
                }
            }
        }
    }

    /// A failed export or print as a notice, in the language shown now: the
    /// worker's failure is data, worded here (i18n.rs).
    fn show_failure(&mut self, notice: Msg, failure: &Failure) {
        self.ui.notice = Some(notice);
        let (title, _, detail) = failure.texts(self.model.lang);
        self.ui.notice_detail = Some(detail.map_or_else(|| title.to_owned(), Cow::into_owned));
    }

    /// Closes the document: every reference the UI holds to plaintext is
    /// dropped (the zeroizing buffers wipe themselves) and `why` is shown.
    pub fn close(&mut self, why: Failure) {
        self.model.close(why);
        self.ui.table.reset();
        self.ui.pending_copy = None;
        self.ui.approved_copy = None;
        self.ui.copy_refusal = None;
        self.ui.export_path = None;
        self.ui.print_pending = false;
        self.ui.filter.zeroize();
        self.ui.sheet = 0;
        self.ui.picture = None; // frees the texture
    }

    /// Whether a copy is waiting for the key server to record it.
    pub fn copy_pending(&self) -> bool {
        self.ui.pending_copy.is_some()
    }

    /// The rows the copy waiting for the key server was reported as.
    pub fn pending_copy_rows(&self) -> Option<usize> {
        self.ui.pending_copy.as_ref().map(|copy| copy.rows)
    }

    /// The actions available now (none unless a document is open).
    pub fn actions(&self) -> Option<Actions> {
        self.model
            .open()
            .map(|open| rights::decide(open.rights, Instant::now() < open.lease_deadline))
    }

    /// Draws one frame.
    pub fn show(&mut self, ui: &mut Ui) {
        // The previous frame has been painted by now: report what it drew.
        if let Some(timing) = &self.timing
            && timing.frame_begins()
        {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        if ui.ctx().plugin_opt::<ClipboardGate>().is_none() {
            ui.ctx().add_plugin(ClipboardGate::default());
        }
        while let Some(event) = self.worker.as_ref().and_then(Worker::try_recv) {
            self.handle_event(event);
        }
        // The lease is also enforced on the UI's own clock, in case the
        // worker is stuck on the network when it ends.
        if self
            .model
            .open()
            .is_some_and(|open| Instant::now() >= open.lease_deadline)
        {
            self.close(Failure::LeaseExpired);
        }
        let actions = self.actions();
        let can_copy = actions.is_some_and(|a| a.copy.allowed());
        if !can_copy {
            let asked = ui.ctx().input_mut(|input| {
                let asked = copy::copy_requested(input);
                input
                    .events
                    .retain(|e| !matches!(e, egui::Event::Copy | egui::Event::Cut));
                asked
            });
            if asked && let Some(why) = actions.and_then(|a| a.copy.why_not()) {
                self.ui.copy_refusal = Some(CopyRefusal::NotPermitted(why));
            }
        }
        ui.style_mut().interaction.selectable_labels = can_copy;
        self.ui.watermark_area = None;

        self.menu_bar(ui);
        if let Some(actions) = actions {
            self.status_bar(ui, actions);
        }
        match open_file::dropped_file(ui.ctx()) {
            Some(Ok(path)) => self.open_file(path),
            Some(Err(())) => {
                self.ui.notice = Some(Msg::NotSealedFile);
                self.ui.notice_detail = None;
            }
            None => {}
        }
        let title = if self.model.file_name.is_empty() {
            "irm-viewer".to_owned()
        } else {
            format!("{} — irm-viewer", self.model.file_name)
        };
        if title != self.title {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        CentralPanel::default().show(ui, |ui| match self.model.screen {
            Screen::Enroll => self.enroll_screen(ui),
            Screen::PickFile => {
                // No status bar without a document: say the notice here
                // ("registered", "only .irm files").
                if let Some(notice) = self.ui.notice {
                    ui.label(RichText::new(self.model.lang.t(notice)).strong());
                }
                if let Some(path) = self.ui.picker.show(ui, self.model.lang) {
                    self.open_file(path);
                }
            }
            Screen::NeedPassphrase { .. } => self.passphrase_screen(ui),
            Screen::Opening => {
                ui.horizontal(|ui| {
                    busy_indicator(ui);
                    ui.label(self.model.lang.t(Msg::Opening));
                });
            }
            Screen::Open(_) => self.document_screen(ui, actions),
            Screen::CannotOpen(_) | Screen::Closed(_) => self.failure_screen(ui),
        });

        self.gate_clipboard(ui.ctx(), can_copy);
        if let Some(open) = self.model.open() {
            if open.watermark_required || !self.ui.hide_waived_watermark {
                // Over the whole window if the content was not laid out: a
                // watermark in the wrong place beats none.
                let area = self
                    .ui
                    .watermark_area
                    .unwrap_or_else(|| ui.ctx().content_rect());
                watermark::paint(ui.ctx(), &open.watermark, area);
            }
            ui.ctx().request_repaint_after(Duration::from_millis(500));
        }
        if self.timing.as_ref().is_some_and(Timing::wants_frame) {
            ui.ctx().request_repaint();
        }
    }

    /// With the copy right, sends what the gate held back last frame to the
    /// worker to be recorded; hands the gate text the key server recorded.
    fn gate_clipboard(&mut self, ctx: &egui::Context, can_copy: bool) {
        let gate = ctx.plugin::<ClipboardGate>();
        let mut gate = gate.lock();
        if let Some(text) = gate.held.take()
            && can_copy
            && !text.is_empty()
        {
            let rows = copy::copied_rows(&text);
            self.send(Command::ReportCopy {
                chars: text.chars().count(),
                rows,
            });
            self.ui.pending_copy = Some(PendingCopy { text, rows });
            self.ui.copy_refusal = None;
        }
        gate.release = self.ui.approved_copy.take();
    }

    fn menu_bar(&mut self, ui: &mut Ui) {
        let lang = self.model.lang;
        let waivable = self.model.open().is_some_and(|o| !o.watermark_required);
        let can_open = self.launcher.is_some()
            && !matches!(self.model.screen, Screen::Enroll | Screen::PickFile);
        let mut pick = false;
        Panel::top("menu").show(ui, |ui| {
            egui::MenuBar::new().ui(ui, |ui| {
                pick = can_open && ui.button(lang.t(Msg::OpenTitle)).clicked();
                ui.menu_button(lang.t(Msg::Language), |ui| {
                    ui.radio_value(&mut self.model.lang, Lang::Ja, "日本語");
                    ui.radio_value(&mut self.model.lang, Lang::En, "English");
                });
                ui.menu_button(lang.t(Msg::About), |ui| {
                    ui.set_max_width(360.0);
                    ui.label(
                        RichText::new(concat!("irm-viewer ", env!("CARGO_PKG_VERSION"))).strong(),
                    );
                    ui.label(lang.t(Msg::AboutRecorded));
                });
                if waivable {
                    let mut show = !self.ui.hide_waived_watermark;
                    if ui.checkbox(&mut show, lang.t(Msg::ShowWatermark)).changed() {
                        self.ui.hide_waived_watermark = !show;
                    }
                }
                ui.separator();
                ui.label(RichText::new(&self.model.file_name).strong());
            });
        });
        if pick {
            // The document goes (its plaintext wiped, its grant closed)
            // before another is chosen.
            if self.model.open().is_some() {
                self.send(Command::Release);
            }
            self.close(Failure::Other(String::new()));
            self.model.screen = Screen::PickFile;
        }
    }

    fn status_bar(&mut self, ui: &mut Ui, actions: Actions) {
        let lang = self.model.lang;
        let Some(open) = self.model.open() else {
            return;
        };
        let left = open
            .lease_deadline
            .saturating_duration_since(Instant::now());
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let not_after = open.not_after_unix;
        let doc = &open.doc;
        let table = doc.table(self.ui.sheet);
        let shown = self.ui.table.visible().len();
        Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                // The file's own expiry is what a person plans by; the
                // lease is renewed in the background and shown second.
                let expiry = ui.label(lang.file_expiry(not_after, now_unix));
                if let Some(at) = not_after {
                    // Worded only while someone hovers, not every frame.
                    expiry.on_hover_ui(|ui| {
                        let when = watermark::format_utc(UNIX_EPOCH + Duration::from_secs(at));
                        ui.label(lang.expires_at(&when));
                    });
                }
                ui.separator();
                ui.label(RichText::new(lang.lease_left(left)).weak())
                    .on_hover_text(lang.t(Msg::LeaseHelp));
                ui.separator();
                if let Some(table) = table {
                    ui.label(lang.rows_shown(shown, table.data_rows()));
                }
                if let Some(encoding) = doc.encoding() {
                    ui.separator();
                    ui.label(format!("{}: {}", lang.t(Msg::Encoding), encoding.label()));
                }
                if let Some(why) = actions.copy.why_not() {
                    ui.separator();
                    ui.label(RichText::new(lang.t(Msg::CopyingOff)).weak())
                        .on_hover_text(lang.t(why));
                }
                if !open.notices.is_empty() {
                    // Said once by the server, so kept in view: only this
                    // person knows whether the new device was theirs.
                    ui.separator();
                    let names: Vec<&str> = open
                        .notices
                        .iter()
                        .map(|n| n.device_name.as_str())
                        .collect();
                    let detail: Vec<String> = open.notices.iter().map(|n| n.message()).collect();
                    ui.colored_label(
                        Color32::from_rgb(200, 40, 40),
                        lang.new_devices(&names.join(", ")),
                    )
                    .on_hover_text(detail.join("\n"));
                }
                if let Some(alarm) = &open.audit_alarm {
                    ui.separator();
                    ui.colored_label(
                        Color32::from_rgb(200, 40, 40),
                        lang.t(Msg::AuditLogWentBack),
                    )
                    .on_hover_text(alarm);
                }
                if let Some(notice) = self.ui.notice {
                    ui.separator();
                    let label = ui.label(lang.t(notice));
                    if let Some(detail) = &self.ui.notice_detail {
                        label.on_hover_text(detail);
                    }
                }
            });
        });
    }

    fn enroll_screen(&mut self, ui: &mut Ui) {
        let lang = self.model.lang;
        let Some(launcher) = &self.launcher else {
            return;
        };
        let Some((request, passphrase)) =
            self.ui.enroll.show(ui, lang, launcher.config_dir.clone())
        else {
            return;
        };
        let wake = Arc::clone(&launcher.wake);
        self.worker = Some(Worker::enroll(
            request,
            passphrase,
            self.pending_file.clone(),
            move || wake(),
        ));
    }

    fn passphrase_screen(&mut self, ui: &mut Ui) {
        let lang = self.model.lang;
        let Screen::NeedPassphrase { error } = &self.model.screen else {
            return;
        };
        ui.label(lang.t(Msg::PassphrasePrompt));
        if let Some(error) = error {
            let (title, next, _) = error.texts(lang);
            ui.colored_label(Color32::from_rgb(200, 40, 40), title);
            ui.label(next);
        }
        let mut submit = false;
        ui.horizontal(|ui| {
            let label = ui.label(lang.t(Msg::Passphrase));
            let field = ui
                .add(TextEdit::singleline(&mut self.ui.passphrase).password(true))
                .labelled_by(label.id);
            submit |= field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            submit |= ui.button(lang.t(Msg::Unlock)).clicked();
        });
        if submit {
            let text = std::mem::take(&mut self.ui.passphrase);
            if let Ok(passphrase) = Passphrase::new(text) {
                self.send(Command::Unlock(passphrase));
                self.model.screen = Screen::Opening;
            }
        }
    }

    fn failure_screen(&mut self, ui: &mut Ui) {
        let lang = self.model.lang;
        let (heading, failure) = match &self.model.screen {
            Screen::CannotOpen(f) => (Msg::CannotOpen, f),
            Screen::Closed(f) => (Msg::Closed, f),
            _ => return,
        };
        let (title, next, detail) = failure.texts(lang);
        ui.heading(lang.t(heading));
        ui.add_space(8.0);
        ui.label(RichText::new(title).size(16.0));
        ui.add_space(8.0);
        ui.label(RichText::new(lang.t(Msg::WhatNext)).strong());
        ui.label(next);
        if let Some(detail) = detail {
            ui.add_space(8.0);
            ui.label(RichText::new(lang.t(Msg::Detail)).weak());
            ui.label(RichText::new(detail).weak().monospace());
        }
        ui.add_space(12.0);
        let retry = matches!(self.model.screen, Screen::CannotOpen(_)) && failure.retryable();
        ui.horizontal(|ui| {
            if retry && self.worker.is_some() && ui.button(lang.t(Msg::TryAgain)).clicked() {
                self.send(Command::Retry);
                self.model.screen = Screen::Opening;
            }
            if self.launcher.is_some() && ui.button(lang.t(Msg::OpenTitle)).clicked() {
                self.model.screen = Screen::PickFile;
            }
            if ui.button(lang.t(Msg::Quit)).clicked() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
    }

    fn document_screen(&mut self, ui: &mut Ui, actions: Option<Actions>) {
        let lang = self.model.lang;
        let Some(actions) = actions else { return };
        let Screen::Open(open) = &self.model.screen else {
            return;
        };
        let doc = &open.doc;
        let table = doc.table(self.ui.sheet);
        let mut copy_rows = false;
        let mut export_to = None;
        let mut print_now = false;
        let view_rows = self.ui.table.visible().len();
        ui.horizontal(|ui| {
            if table.is_some() {
                let label = ui.label(lang.t(Msg::Filter));
                ui.add(TextEdit::singleline(&mut self.ui.filter).desired_width(220.0))
                    .labelled_by(label.id);
                print_now = print_button(ui, lang, actions, view_rows, self.ui.print_pending);
            }
            // Copy is for table rows; text is copied by selecting it
            // (Ctrl+C), pictures never.
            if actions.copy.allowed() && table.is_some() {
                let copy = ui
                    .add_enabled(
                        !self.ui.table.selected_rows().is_empty(),
                        Button::new(lang.t(Msg::Copy)),
                    )
                    .on_hover_text(lang.t(Msg::CopyHelp))
                    .on_disabled_hover_text(lang.t(Msg::CopyHelp));
                copy_rows |= copy.clicked();
            }
            let export = ui.add_enabled(actions.export.allowed(), Button::new(lang.t(Msg::Export)));
            let export = match actions.export.why_not() {
                Some(why) => export.on_disabled_hover_text(lang.t(why)),
                None => export.on_hover_text(lang.t(Msg::ExportHelp)),
            };
            if export.clicked() {
                self.ui.export_path = Some(default_export_path(&doc.name, &doc.export_extension()));
            }
            if table.is_some()
                && ui
                    .button(lang.t(Msg::FitColumns))
                    .on_hover_text(lang.t(Msg::FitColumnsHelp))
                    .clicked()
            {
                self.ui.table.request_fit_columns();
            }
        });
        if let Some(refusal) = &self.ui.copy_refusal {
            let (what, next) = refusal.texts(lang, &self.model.file_name);
            let mut dismiss = false;
            ui.horizontal(|ui| {
                ui.colored_label(Color32::from_rgb(200, 40, 40), what);
                dismiss = ui.small_button(lang.t(Msg::Dismiss)).clicked();
            });
            if let Some(next) = next {
                ui.label(next);
            }
            if dismiss {
                self.ui.copy_refusal = None;
            }
        }
        if actions.export.allowed()
            && let Some(path) = &mut self.ui.export_path
        {
            let mut close = false;
            ui.horizontal(|ui| {
                let label = ui.label(lang.t(Msg::SaveAs));
                ui.add(TextEdit::singleline(path).desired_width(360.0))
                    .labelled_by(label.id);
                if ui.button(lang.t(Msg::Save)).clicked() && !path.trim().is_empty() {
                    export_to = Some(std::path::PathBuf::from(path.trim()));
                    close = true;
                }
                close |= ui.button(lang.t(Msg::Cancel)).clicked();
            });
            if close {
                self.ui.export_path = None;
            }
        }
        if let Content::Workbook(book) = &doc.content {
            ui.horizontal(|ui| {
                ui.label(RichText::new(lang.t(Msg::Sheets)).weak());
                for (i, sheet) in book.sheets.iter().enumerate() {
                    if ui
                        .selectable_label(self.ui.sheet == i, &sheet.name)
                        .clicked()
                        && self.ui.sheet != i
                    {
                        self.ui.sheet = i;
                        self.ui.table.reset();
                    }
                }
            });
        }
        ui.separator();
        // Looked up again: a sheet tab clicked just above changed the sheet,
        // and the table state was reset for it (drawing the old sheet's
        // rows against the new sheet's table would index past its end).
        let table = doc.table(self.ui.sheet);
        match (&doc.content, table) {
            (_, Some(table)) => {
                self.ui.table.refresh(table, &self.ui.filter);
                if let Some(timing) = &self.timing
                    && !self.ui.table.sorting()
                {
                    // Any sort asked for is in the rows drawn just below.
                    timing.sort_drawn();
                }
                search_bar(ui, &mut self.ui.table, lang);
                let shown = TableView {
                    table,
                    state: &mut self.ui.table,
                    texts: HeaderTexts {
                        sort_help: lang.t(Msg::SortHelp),
                        resize_help: lang.t(Msg::ResizeHelp),
                    },
                }
                .show(ui);
                self.ui.watermark_area = Some(shown.body);
                if let Some(timing) = &self.timing
                    && (self.ui.table.on_screen().is_some() || table.data_rows() == 0)
                {
                    timing.document_drawn();
                }
                // Without the copy right Ctrl+C was answered in `show`.
                copy_rows |= shown.copy && actions.copy.allowed();
                // A benchmark's sort takes the header click's path.
                let bench_sort = self.timing.as_ref().and_then(Timing::bench_sort_due);
                if let Some(column) = shown.sort_by.or(bench_sort) {
                    let sheet = self.ui.sheet;
                    let ctx = ui.ctx().clone();
                    let timing = self.timing.clone();
                    if let Some(timing) = &timing {
                        timing.sort_asked(column);
                    }
                    self.ui.table.sort_by(table, column, |key, done| {
                        // A big sort runs beside the UI. It holds the document
                        // until it finishes (about a second), so a close wipes
                        // the plaintext only then.
                        let doc = Arc::clone(doc);
                        std::thread::Builder::new()
                            .name("irm-viewer-sort".into())
                            .spawn(move || {
                                if let Some(table) = doc.table(sheet) {
                                    let started = std::time::Instant::now();
                                    let order = table.sort_order(key);
                                    if let Some(timing) = &timing {
                                        timing.sort_computed(started.elapsed());
                                    }
                                    let _ = done.send(order);
                                }
                                ctx.request_repaint();
                            })
                            .expect("the sort thread starts");
                    });
                    ui.ctx().request_repaint();
                }
                if self.ui.table.sorting() {
                    ui.ctx().request_repaint_after(Duration::from_millis(100));
                }
                let rows = self.ui.table.selected_rows();
                if copy_rows && !rows.is_empty() {
                    // Into the gate, which holds it until the key server
                    // recorded the copy; the buffer left behind is empty.
                    let mut text = table.rows_as_tsv(rows);
                    ui.ctx().copy_text(std::mem::take(&mut *text));
                }
            }
            (Content::Text(text), None) => {
                self.ui.watermark_area = Some(ui.available_rect_before_wrap());
                text.show(ui, actions.copy.allowed());
                if let Some(timing) = &self.timing {
                    timing.document_drawn();
                }
            }
            (Content::Picture(picture), None) => {
                self.ui.watermark_area = Some(ui.available_rect_before_wrap());
                picture.show(ui, &mut self.ui.picture);
                if let Some(timing) = &self.timing {
                    timing.document_drawn();
                }
            }
            (Content::Table { .. } | Content::Workbook(_), None) => {}
        }
        if print_now {
            self.send(Command::Print {
                doc: Arc::clone(&open.doc),
                sheet: self.ui.sheet,
                rows: self.ui.table.visible().to_vec(),
                command: self.ui.print_command.clone(),
            });
            self.ui.print_pending = true;
            self.ui.notice = Some(Msg::Printing);
            self.ui.notice_detail = None;
        }
        if let Some(path) = export_to {
            self.send(Command::Export {
                doc: Arc::clone(&open.doc),
                path,
            });
            self.ui.notice = Some(Msg::Exporting);
            self.ui.notice_detail = None;
        }
    }
}

/// The Print button (and Ctrl+P): enabled only when `rights::decide`
/// allows printing and the view (`rows` long) is short enough to print;
/// otherwise its tooltip says why. Returns whether to print now.
fn print_button(ui: &mut Ui, lang: Lang, actions: Actions, rows: usize, pending: bool) -> bool {
    let why_not = actions.print.why_not().or(if rows > MAX_PRINT_ROWS {
        Some(Msg::PrintTooManyRows)
    } else {
        None
    });
    let enabled = why_not.is_none() && !pending;
    let button = ui.add_enabled(enabled, Button::new(lang.t(Msg::Print)));
    let button = match why_not {
        Some(why) => button.on_disabled_hover_text(lang.t(why)),
        None => button
            .on_hover_text(lang.t(Msg::PrintHelp))
            .on_disabled_hover_text(lang.t(Msg::Printing)),
    };
    // The shortcut exists only where the button is enabled.
    let shortcut =
        enabled && ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::P));
    button.clicked() || shortcut
}

/// A spinner that moves ten times a second. egui's own asks for a frame
/// after every frame: in a window drawn by the software renderer that keeps
/// a core busy for as long as it shows, which is exactly while the worker
/// decrypts and parses or a sort runs beside the UI, on the same cores.
fn busy_indicator(ui: &mut Ui) {
    const STEP_SECS: f64 = 0.1;
    let size = ui.spacing().interact_size.y;
    let (rect, _) = ui.allocate_exact_size(egui::vec2(size, size), egui::Sense::hover());
    if ui.is_rect_visible(rect) {
        let time = ui.input(|i| i.time);
        let step = (time / STEP_SECS).floor();
        let start = step * 0.8;
        let radius = rect.height() / 2.0 - 2.0;
        let points: Vec<egui::Pos2> = (0..=16)
            .map(|i| {
                let angle = start + f64::from(i) / 16.0 * std::f64::consts::PI * 1.5;
                let (sin, cos) = angle.sin_cos();
                rect.center() + radius * egui::vec2(cos as f32, sin as f32)
            })
            .collect();
        let stroke = ui.visuals().widgets.noninteractive.fg_stroke;
        ui.painter().add(egui::Shape::line(points, stroke));
        let next = (step + 1.0) * STEP_SECS - time;
        ui.ctx()
            .request_repaint_after(Duration::from_secs_f64(next.max(0.01)));
    }
}

/// The search row over a table: Ctrl+F focuses it, Enter and Shift+Enter
/// (or the buttons) move between matching rows.
fn search_bar(ui: &mut Ui, state: &mut TableState, lang: Lang) {
    let search_id = egui::Id::unique("irm-table-search");
    if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::F)) {
        ui.memory_mut(|m| m.request_focus(search_id));
    }
    ui.horizontal(|ui| {
        let label = ui.label(lang.t(Msg::Search));
        let field = ui
            .add(
                TextEdit::singleline(&mut state.search)
                    .id(search_id)
                    .desired_width(180.0),
            )
            .labelled_by(label.id)
            .on_hover_text(lang.t(Msg::SearchHelp));
        if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            let back = ui.input(|i| i.modifiers.shift);
            state.step_match(!back);
            field.request_focus(); // keep typing or pressing Enter
        }
        let any = !state.matches().is_empty();
        if ui
            .add_enabled(any, Button::new("▲"))
            .on_hover_text(lang.t(Msg::PreviousMatch))
            .clicked()
        {
            state.step_match(false);
        }
        if ui
            .add_enabled(any, Button::new("▼"))
            .on_hover_text(lang.t(Msg::NextMatch))
            .clicked()
        {
            state.step_match(true);
        }
        if let Some(counter) = state.match_counter() {
            ui.label(counter);
        } else if !state.search.is_empty() {
            ui.label(RichText::new(lang.t(Msg::NoMatches)).weak());
        }
        if state.sorting() {
            busy_indicator(ui);
            ui.label(lang.t(Msg::Sorting));
        }
    });
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// ("customers.csv", "csv") -> "customers-export.csv": a bare file name,
/// so the export goes to the working directory unless the person types
/// another path.
///
/// `name` is a display string and is never trusted as a path: a sealed
/// file's name is whatever its sender chose, and on another platform `\`
/// separates directories too. Only what follows the last `/` or `\` is
/// kept, characters that mean something in a path (`:` for a drive, control
/// characters) become `_`, and an extension that is not plain letters and
/// digits becomes `bin`; the result is one normal path component.
fn default_export_path(name: &str, extension: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let stem: String = std::path::Path::new(last)
        .file_stem()
        .map_or_else(|| "export".into(), |s| s.to_string_lossy())
        .chars()
        .map(|c| if c == ':' || c.is_control() { '_' } else { c })
        .collect();
    let extension = if !extension.is_empty() && extension.chars().all(char::is_alphanumeric) {
        extension
    } else {
        "bin"
    };
    format!("{stem}-export.{extension}")
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use super::*;

    #[test]
    fn the_default_export_path_is_one_file_name_whatever_the_sealed_name() {
        let dir = Path::new("/home/yamada/exports");
        let names = [
            "customers.csv",
            "../../etc/passwd",
            "..\\..\\Windows\\System32\\drivers.csv",
            "/etc/cron.d/job.csv",
            "C:\\Users\\x\\customers.xlsx",
            "C:customers.csv",
            "reports/2026/../../../x.csv",
            "a\\..",
            "..",
            ".",
            "",
            "名簿\u{0}.csv",
            "line\nbreak.csv",
        ];
        let extensions = ["csv", "xlsx", "../../x", "a\\b", "", "c:v"];
        for name in names {
            for extension in extensions {
                let file = default_export_path(name, extension);
                let why = format!("{name:?} + {extension:?} -> {file:?}");
                assert!(!file.contains(['/', '\\', ':']), "{why}");
                assert!(!file.chars().any(char::is_control), "{why}");
                assert!(file.contains("-export."), "{why}");
                let components: Vec<_> = Path::new(&file).components().collect();
                assert!(
                    matches!(components[..], [Component::Normal(_)]),
                    "one plain component: {why}"
                );
                let chosen = dir.join(&file);
                assert_eq!(chosen.parent(), Some(dir), "stays in the directory: {why}");
            }
        }
        assert_eq!(
            default_export_path("customers.csv", "csv"),
            "customers-export.csv"
        );
        assert_eq!(
            default_export_path("../../etc/passwd", "csv"),
            "passwd-export.csv"
        );
        assert_eq!(
            default_export_path("..\\..\\Windows\\customers.xlsx", "xlsx"),
            "customers-export.xlsx"
        );
        assert_eq!(default_export_path("..", "csv"), "export-export.csv");
        assert_eq!(default_export_path("x.bin", "../../x"), "x-export.bin");
    }
}
