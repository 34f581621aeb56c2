//! The viewer's window (egui_kittest, no display) with its real worker
//! against the real key server: printing (the PDF a print command receives,
//! and the audit record), and what a view-only grant offers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use irm_core::Rights;
use irm_core::protocol::DenyReason;
use irm_e2e::stage::{Stage, eventually};
use irm_viewer::app::{JAPANESE_FONTS, ViewerApp, install_japanese_font};
use irm_viewer::i18n::Lang;
use irm_viewer::model::{Failure, Model, Screen};
use irm_viewer::print::PrintCommand;
use irm_viewer::worker::{Command, Event, Source, Worker};

const CSV: &str = "顧客番号,氏名,電話番号\r\n\
    1001,山田 太郎,03-1234-5678\r\n\
    1002,鈴木 花子,06-9876-5432\r\n";

const WAIT: Duration = Duration::from_secs(30);

/// The viewer on `file` for alice, with its worker, in a headless window.
fn window(
    stage: &Stage,
    file: &Path,
    print_to: Option<PrintCommand>,
) -> Harness<'static, ViewerApp> {
    let worker = Worker::spawn(
        Source {
            file: file.to_owned(),
            config_dir: stage.alice_config_dir(),
            passphrase: Some(Stage::alice_passphrase()),
        },
        || {},
    );
    let mut app = ViewerApp::new(
        Model {
            file_name: "customers.csv.irm".into(),
            screen: Screen::Opening,
            lang: Lang::En,
        },
        Some(worker),
    );
    if let Some(command) = print_to {
        app.ui.print_command = command;
    }
    Harness::builder()
        .with_size(egui::vec2(900.0, 400.0))
        .with_context_setup(|ctx| {
            let font = std::fs::read(JAPANESE_FONTS[0]).expect(
                "the IPA Gothic font (Debian fonts-ipafont-gothic; scripts/test installs it)",
            );
            install_japanese_font(ctx, font);
        })
        .build_ui_state(|ui, app: &mut ViewerApp| app.show(ui), app)
}

/// Steps the window until a node labelled `label` exists.
fn wait_for(harness: &mut Harness<'_, ViewerApp>, label: &str) {
    let shown = eventually(WAIT, || {
        harness.step();
        harness.query_by_label(label).is_some()
    });
    assert!(shown, "{label:?} is shown within {WAIT:?}");
}

/// A print command that saves its standard input into `dir/printed.pdf`,
/// the way `lp` would take it into the spool.
fn saving_print_command(dir: &Path) -> (PrintCommand, PathBuf) {
    let out = dir.join("printed.pdf");
    let script = dir.join("save-print.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec cat > '{}'\n", out.display()),
    )
    .expect("writing the script");
    let mut perms = std::fs::metadata(&script)
        .expect("the script")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("making the script executable");
    (PrintCommand::new(&script, Vec::<String>::new()), out)
}

fn pdftotext(pdf: &Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs (poppler-utils; scripts/test installs it)");
    assert!(out.status.success(), "pdftotext reads the PDF");
    String::from_utf8(out.stdout).expect("UTF-8 text")
}

#[test]
fn print_sends_a_watermarked_pdf_with_japanese_text_and_is_audited() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for_alice(
        "customers.csv.irm",
        Rights::VIEW | Rights::PRINT,
        CSV.as_bytes(),
    );
    let spool = tempfile::TempDir::new().expect("a directory");
    let (command, printed) = saving_print_command(spool.path());
    let mut harness = window(&stage, &file, Some(command));
    wait_for(&mut harness, "山田 太郎");

    harness.get_by_label("Print").click();
    wait_for(&mut harness, "Sent to the printer (recorded)");

    let pdf = std::fs::read(&printed).expect("the print command got the PDF");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF on stdin");
    let text = pdftotext(&printed);
    assert!(
        text.contains("alice"),
        "the watermark names the user:\n{text}"
    );
    assert!(
        text.contains(&file_id),
        "the watermark names the file:\n{text}"
    );
    assert!(
        text.contains("顧客番号"),
        "the header row, as real glyphs:\n{text}"
    );
    assert!(text.contains("山田 太郎"), "a Japanese cell:\n{text}");
    assert!(
        stage.audited("event.print", "alice", &file_id),
        "the key server recorded the print"
    );
}

#[test]
fn a_view_only_grant_offers_no_print_and_the_server_refuses_one() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for_alice("customers.csv.irm", Rights::VIEW, CSV.as_bytes());
    let spool = tempfile::TempDir::new().expect("a directory");
    let (command, printed) = saving_print_command(spool.path());
    let mut harness = window(&stage, &file, Some(command.clone()));
    wait_for(&mut harness, "山田 太郎");
    assert!(harness.get_by_label("Print").accesskit_node().is_disabled());
    harness.get_by_label("Print").hover();
    wait_for(
        &mut harness,
        "Your permission for this file does not include printing.",
    );
    harness.key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::P]);
    harness.step();
    assert!(harness.query_by_label("Printing…").is_none());

    // A client that asked anyway (a modified viewer) is refused before
    // anything reaches the print command.
    let worker = Worker::spawn(
        Source {
            file,
            config_dir: stage.alice_config_dir(),
            passphrase: Some(Stage::alice_passphrase()),
        },
        || {},
    );
    let open = loop {
        match worker.recv_timeout(WAIT) {
            Some(Event::Opening) => {}
            Some(Event::Opened(open)) => break open,
            other => panic!("the document should open: {other:?}"),
        }
    };
    worker.send(Command::Print {
        doc: Arc::clone(&open.doc),
        rows: vec![1, 2],
        command,
    });
    match worker.recv_timeout(WAIT) {
        Some(Event::Printed(Err(Failure::Denied(DenyReason::RightNotGranted)))) => {}
        other => panic!("expected the print to be refused: {other:?}"),
    }
    assert!(!printed.exists(), "nothing was spooled");
    assert!(!stage.audited("event.print", "alice", &file_id));
}
