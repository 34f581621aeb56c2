//! The viewer's window (egui_kittest, no display) with its real worker
//! against the real key server: printing (the PDF a print command receives,
//! the audit record, a failing print command explained in Japanese), what a
//! view-only grant offers, the watermark a grant requires or waives, the
//! window closing when the file is revoked while open, enrolling on first
//! start, and opening files dropped onto the window.

use irm_client::Passphrase;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use irm_core::Rights;
use irm_core::protocol::DenyReason;
use irm_e2e::stage::{Stage, eventually, policy_for};
use irm_viewer::app::{Launcher, ViewerApp};
use irm_viewer::i18n::Lang;
use irm_viewer::model::{Failure, Model, Screen};
use irm_viewer::open_file::FilePicker;
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
    window_in(stage, file, print_to, Lang::En)
}

/// As [`window`], in `lang`.
fn window_in(
    stage: &Stage,
    file: &Path,
    print_to: Option<PrintCommand>,
    lang: Lang,
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
            lang,
        },
        Some(worker),
    );
    if let Some(command) = print_to {
        app.ui.print_command = command;
    }
    Harness::builder()
        .with_size(egui::vec2(900.0, 400.0))
        .with_context_setup(irm_viewer::fonts::install)
        .build_ui_state(|ui, app: &mut ViewerApp| app.show(ui), app)
}

/// Steps the window until a node labelled `label` exists.
fn wait_for(harness: &mut Harness<'_, ViewerApp>, label: &str) {
    let shown = eventually(WAIT, || {
        harness.step();
        harness.query_by_label(label).is_some()
    });
    assert!(
        shown,
        "{label:?} is shown within {WAIT:?}; enrollment: busy {} error {:?}",
        harness.state().ui.enroll.busy,
        harness.state().ui.enroll.error
    );
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
    // The grant's watermark id (PROTOCOL.md §7.8), which names it from a
    // photo of the paper: in each page's title (and footer, which the
    // tiles cross, so pdftotext may not read it whole).
    let ids: Vec<&str> = text
        .split("ID ")
        .skip(1)
        .filter_map(|rest| rest.get(..14))
        .filter(|id| irm_core::protocol::grant_prefix_of_watermark(id).is_some())
        .collect();
    assert!(!ids.is_empty(), "the watermark id on the page:\n{text}");
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
        sheet: 0,
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

/// The viewer on a computer without credentials (`config_dir` empty), with
/// `file` to open once enrolled.
fn enroll_window(
    config_dir: &Path,
    file: Option<PathBuf>,
    lang: Lang,
) -> Harness<'static, ViewerApp> {
    let app = ViewerApp::new(
        Model {
            file_name: String::new(),
            screen: Screen::Enroll,
            lang,
        },
        None,
    )
    .with_launcher(
        Launcher {
            config_dir: config_dir.to_owned(),
            passphrase: None,
            wake: Arc::new(|| {}),
        },
        file,
    );
    harness_for(app)
}

fn harness_for(app: ViewerApp) -> Harness<'static, ViewerApp> {
    // The real window's first size (viewer/src/main.rs).
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .with_context_setup(irm_viewer::fonts::install)
        .build_ui_state(|ui, app: &mut ViewerApp| app.show(ui), app)
}

/// Fills the enrollment form without an invitation (as typed) and presses
/// Register.
fn fill_and_register(
    harness: &mut Harness<'_, ViewerApp>,
    url: &str,
    ca: &Path,
    user: &str,
    code: &str,
    passphrases: (&str, &str),
) {
    let form = &mut harness.state_mut().ui.enroll;
    form.manual = true;
    form.server_url = url.into();
    form.ca_path = ca.display().to_string();
    form.user = user.into();
    form.device_name = format!("{user}-pc");
    form.passphrase = passphrases.0.to_owned().into();
    form.passphrase_again = passphrases.1.to_owned().into();
    // The fields without an invitation are drawn, then the code is typed
    // into its labelled field.
    harness.step();
    harness.get_by_label("One-time code").focus();
    harness.step();
    harness.get_by_label("One-time code").type_text(code);
    harness.step();
    harness.get_by_label("Register").click();
    harness.step();
}

#[test]
fn first_start_enrolls_in_the_window_then_opens_the_file() {
    let stage = Stage::new();
    let code = stage.add_user("bob");
    let (file, _) = stage.seal_for("bob", "customers.csv.irm", Rights::VIEW, CSV.as_bytes());
    let home = tempfile::TempDir::new().expect("a directory");
    let config_dir = home.path().join("irm");
    let mut harness = enroll_window(&config_dir, Some(file), Lang::En);
    harness.get_by_label("Register this computer");
    // Without an invitation, the fields of the server, its CA and the code.
    harness
        .get_by_label("No invitation: enter the server, CA certificate file and code instead")
        .click();
    // The click lands in one frame, the fields are drawn in the next.
    harness.step();
    harness.step();
    for label in [
        "Key server URL",
        "CA certificate file",
        "User name",
        "One-time code",
        "Device name",
        "Passphrase",
        "Passphrase (again)",
    ] {
        harness.get_by_label(label);
    }

    // Two different passphrases are caught before anything is sent.
    fill_and_register(
        &mut harness,
        &stage.server.url,
        &stage.server.ca_pem,
        "bob",
        &code,
        ("bob passphrase", "bob passphrasf"),
    );
    wait_for(
        &mut harness,
        "The two passphrases differ. Enter the same passphrase twice.",
    );
    assert!(harness.state().ui.enroll.passphrase.is_empty(), "wiped");

    harness.state_mut().ui.enroll.code = String::new().into();
    fill_and_register(
        &mut harness,
        &stage.server.url,
        &stage.server.ca_pem,
        "bob",
        &code,
        ("bob passphrase", "bob passphrase"),
    );
    assert!(
        harness.state().ui.enroll.code.is_empty(),
        "the code was wiped once sent"
    );
    assert!(harness.state().ui.enroll.passphrase.is_empty());
    // Enrolled, then straight on to the file that was asked for.
    wait_for(&mut harness, "山田 太郎");
    assert!(config_dir.join(irm_client::DEVICE_JSON).exists());
    irm_client::Session::unlock(
        &config_dir,
        &Passphrase::new("bob passphrase").expect("a passphrase"),
    )
    .expect("the stored credentials unlock with the chosen passphrase");
}

#[test]
fn enrollment_errors_say_what_to_fix_in_english_and_japanese() {
    let stage = Stage::new();
    let other = irm_e2e::Server::start();
    let code = stage.add_user("carol");
    let home = tempfile::TempDir::new().expect("a directory");
    let config_dir = home.path().join("irm");
    let not_a_cert = home.path().join("notes.txt");
    std::fs::write(&not_a_cert, "not a certificate").expect("a file");
    let dead_url = {
        // A port that was just free: nothing listens there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        format!(
            "https://127.0.0.1:{}",
            l.local_addr().expect("an address").port()
        )
    };
    let cases: [(&str, &Path, &str, Lang, &str); 6] = [
        (
            &stage.server.url,
            &stage.server.ca_pem,
            "WRONG-CODE-00000-00000",
            Lang::En,
            "The user name or one-time code is not valid (or the code was used or has expired). Check them, or ask your administrator for a new code.",
        ),
        (
            &stage.server.url,
            &other.ca_pem,
            &code,
            Lang::En,
            "The CA certificate does not fit this key server (or is not a certificate). Use the ca.pem your administrator gave you.",
        ),
        (
            &stage.server.url,
            &not_a_cert,
            &code,
            Lang::En,
            "The CA certificate does not fit this key server (or is not a certificate). Use the ca.pem your administrator gave you.",
        ),
        (
            &dead_url,
            &stage.server.ca_pem,
            &code,
            Lang::En,
            "The key server cannot be reached. Check the URL and the network (VPN, Wi-Fi), then try again.",
        ),
        (
            "http://127.0.0.1:1",
            &stage.server.ca_pem,
            &code,
            Lang::Ja,
            "鍵サーバーのURLが正しくありません。https://kas.example:8443 のような形式です。",
        ),
        (
            &stage.server.url,
            &stage.server.ca_pem,
            "WRONG-CODE-00000-00000",
            Lang::Ja,
            "ユーザー名またはワンタイムコードが正しくありません(使用済みか期限切れの可能性もあります)。確認するか、管理者に新しいコードを依頼してください。",
        ),
    ];
    for (url, ca, code, lang, expected) in cases {
        let mut harness = enroll_window(&config_dir, None, lang);
        let register = match lang {
            Lang::En => "Register",
            Lang::Ja => "登録",
        };
        let form = &mut harness.state_mut().ui.enroll;
        form.manual = true;
        form.server_url = url.into();
        form.ca_path = ca.display().to_string();
        form.user = "carol".into();
        form.code = code.to_owned().into();
        form.device_name = "carol-pc".into();
        form.passphrase = "carol passphrase".to_owned().into();
        form.passphrase_again = "carol passphrase".to_owned().into();
        // Drawn once with the fields shown, so the button is where it will be.
        harness.step();
        harness.get_by_label(register).click();
        wait_for(&mut harness, expected);
        assert!(
            !config_dir.join(irm_client::DEVICE_JSON).exists(),
            "no credentials after {expected:?}"
        );
    }
    // The code was not used up by the failures: it still enrolls.
    let mut harness = enroll_window(&config_dir, None, Lang::En);
    fill_and_register(
        &mut harness,
        &stage.server.url,
        &stage.server.ca_pem,
        "carol",
        &code,
        ("carol passphrase", "carol passphrase"),
    );
    wait_for(&mut harness, "Open a sealed file");
    harness.get_by_label("This computer is registered.");
}

#[test]
fn an_invitation_pasted_into_one_field_enrolls_and_a_foreign_ca_is_refused() {
    use irm_core::invitation::{CodePart, Invitation, ca_fingerprint};
    let stage = Stage::new();
    let code = stage.add_user("dave");
    let pem = std::fs::read_to_string(&stage.server.ca_pem).expect("the CA");
    let fingerprint = ca_fingerprint(&pem).expect("a certificate");
    let line = |fingerprint| {
        Invitation::new(&stage.server.url, fingerprint, &code, CodePart::Whole)
            .expect("an invitation")
            .to_string()
    };
    let home = tempfile::TempDir::new().expect("a directory");
    let config_dir = home.path().join("irm");
    // Pastes `text` into the field labelled `invitation`, fills the rest and
    // presses `register` (the labels of the window's language).
    let paste = |harness: &mut Harness<'_, ViewerApp>, text: &str, labels: (&str, &str)| {
        let (invitation, register) = labels;
        harness.get_by_label(invitation).focus();
        harness.step();
        harness.get_by_label(invitation).type_text(text);
        let form = &mut harness.state_mut().ui.enroll;
        form.device_name = "dave-pc".into();
        form.passphrase = "dave passphrase".to_owned().into();
        form.passphrase_again = "dave passphrase".to_owned().into();
        // The pasted line wraps: the form grows, then the button is placed.
        harness.step();
        harness.step();
        harness.get_by_label(register).click();
    };

    // Another CA than the invitation's: refused before the code is sent.
    let mut foreign = fingerprint;
    foreign[31] ^= 0x80;
    let mut harness = enroll_window(&config_dir, None, Lang::En);
    paste(&mut harness, &line(foreign), ("Invitation", "Register"));
    wait_for(
        &mut harness,
        "The server that answered is not the one the invitation names (its certificate fingerprint differs). Nothing was sent and the code is still valid. Check the invitation with your administrator.",
    );
    assert!(!config_dir.join(irm_client::DEVICE_JSON).exists());

    // The real line, pasted with the words around it in a chat, in the
    // Japanese window: enrolled, and the code was still good.
    let mut harness = enroll_window(&config_dir, None, Lang::Ja);
    let pasted = format!("招待です: {}\n", line(fingerprint));
    paste(&mut harness, &pasted, ("招待", "登録"));
    wait_for(&mut harness, "保護されたファイルを開く");
    assert!(config_dir.join(irm_client::DEVICE_JSON).exists());
    assert!(
        harness.state().ui.enroll.invitation.is_empty(),
        "the invitation was wiped once sent"
    );
}

/// A file dropped onto the window, as a desktop's drag and drop delivers it.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        // The viewer never reads a dropped file through egui: the worker opens it.
        Err("not read through egui".into())
    }
}

fn drop_file(harness: &mut Harness<'_, ViewerApp>, path: &Path) {
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(path.to_owned())));
    harness.step();
}

/// The window with no file yet (the chooser), able to start workers over
/// alice's credentials.
fn chooser_app(stage: &Stage, passphrase: Option<Passphrase>) -> ViewerApp {
    ViewerApp::new(
        Model {
            file_name: String::new(),
            screen: Screen::PickFile,
            lang: Lang::En,
        },
        None,
    )
    .with_launcher(
        Launcher {
            config_dir: stage.alice_config_dir(),
            passphrase,
            wake: Arc::new(|| {}),
        },
        None,
    )
}

#[test]
fn dropping_sealed_files_opens_them_one_after_another() {
    let stage = Stage::new();
    let (first, first_id) = stage.seal_for_alice("customers.csv.irm", Rights::VIEW, CSV.as_bytes());
    let (second, second_id) = stage.seal_for_alice(
        "orders.csv.irm",
        Rights::VIEW,
        "注文番号,商品\r\n5001,りんご\r\n".as_bytes(),
    );
    let app = chooser_app(&stage, Some(Stage::alice_passphrase()));
    let mut harness = harness_for(app);
    harness.get_by_label("Open a sealed file");

    // Something that is not a sealed file is turned away.
    let plain = stage.alice_home().join("notes.csv");
    std::fs::write(&plain, "a,b\n").expect("a file");
    drop_file(&mut harness, &plain);
    harness.step();
    harness.get_by_label("Open a sealed file");
    harness.get_by_label("Only sealed files (.irm) can be opened.");
    assert_eq!(harness.state().model.file_name, "");

    drop_file(&mut harness, &first);
    wait_for(&mut harness, "山田 太郎");
    let doc = Arc::downgrade(&harness.state().model.open().expect("open").doc);

    drop_file(&mut harness, &second);
    // The first document is gone (wiped) as soon as the second is asked for.
    assert!(doc.upgrade().is_none());
    wait_for(&mut harness, "りんご");
    assert!(harness.query_by_label("山田 太郎").is_none());
    assert_eq!(harness.state().model.file_name, "orders.csv.irm");
    // The first grant was closed with the key server.
    assert!(eventually(WAIT, || stage.audited(
        "event.close",
        "alice",
        &first_id
    )));

    // The menu's "Open a sealed file" closes the document (and its grant)
    // and shows the chooser, whose listing opens a file with a click.
    harness.get_by_label("Open a sealed file").click();
    harness.step();
    assert!(harness.state().model.open().is_none());
    assert!(eventually(WAIT, || stage.audited(
        "event.close",
        "alice",
        &second_id
    )));
    harness.state_mut().ui.picker = FilePicker::new(stage.alice_home().to_owned());
    harness.step();
    assert!(
        harness.query_by_label("notes.csv").is_none(),
        "only sealed files are listed"
    );
    harness.get_by_label("customers.csv.irm").click();
    wait_for(&mut harness, "山田 太郎");
}

#[test]
fn a_file_dropped_while_the_passphrase_is_asked_opens_after_unlocking() {
    let stage = Stage::new();
    let (first, _) = stage.seal_for_alice("customers.csv.irm", Rights::VIEW, CSV.as_bytes());
    let (second, _) = stage.seal_for_alice(
        "orders.csv.irm",
        Rights::VIEW,
        "注文番号,商品\r\n5001,りんご\r\n".as_bytes(),
    );
    let app = chooser_app(&stage, None);
    let mut harness = harness_for(app);
    drop_file(&mut harness, &first);
    wait_for(
        &mut harness,
        "Enter the passphrase of this computer's credentials to open the file.",
    );
    drop_file(&mut harness, &second);
    wait_for(
        &mut harness,
        "Enter the passphrase of this computer's credentials to open the file.",
    );
    harness.state_mut().ui.passphrase = "alice passphrase".into();
    harness.get_by_label("Unlock").click();
    wait_for(&mut harness, "りんご");
    assert_eq!(harness.state().model.file_name, "orders.csv.irm");
}

#[test]
fn the_open_window_closes_and_says_why_when_the_file_is_revoked() {
    let stage = Stage::new();
    // A short lease, so the worker renews (and hears of the revocation)
    // within a few seconds.
    let mut policy = policy_for("alice", Rights::VIEW);
    policy.max_lease_secs = 3;
    let (file, file_id) = stage.seal_with("customers.csv.irm", policy, CSV.as_bytes());
    let mut harness = window(&stage, &file, None);
    wait_for(&mut harness, "山田 太郎");
    let doc = Arc::downgrade(&harness.state().model.open().expect("open").doc);

    stage
        .admins
        .admin
        .revoke_file(&file_id)
        .expect("the admin revokes the file");
    wait_for(&mut harness, "The document was closed");
    harness.get_by_label("An administrator has revoked this file.");
    harness.get_by_label("What to do next:");
    assert!(harness.query_by_label("山田 太郎").is_none());
    assert!(harness.state().model.open().is_none());
    assert!(
        doc.upgrade().is_none(),
        "the plaintext was dropped (and wiped)"
    );
}

#[test]
fn the_watermark_toggle_exists_only_when_the_grant_waives_it() {
    let stage = Stage::new();
    let (required, _) = stage.seal_with(
        "required.csv.irm",
        policy_for("alice", Rights::VIEW),
        CSV.as_bytes(),
    );
    let mut policy = policy_for("alice", Rights::VIEW);
    policy.watermark_required = false;
    let (waived, _) = stage.seal_with("waived.csv.irm", policy, CSV.as_bytes());

    let mut harness = window(&stage, &required, None);
    wait_for(&mut harness, "山田 太郎");
    assert!(
        harness
            .state()
            .model
            .open()
            .expect("open")
            .watermark_required
    );
    assert!(
        harness.query_by_label("Show watermark").is_none(),
        "a required watermark cannot be switched off"
    );

    let mut harness = window(&stage, &waived, None);
    wait_for(&mut harness, "山田 太郎");
    assert!(
        !harness
            .state()
            .model
            .open()
            .expect("open")
            .watermark_required
    );
    harness.get_by_label("Show watermark").click();
    harness.step();
    assert!(harness.state().ui.hide_waived_watermark);
}

#[test]
fn a_failing_print_command_is_explained_in_japanese() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for_alice(
        "customers.csv.irm",
        Rights::VIEW | Rights::PRINT,
        CSV.as_bytes(),
    );
    // `false` takes the PDF and fails, as lp does without a printer.
    let command = PrintCommand::new("false", Vec::<String>::new());
    let mut harness = window_in(&stage, &file, Some(command), Lang::Ja);
    wait_for(&mut harness, "山田 太郎");
    harness.get_by_label("印刷").click();
    wait_for(&mut harness, "印刷に失敗しました");
    harness.get_by_label("印刷に失敗しました").hover();
    wait_for(
        &mut harness,
        "印刷コマンド false が失敗しました(exit status: 1)",
    );
    // The key server recorded the print before the command ran.
    assert!(stage.audited("event.print", "alice", &file_id));
}
