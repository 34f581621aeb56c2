//! `irm-viewer FILE`: opens a sealed CSV/TSV file under a live grant.
//!
//! The passphrase of this computer's credentials comes from
//! `IRM_PASSPHRASE` or is asked for in the window; the credentials are in
//! `IRM_CONFIG_DIR` (default: the user's config directory), as for `irm`.
//! Prints go to `lp` on its standard input, or to the program (and
//! space-separated arguments, no shell) named by `IRM_PRINT_COMMAND`.

use std::path::PathBuf;
use std::process::ExitCode;

use irm_client::Passphrase;
use irm_viewer::app::{JAPANESE_FONTS, ViewerApp, install_japanese_font};
use irm_viewer::i18n::Lang;
use irm_viewer::model::{Model, Screen};
use irm_viewer::worker::{Source, Worker};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [file] = args.as_slice() else {
        eprintln!("usage: irm-viewer FILE.irm");
        return ExitCode::from(2);
    };
    let file = PathBuf::from(file);
    let config_dir = match irm_client::config_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("irm-viewer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let passphrase = std::env::var("IRM_PASSPHRASE")
        .ok()
        .and_then(|p| Passphrase::new(p).ok());
    let file_name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(format!("{file_name} — irm-viewer"))
            .with_inner_size([1100.0, 720.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "irm-viewer",
        options,
        Box::new(move |cc| {
            // An explicit file first, so the window looks the same on every
            // machine; eframe's system-font fallback covers the rest.
            if let Some(bytes) = JAPANESE_FONTS.iter().find_map(|p| std::fs::read(p).ok()) {
                install_japanese_font(&cc.egui_ctx, bytes);
            }
            let ctx = cc.egui_ctx.clone();
            let worker = Worker::spawn(
                Source {
                    file,
                    config_dir,
                    passphrase,
                },
                move || ctx.request_repaint(),
            );
            let model = Model {
                file_name,
                screen: Screen::Opening,
                lang: Lang::from_env(),
            };
            Ok(Box::new(ViewerApp::new(model, Some(worker))))
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
