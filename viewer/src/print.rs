//! Printing: the rows of the current view, with the header row, laid out on
//! A4 landscape pages with the watermark tiled over every page, rendered to
//! a PDF in memory and handed to the print service on its standard input.
//!
//! Printing is the one place content leaves the viewer on purpose (to
//! paper, through the print system's spool; THREAT-MODEL.md). So the PDF
//! never touches a file of ours: it is built in a zeroizing buffer and
//! piped to `lp` (or to [`PRINT_COMMAND_ENV`]). Whether printing is allowed
//! is `rights::decide`'s business, and recording it with the key server
//! (before anything is spooled) is the worker's.
//!
//! The Japanese font the window uses ([`crate::fonts::IPA_GOTHIC`], compiled
//! in) is embedded as a subset, so cells print as real glyphs on any printer.
//!
//! A [`PrintError`] is plain data (clonable, comparable) so that it can
//! travel to the UI inside a `Failure`; it words itself in the person's
//! language ([`PrintError::message`]) and its `Display` is the English form
//! for logs. Printing owns that wording because it owns the error: `i18n`
//! gives the language and the UI's own labels, and imports nothing of ours.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use krilla::Document as PdfDocument;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Transform};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use zeroize::Zeroizing;

use crate::i18n::Lang;
use crate::table::Table;
use crate::watermark::{self, WatermarkIdentity};

/// The environment variable that replaces the print command: a program and
/// its arguments separated by spaces (no shell), which gets the PDF on its
/// standard input. Unset, the viewer runs `lp -t NAME` (CUPS).
pub const PRINT_COMMAND_ENV: &str = "IRM_PRINT_COMMAND";

/// The most rows one print may hold (about 30 pages). A view longer than
/// this is narrowed with the filter first: printing a whole customer list
/// is an export to paper, not what the print right is for.
pub const MAX_PRINT_ROWS: usize = 1000;

// A4 landscape in PDF points, and the layout inside it.
const PAGE_W: f32 = 842.0;
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 36.0;
const FONT_SIZE: f32 = 9.0;
const ROW_H: f32 = 14.0;
const TITLE_H: f32 = 22.0;
const FOOTER_H: f32 = 20.0;
/// Cell padding on each side.
const PAD: f32 = 3.0;
/// Widest column, in ems, before its text is cut off.
const MAX_COLUMN_EMS: f32 = 30.0;

/// Why a print did not happen. The system's own messages (an OS error, the
/// print command's stderr) are kept as text, as they were given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrintError {
    /// The bundled Japanese font could not be read as a font (a build fault).
    NoFont,
    /// The view holds more rows than [`MAX_PRINT_ROWS`].
    TooManyRows(usize),
    /// What is shown is not a table (only tables print).
    NotATable,
    /// The PDF could not be built.
    Render(String),
    /// The print command could not be started or fed.
    Spawn {
        /// The program.
        program: String,
        /// What failed (the OS error).
        error: String,
    },
    /// The print command ran and failed.
    Rejected {
        /// The program.
        program: String,
        /// Its exit status, as the OS reports it ("exit status: 1").
        status: String,
        /// What it said on stderr (first line).
        message: String,
    },
}

impl PrintError {
    /// Why the print did not happen, in `lang`. The system's own words
    /// (an OS error, the print command's message) are quoted as given.
    pub fn message(&self, lang: Lang) -> String {
        use PrintError as E;
        match (lang, self) {
            (Lang::En, E::NoFont) => {
                "the Japanese font to print with cannot be read; reinstall the viewer".into()
            }
            (Lang::Ja, E::NoFont) => {
                "印刷用の日本語フォントを読み込めません。ビューアーを再インストールしてください"
                    .into()
            }
            (Lang::En, E::TooManyRows(n)) => format!(
                "the view has {n} rows; narrow it to at most {MAX_PRINT_ROWS} with the filter"
            ),
            (Lang::Ja, E::TooManyRows(n)) => {
                format!("表示中の行が{n}行あります。絞り込みで{MAX_PRINT_ROWS}行以下にしてください")
            }
            (Lang::En, E::NotATable) => "only tables can be printed".into(),
            (Lang::Ja, E::NotATable) => "印刷できるのは表だけです".into(),
            (Lang::En, E::Render(e)) => format!("cannot build the PDF to print: {e}"),
            (Lang::Ja, E::Render(e)) => format!("印刷用のPDFを作成できません: {e}"),
            (Lang::En, E::Spawn { program, error }) => format!(
                "cannot run the print command {program}: {error}; install a print system that provides lp (CUPS), or name another print program in {PRINT_COMMAND_ENV}"
            ),
            (Lang::Ja, E::Spawn { program, error }) => format!(
                "印刷コマンド {program} を実行できません: {error}。lp を提供する印刷システム(CUPS)を導入するか、{PRINT_COMMAND_ENV} で別の印刷プログラムを指定してください"
            ),
            (
                lang,
                E::Rejected {
                    program,
                    status,
                    message,
                },
            ) => {
                let failed = match lang {
                    Lang::En => format!("the print command {program} failed ({status})"),
                    Lang::Ja => format!("印刷コマンド {program} が失敗しました({status})"),
                };
                // What the command said, if anything, as it said it.
                if message.is_empty() {
                    failed
                } else {
                    format!("{failed}: {message}")
                }
            }
        }
    }
}

impl fmt::Display for PrintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(Lang::En))
    }
}

impl std::error::Error for PrintError {}

/// The print command: a program and its arguments; the PDF goes to its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintCommand {
    program: OsString,
    args: Vec<OsString>,
}

impl Default for PrintCommand {
    /// [`PRINT_COMMAND_ENV`] if set, else `lp`.
    fn default() -> Self {
        std::env::var_os(PRINT_COMMAND_ENV)
            .and_then(|v| Self::parse(&v.to_string_lossy()))
            .unwrap_or_else(|| Self::new("lp", Vec::<OsString>::new()))
    }
}

impl PrintCommand {
    /// `program ARGS…`.
    pub fn new(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// Splits `text` at whitespace (no shell quoting); `None` when empty.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let program = words.next()?;
        Some(Self::new(program, words))
    }

    /// Whether this is the CUPS default, which gets a job title.
    fn is_lp(&self) -> bool {
        self.program == "lp" && self.args.is_empty()
    }

    /// Runs the command with `pdf` on its stdin and waits for it. `lp`
    /// returns once the job is queued, so this does not wait for paper.
    pub fn spool(&self, pdf: &[u8], title: &str) -> Result<(), PrintError> {
        let program = self.program.to_string_lossy().into_owned();
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        if self.is_lp() {
            // "-" is lp's standard input; the title names the job in the queue.
            command.args(["-t", title, "-"]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| PrintError::Spawn {
                program: program.clone(),
                error: error.to_string(),
            })?;
        let fed = child.stdin.take().expect("stdin was piped").write_all(pdf);
        // stdin is closed here (dropped), so the command sees the end.
        let output = child
            .wait_with_output()
            .map_err(|error| PrintError::Spawn {
                program: program.clone(),
                error: error.to_string(),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(PrintError::Rejected {
                program,
                status: output.status.to_string(),
                message: stderr.lines().next().unwrap_or("").trim().to_owned(),
            });
        }
        fed.map_err(|error| PrintError::Spawn {
            program,
            error: error.to_string(),
        })
    }
}

/// The bundled Japanese font ([`crate::fonts::IPA_GOTHIC`]), for krilla.
pub fn load_font() -> Result<Font, PrintError> {
    Font::new(crate::fonts::IPA_GOTHIC.into(), 0).ok_or(PrintError::NoFont)
}

/// What one print holds.
pub struct PrintJob<'a> {
    /// The document's name (title line and job title).
    pub name: &'a str,
    /// The table.
    pub table: &'a Table,
    /// The data rows of the current view, in view order.
    pub rows: &'a [usize],
    /// Who prints, on which device, when, which file.
    pub watermark: &'a WatermarkIdentity,
}

/// The rendered PDF and its page count.
pub struct Rendered {
    /// The PDF bytes (plaintext: wiped on drop).
    pub pdf: Zeroizing<Vec<u8>>,
    /// How many pages.
    pub pages: usize,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

/// Lays out the job on A4 landscape pages: a title line, the header row on
/// every page, the rows, a footer naming who printed it, and the watermark
/// tiled diagonally over everything.
pub fn render(job: &PrintJob<'_>, font: &Font) -> Result<Rendered, PrintError> {
    if job.rows.len() > MAX_PRINT_ROWS {
        return Err(PrintError::TooManyRows(job.rows.len()));
    }
    let table = job.table;
    let widths = column_widths(job);
    let body_top = MARGIN + TITLE_H + ROW_H;
    let rows_per_page = (((PAGE_H - MARGIN - FOOTER_H - body_top) / ROW_H).floor() as usize).max(1);
    let pages = job.rows.len().div_ceil(rows_per_page).max(1);
    // The footer names everything, the watermark id included; the tiles
    // keep to the person, device, time and file, so that they stay as wide
    // as they were and the cells under them still read as text (pdftotext,
    // a screen reader on the PDF); the id is also in every page's title.
    let footer = watermark::text(job.watermark).replace('\n', "  ·  ");
    let mark = watermark::text(&WatermarkIdentity {
        watermark_id: None,
        ..job.watermark.clone()
    });
    let title_id = job
        .watermark
        .watermark_id
        .as_deref()
        .map(|id| format!("  ·  ID {id}"))
        .unwrap_or_default();
    let mut pdf = PdfDocument::new();
    for page_no in 0..pages {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4 is a valid size");
        let mut page = pdf.start_page_with(settings);
        let mut s = page.surface();
        s.set_fill(Some(solid(0, 0, 0, 1.0)));
        text(
            &mut s,
            font,
            11.0,
            MARGIN,
            MARGIN + 12.0,
            &format!("{}  ({} rows){title_id}", job.name, job.rows.len()),
        );
        // The header row, on every page, like the screen keeps it in view.
        let header_y = MARGIN + TITLE_H;
        if table.row_count() > 0 {
            row(&mut s, font, &widths, header_y, "#", table.row(0));
        }
        rule(&mut s, header_y + ROW_H - 2.0);
        let start = page_no * rows_per_page;
        let end = (start + rows_per_page).min(job.rows.len());
        for (i, &r) in job.rows.get(start..end).unwrap_or(&[]).iter().enumerate() {
            let y = body_top + i as f32 * ROW_H;
            if r < table.row_count() {
                row(&mut s, font, &widths, y, &r.to_string(), table.row(r));
            }
        }
        s.set_fill(Some(solid(60, 60, 60, 1.0)));
        text(
            &mut s,
            font,
            8.0,
            MARGIN,
            PAGE_H - MARGIN,
            &format!("{footer}    {} / {pages}", page_no + 1),
        );
        tile_watermark(&mut s, font, &mark);
        s.finish();
        page.finish();
    }
    let bytes = pdf
        .finish()
        .map_err(|e| PrintError::Render(e.to_string()))?;
    Ok(Rendered {
        pdf: Zeroizing::new(bytes),
        pages,
    })
}

/// Column widths in points: the row-number column, then each column sized
/// to its widest printed cell (CJK characters count as one em, others as
/// half), capped, and scaled down together when the page is too narrow.
fn column_widths(job: &PrintJob<'_>) -> Vec<f32> {
    let table = job.table;
    let ems = |s: &str| -> f32 {
        s.chars()
            .map(|c| if (c as u32) < 0x2E80 { 0.55 } else { 1.0 })
            .sum()
    };
    let mut widths = vec![0.0f32; table.columns() + 1];
    let number_ems = ems(&job.rows.iter().max().unwrap_or(&0).to_string()).max(1.0);
    widths[0] = number_ems;
    let header = (table.row_count() > 0).then_some(0);
    for r in header.into_iter().chain(job.rows.iter().copied()) {
        if r >= table.row_count() {
            continue;
        }
        for (c, cell) in table.row(r).enumerate() {
            if let Some(w) = widths.get_mut(c + 1) {
                *w = w.max(ems(cell).min(MAX_COLUMN_EMS));
            }
        }
    }
    let mut points: Vec<f32> = widths
        .iter()
        .map(|ems| ems.max(1.0) * FONT_SIZE + 2.0 * PAD)
        .collect();
    let total: f32 = points.iter().sum();
    let room = PAGE_W - 2.0 * MARGIN;
    if total > room {
        for w in &mut points {
            *w *= room / total;
        }
    }
    points
}

/// One table row at baseline row top `y`: the row number, then the cells,
/// each clipped to its column.
fn row<'t>(
    s: &mut Surface<'_>,
    font: &Font,
    widths: &[f32],
    y: f32,
    number: &'t str,
    cells: impl Iterator<Item = &'t str>,
) {
    let mut x = MARGIN;
    let columns = std::iter::once(number).chain(cells);
    for (cell, &w) in columns.zip(widths) {
        if !cell.is_empty()
            && let Some(clip) = rect(x, y, w - PAD, ROW_H)
        {
            s.push_clip_path(&clip, &FillRule::NonZero);
            // A cell's line breaks print as spaces: one line per row.
            let flat: String = cell
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            text(s, font, FONT_SIZE, x + PAD, y + ROW_H - 4.0, &flat);
            s.pop();
        }
        x += w;
    }
}

/// A thin line under the header.
fn rule(s: &mut Surface<'_>, y: f32) {
    if let Some(line) = rect(MARGIN, y, PAGE_W - 2.0 * MARGIN, 0.6) {
        s.set_fill(Some(solid(0, 0, 0, 1.0)));
        s.draw_path(&line);
    }
}

/// The watermark's two lines, tiled diagonally in staggered rows over the
/// whole page, translucent so the rows stay readable.
fn tile_watermark(s: &mut Surface<'_>, font: &Font, mark: &str) {
    s.set_fill(Some(solid(120, 120, 120, 0.28)));
    let size = 10.0;
    let (step_x, step_y) = (330.0, 70.0);
    s.push_transform(&Transform::from_rotate_at(
        -28.0,
        PAGE_W / 2.0,
        PAGE_H / 2.0,
    ));
    let mut y = -PAGE_H / 2.0;
    let mut odd = false;
    while y < PAGE_H * 1.5 {
        let mut x = -PAGE_W / 2.0 + if odd { step_x / 2.0 } else { 0.0 };
        while x < PAGE_W * 1.5 {
            for (i, line) in mark.lines().enumerate() {
                text(s, font, size, x, y + i as f32 * (size + 3.0), line);
            }
            x += step_x;
        }
        y += step_y;
        odd = !odd;
    }
    s.pop();
}

fn text(s: &mut Surface<'_>, font: &Font, size: f32, x: f32, y: f32, text: &str) {
    s.draw_text(
        Point::from_xy(x, y),
        font.clone(),
        size,
        text,
        false,
        TextDirection::Auto,
    );
}

fn rect(x: f32, y: f32, w: f32, h: f32) -> Option<krilla::geom::Path> {
    let mut pb = PathBuilder::new();
    pb.push_rect(krilla::geom::Rect::from_xywh(x, y, w, h)?);
    pb.finish()
}

fn solid(r: u8, g: u8, b: u8, opacity: f32) -> Fill {
    Fill {
        paint: rgb::Color::new(r, g, b).into(),
        opacity: NormalizedF32::new(opacity).unwrap_or(NormalizedF32::ONE),
        rule: FillRule::NonZero,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> WatermarkIdentity {
        WatermarkIdentity {
            user: "yamada.taro".into(),
            display_name: None,
            device: "3f2a9c0d".into(),
            opened_at: "2026-11-23 06:40 UTC".into(),
            file_id: "9d3c61b0".into(),
            watermark_id: Some("W7K2-9QXM-4HTD".into()),
        }
    }

    #[test]
    fn a_view_renders_to_pdf_pages_with_the_header_on_each() {
        let font = load_font().expect("the bundled font");
        let mut csv = String::from("顧客番号,氏名\n");
        for i in 0..100 {
            csv.push_str(&format!("{i},山田 {i}\n"));
        }
        let table = Table::parse(&csv, ',');
        let rows: Vec<usize> = (1..=100).collect();
        let id = identity();
        let job = PrintJob {
            name: "customers.csv",
            table: &table,
            rows: &rows,
            watermark: &id,
        };
        let out = render(&job, &font).expect("renders");
        assert!(out.pdf.starts_with(b"%PDF-"));
        assert_eq!(out.pages, 4, "100 rows at 33 a page");
    }

    #[test]
    fn too_many_rows_are_refused_before_any_layout() {
        let font = load_font().expect("the bundled font");
        let table = Table::parse("a\n1\n", ',');
        let rows = vec![1; MAX_PRINT_ROWS + 1];
        let id = identity();
        let job = PrintJob {
            name: "x",
            table: &table,
            rows: &rows,
            watermark: &id,
        };
        assert!(matches!(
            render(&job, &font),
            Err(PrintError::TooManyRows(n)) if n == MAX_PRINT_ROWS + 1
        ));
    }

    #[test]
    fn the_print_command_comes_from_words() {
        assert_eq!(
            PrintCommand::parse("/usr/bin/lp -d office"),
            Some(PrintCommand::new("/usr/bin/lp", ["-d", "office"]))
        );
        assert_eq!(PrintCommand::parse("   "), None);
    }

    #[test]
    fn a_failing_print_command_is_reported_with_its_message() {
        let cmd = PrintCommand::new(
            "sh",
            ["-c", "cat >/dev/null; echo 'no printer' >&2; exit 3"],
        );
        match cmd.spool(b"%PDF-1.7", "t") {
            Err(PrintError::Rejected { message, .. }) => assert_eq!(message, "no printer"),
            other => panic!("expected a rejection: {other:?}"),
        }
        let missing = PrintCommand::new("/nonexistent/lp", Vec::<String>::new());
        assert!(matches!(
            missing.spool(b"", "t"),
            Err(PrintError::Spawn { .. })
        ));
    }

    #[test]
    fn every_print_error_has_both_languages() {
        let errors = [
            PrintError::NoFont,
            PrintError::TooManyRows(1200),
            PrintError::NotATable,
            PrintError::Render("bad glyph".into()),
            PrintError::Spawn {
                program: "lp".into(),
                error: "No such file or directory (os error 2)".into(),
            },
            PrintError::Rejected {
                program: "lp".into(),
                status: "exit status: 1".into(),
                message: "lp: The printer or class does not exist.".into(),
            },
        ];
        for error in &errors {
            let (en, ja) = (error.message(Lang::En), error.message(Lang::Ja));
            assert!(en.is_ascii(), "{error:?}: {en}");
            assert!(!ja.is_ascii() && ja != en, "{error:?} has Japanese: {ja}");
            assert_eq!(error.to_string(), en, "Display is the English text");
        }
    }
}
