//! Choosing a sealed file without the command line: the "Open a sealed
//! file" screen (a path field and a list of the folder's sub-folders and
//! `.irm` files) and drag-and-drop of a `.irm` file onto the window.
//!
//! This is an in-app chooser rather than a system file dialog on purpose:
//! the pure-egui dialog crates do not support egui 0.37 yet, and the GTK/XDG
//! portals (rfd) bring a toolkit and a recent-files history we do not want.
//! Only names are listed; no file is read here. Opening is the worker's.

use std::path::{Path, PathBuf};

use egui::{Button, RichText, ScrollArea, TextEdit, Ui};

use crate::i18n::{Lang, Msg};

/// The extension of sealed files.
pub const SEALED_EXTENSION: &str = "irm";

/// Whether `path` names a sealed file (by its extension).
pub fn is_sealed_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(SEALED_EXTENSION))
}

/// The files dropped onto the window this frame: the first `.irm` one, or
/// `Err(())` when only other files were dropped.
pub fn dropped_file(ctx: &egui::Context) -> Option<Result<PathBuf, ()>> {
    let dropped: Vec<PathBuf> = ctx.input(|i| {
        i.raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_owned())
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    });
    if dropped.is_empty() {
        return None;
    }
    Some(dropped.into_iter().find(|p| is_sealed_file(p)).ok_or(()))
}

/// One entry of the listed folder.
struct Entry {
    name: String,
    is_dir: bool,
}

/// The chooser's state: the folder shown, the path field, and the listing
/// (read once per folder, not every frame).
#[derive(Default)]
pub struct FilePicker {
    /// The folder listed.
    pub dir: PathBuf,
    /// The path field.
    pub path: String,
    listing: Option<(PathBuf, Vec<Entry>)>,
}

impl FilePicker {
    /// A chooser showing `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            ..Self::default()
        }
    }

    /// Draws the screen; returns the file chosen, if any.
    pub fn show(&mut self, ui: &mut Ui, lang: Lang) -> Option<PathBuf> {
        let mut chosen = None;
        ui.heading(lang.t(Msg::OpenTitle));
        ui.label(lang.t(Msg::OpenHint));
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let label = ui.label(lang.t(Msg::FilePath));
            let field = ui
                .add(TextEdit::singleline(&mut self.path).desired_width(420.0))
                .labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let path = self.path.trim();
            let open = ui.add_enabled(!path.is_empty(), Button::new(lang.t(Msg::OpenButton)));
            if (open.clicked() || enter) && !path.is_empty() {
                chosen = Some(self.dir.join(path));
            }
        });
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    self.dir.parent().is_some(),
                    Button::new(lang.t(Msg::ParentDir)),
                )
                .clicked()
                && let Some(parent) = self.dir.parent()
            {
                self.dir = parent.to_owned();
            }
            ui.label(RichText::new(self.dir.display().to_string()).monospace());
        });
        ui.separator();
        if self
            .listing
            .as_ref()
            .is_none_or(|(dir, _)| *dir != self.dir)
        {
            self.listing = Some((self.dir.clone(), list(&self.dir)));
        }
        let mut enter_dir = None;
        ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
            if let Some((_, entries)) = &self.listing {
                for entry in entries {
                    let text = if entry.is_dir {
                        format!("{}/", entry.name)
                    } else {
                        entry.name.clone()
                    };
                    if ui.selectable_label(false, text).clicked() {
                        if entry.is_dir {
                            enter_dir = Some(self.dir.join(&entry.name));
                        } else {
                            chosen = Some(self.dir.join(&entry.name));
                        }
                    }
                }
            }
        });
        if let Some(dir) = enter_dir {
            self.dir = dir;
        }
        chosen
    }
}

/// The sub-folders and sealed files of `dir`, folders first, by name;
/// hidden entries left out. An unreadable folder lists as empty.
fn list(dir: &Path) -> Vec<Entry> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<Entry> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.path().is_dir();
            (!name.starts_with('.') && (is_dir || is_sealed_file(Path::new(&name))))
                .then_some(Entry { name, is_dir })
        })
        .collect();
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_irm_files_count_as_sealed() {
        assert!(is_sealed_file(Path::new("/a/customers.csv.irm")));
        assert!(is_sealed_file(Path::new("X.IRM")));
        assert!(!is_sealed_file(Path::new("customers.csv")));
        assert!(!is_sealed_file(Path::new("irm")));
    }

    #[test]
    fn the_listing_has_folders_then_sealed_files() {
        let dir = std::env::temp_dir().join(format!("irm-picker-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["b.irm", "a.irm", "plain.csv", ".hidden.irm"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let names: Vec<String> = list(&dir).into_iter().map(|e| e.name).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["sub", "a.irm", "b.irm"]);
    }
}
