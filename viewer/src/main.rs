//! `irm-viewer [FILE.irm]`: opens a sealed file under a live grant.
//!
//! Without credentials on this computer it first shows the enrollment
//! screen; without FILE it shows the "open a sealed file" screen (a file
//! can also be dropped onto the window). The passphrase of this computer's
//! credentials comes from `IRM_PASSPHRASE` or is asked for in the window;
//! the credentials are in `IRM_CONFIG_DIR` (default: the user's config
//! directory), as for `irm`. Prints go to `lp` on its standard input, or to
//! the program (and space-separated arguments, no shell) named by
//! `IRM_PRINT_COMMAND`. `irm-viewer --font-license` prints the license of
//! the Japanese font compiled into it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use irm_client::{DEVICE_JSON, Passphrase};
use irm_viewer::app::{Launcher, ViewerApp};
use irm_viewer::enroll::EnrollForm;
use irm_viewer::i18n::Lang;
use irm_viewer::model::{Model, Screen};
use irm_viewer::open_file::FilePicker;
use irm_viewer::timing::Timing;
use irm_viewer::worker::{Source, Worker};

/// What `--help` prints (and a wrong argument, on standard error).
const USAGE: &str = "\
usage: irm-viewer [FILE.irm]

Shows a sealed file to the people it is shared with, under a live grant from
the key server, watermarked. Without FILE it shows an \"open a sealed file\"
screen; without credentials on this computer, the enrollment screen.

  -h, --help        this text
  -V, --version     the version
  --font-license    the license of the bundled Japanese font

Environment: IRM_CONFIG_DIR (the credentials), IRM_PASSPHRASE (else asked in
the window), IRM_PRINT_COMMAND (instead of lp), LC_ALL, LC_MESSAGES or LANG
(Japanese for ja*, else English; switchable in the window), IRM_VIEWER_TIMING=1
(timing lines on standard error, for scripts/bench-viewer).
";

fn main() -> ExitCode {
    // Before anything else: `IRM_VIEWER_TIMING` counts from here.
    irm_viewer::timing::mark_process_start();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    // Flags are answered before any window exists, so they work without a
    // display (over ssh, in a script).
    let file = match args.as_slice() {
        [flag] if flag == "--font-license" => {
            // The bundled font's license travels with the binary (fonts.rs).
            print!("{}", irm_viewer::fonts::IPA_FONT_LICENSE);
            return ExitCode::SUCCESS;
        }
        [flag] if flag == "--help" || flag == "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [flag] if flag == "--version" || flag == "-V" => {
            println!("irm-viewer {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        [] => None,
        // A file whose name starts with '-' is given as ./-name.
        [file] if !file.to_string_lossy().starts_with('-') => Some(PathBuf::from(file)),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config_dir = match irm_client::config_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("irm-viewer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let enrolled = config_dir.join(DEVICE_JSON).exists();
    let passphrase = std::env::var("IRM_PASSPHRASE")
        .ok()
        .and_then(|p| Passphrase::new(p).ok());
    let file_name = file
        .as_ref()
        .and_then(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("irm-viewer")
            .with_inner_size([1100.0, 720.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    // Read here, before the window exists: the UI thread reads no files.
    let enroll_form = EnrollForm::new();
    let picker = FilePicker::new(std::env::current_dir().unwrap_or_else(|_| "/".into()));
    let timing = Timing::from_env();
    // The window's context, once eframe made it; the worker's events wake
    // it from then on (the first frame drains whatever came before).
    let window: Arc<OnceLock<egui::Context>> = Arc::default();
    let wake: Arc<dyn Fn() + Send + Sync> = {
        let window = Arc::clone(&window);
        Arc::new(move || {
            if let Some(ctx) = window.get() {
                ctx.request_repaint();
            }
        })
    };
    let mut launcher = Launcher {
        config_dir,
        passphrase,
        wake,
    };
    // The worker starts before the window: unlocking the credentials
    // (Argon2id), the grant and the decryption run while the window and its
    // renderer are being set up, on the other core.
    let (screen, worker, pending) = match (enrolled, file) {
        (false, file) => (Screen::Enroll, None, file),
        (true, None) => (Screen::PickFile, None, None),
        (true, Some(file)) => {
            let wake = Arc::clone(&launcher.wake);
            let source = Source {
                file,
                config_dir: launcher.config_dir.clone(),
                passphrase: launcher.passphrase.take(),
            };
            (
                Screen::Opening,
                Some(Worker::spawn_timed(source, timing.clone(), move || wake())),
                None,
            )
        }
    };
    let result = eframe::run_native(
        "irm-viewer",
        options,
        Box::new(move |cc| {
            // The bundled Japanese font, so the window looks the same on
            // every machine; eframe's system-font fallback covers the rest.
            irm_viewer::fonts::install(&cc.egui_ctx);
            let _ = window.set(cc.egui_ctx.clone());
            let model = Model {
                file_name,
                screen,
                lang: Lang::from_env(),
            };
            let mut app = ViewerApp::new(model, worker).with_launcher(launcher, pending);
            app.ui.enroll = enroll_form;
            app.ui.picker = picker;
            if let Some(timing) = timing {
                app = app.with_timing(timing);
            }
            Ok(Box::new(app))
        }),
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("irm-viewer: {e}");
            ExitCode::FAILURE
        }
    }
}
