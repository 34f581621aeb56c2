//! `IRM_VIEWER_TIMING=1`: the viewer's own account of a real start, for
//! `scripts/bench-viewer` (docs/PERFORMANCE.md §7). Without the variable
//! there is no [`Timing`]: nothing is measured, printed or triggered.
//!
//! Each measurement is one line on standard error,
//! `irm-viewer timing: key=value key=value ...`, every value a whole
//! number ([`parse_line`] reads one back). What each key counts from:
//!
//! - `*_at_ms`: milliseconds since the process started (the first thing
//!   `main` does; the loader's few milliseconds before it are not counted).
//! - `unlock_ms`: unlocking the credentials (Argon2id), on the worker;
//!   `unlock_done_at_ms` is when it finished.
//! - `open_ms`: the grant, decrypting and parsing, on the worker, after
//!   the unlock; `open_done_at_ms` is when the document was handed to the UI.
//! - `first_frame_at_ms`: the first frame painted (the window is up).
//! - `first_data_frame_at_ms`: the first frame that drew the document
//!   (a table's rows, the text, the picture), painted: taken when the next
//!   frame begins, so that frame's tessellation, texture upload and present
//!   are in it. `after_unlock_ms` is that less `unlock_done_at_ms`.
//! - `sort_ms`: from a sort being asked for (a header click, or
//!   `IRM_VIEWER_BENCH_SORT`) to the frame that drew the sorted rows,
//!   painted; `sort_compute_ms` is the ordering alone, on its thread.
//! - `frames`: the frames painted before that one (since the start, or
//!   since the sort was asked for).
//! - `vm_hwm_kb`: the process's peak resident memory so far; `rss_anon_kb`
//!   and `rss_file_kb`: what is resident now, as heap and as the program's
//!   and libraries' file pages (Linux).
//!
//! Two more variables act only with `IRM_VIEWER_TIMING=1`, for a benchmark
//! that drives a real window without a person: `IRM_VIEWER_BENCH_SORT=N`
//! sorts by column N (0-based) once the document is shown, by the same path
//! as a header click; `IRM_VIEWER_TIMING_EXIT=1` closes the window once the
//! document (and that sort) have been measured. No plaintext is ever
//! printed: only times, row counts and memory.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The start of the process, as `main` saw it first.
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the process; `main` calls it first. Later calls do
/// nothing.
pub fn mark_process_start() {
    PROCESS_START.get_or_init(Instant::now);
}

/// The prefix of every timing line.
pub const PREFIX: &str = "irm-viewer timing: ";

/// Where the lines go.
enum Sink {
    Stderr,
    /// Kept in memory, for tests.
    Memory(Vec<String>),
}

/// What has been seen so far; the frame hooks move it along.
#[derive(Default)]
struct Marks {
    unlock_done: Option<Instant>,
    /// Frames begun so far.
    frames: u64,
    first_frame_reported: bool,
    /// Set by the frame that drew the document, reported by the next one.
    data_drawn: bool,
    data_reported: bool,
    sort_asked: Option<(usize, Instant)>,
    /// `frames` when the sort was asked for.
    sort_asked_frame: u64,
    sort_compute: Option<Duration>,
    /// Set by the frame that drew the sorted rows, reported by the next one.
    sort_drawn: bool,
    sort_reported: bool,
    bench_sort_started: bool,
}

struct Inner {
    start: Instant,
    bench_sort: Option<usize>,
    exit_when_done: bool,
    sink: Mutex<Sink>,
    marks: Mutex<Marks>,
}

/// The timing of one viewer process (cheap to clone: the worker and the
/// sort thread hold clones).
#[derive(Clone)]
pub struct Timing {
    inner: Arc<Inner>,
}

/// Whether a variable's value turns a switch on: `1`, `true`, `yes`.
fn on(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| matches!(v.to_str(), Some("1" | "true" | "yes")))
}

impl Timing {
    /// From the environment: `None` unless `IRM_VIEWER_TIMING=1`.
    pub fn from_env() -> Option<Self> {
        let var = |name| std::env::var_os(name);
        Self::from_vars(
            var("IRM_VIEWER_TIMING").as_deref(),
            var("IRM_VIEWER_BENCH_SORT").as_deref(),
            var("IRM_VIEWER_TIMING_EXIT").as_deref(),
        )
    }

    /// From the variables' values (`IRM_VIEWER_TIMING`,
    /// `IRM_VIEWER_BENCH_SORT`, `IRM_VIEWER_TIMING_EXIT`), printing to
    /// standard error; `None` unless the first is on.
    pub fn from_vars(
        timing: Option<&OsStr>,
        bench_sort: Option<&OsStr>,
        exit: Option<&OsStr>,
    ) -> Option<Self> {
        if !on(timing) {
            return None;
        }
        let bench_sort = bench_sort.and_then(|v| v.to_str()?.trim().parse().ok());
        Some(Self::new(Sink::Stderr, bench_sort, on(exit)))
    }

    /// A timing whose lines are kept in memory ([`Timing::lines`]), for
    /// tests; `bench_sort` as `IRM_VIEWER_BENCH_SORT`.
    pub fn in_memory(bench_sort: Option<usize>, exit_when_done: bool) -> Self {
        Self::new(Sink::Memory(Vec::new()), bench_sort, exit_when_done)
    }

    fn new(sink: Sink, bench_sort: Option<usize>, exit_when_done: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                start: *PROCESS_START.get_or_init(Instant::now),
                bench_sort,
                exit_when_done,
                sink: Mutex::new(sink),
                marks: Mutex::new(Marks::default()),
            }),
        }
    }

    /// The lines printed so far, for a timing made by [`Timing::in_memory`].
    pub fn lines(&self) -> Vec<String> {
        match &*lock(&self.inner.sink) {
            Sink::Memory(lines) => lines.clone(),
            Sink::Stderr => Vec::new(),
        }
    }

    fn since_start(&self, at: Instant) -> u128 {
        at.saturating_duration_since(self.inner.start).as_millis()
    }

    fn print(&self, fields: &[(&str, u128)]) {
        let mut line = String::from(PREFIX);
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&format!("{key}={value}"));
        }
        match &mut *lock(&self.inner.sink) {
            Sink::Stderr => eprintln!("{line}"),
            Sink::Memory(lines) => lines.push(line),
        }
    }

    /// The worker unlocked the credentials in `took`, ending now.
    pub fn unlocked(&self, took: Duration) {
        let now = Instant::now();
        lock(&self.inner.marks).unlock_done = Some(now);
        self.print(&[
            ("unlock_ms", took.as_millis()),
            ("unlock_done_at_ms", self.since_start(now)),
        ]);
    }

    /// The worker opened the document (grant, decrypt, parse) in `took`,
    /// ending now.
    pub fn opened(&self, took: Duration) {
        self.print(&[
            ("open_ms", took.as_millis()),
            ("open_done_at_ms", self.since_start(Instant::now())),
        ]);
    }

    /// A frame begins: the previous one has been painted. Reports what it
    /// drew for the first time. Returns whether the window should close
    /// now (`IRM_VIEWER_TIMING_EXIT` and everything measured).
    pub fn frame_begins(&self) -> bool {
        let now = Instant::now();
        let mut marks = lock(&self.inner.marks);
        let mut lines = Vec::new();
        marks.frames += 1;
        // The second frame begins once the first was painted.
        if marks.frames == 2 {
            marks.first_frame_reported = true;
            lines.push(vec![("first_frame_at_ms", self.since_start(now))]);
        }
        if marks.data_drawn && !marks.data_reported {
            marks.data_reported = true;
            let at = self.since_start(now);
            let mut fields = vec![("first_data_frame_at_ms", at)];
            if let Some(unlocked) = marks.unlock_done {
                fields.push(("after_unlock_ms", now.duration_since(unlocked).as_millis()));
            }
            fields.push(("frames", u128::from(marks.frames.saturating_sub(1))));
            push_memory(&mut fields);
            lines.push(fields);
        }
        if marks.sort_drawn
            && !marks.sort_reported
            && let Some((column, asked)) = marks.sort_asked
        {
            marks.sort_reported = true;
            let mut fields = vec![
                ("sort_ms", now.duration_since(asked).as_millis()),
                ("sort_column", column as u128),
                (
                    "frames",
                    u128::from(marks.frames.saturating_sub(1 + marks.sort_asked_frame)),
                ),
            ];
            if let Some(compute) = marks.sort_compute {
                fields.push(("sort_compute_ms", compute.as_millis()));
            }
            push_memory(&mut fields);
            lines.push(fields);
        }
        let done = marks.data_reported && (self.inner.bench_sort.is_none() || marks.sort_reported);
        drop(marks);
        for fields in lines {
            self.print(&fields);
        }
        done && self.inner.exit_when_done
    }

    /// This frame drew the document; the next frame reports it.
    pub fn document_drawn(&self) {
        lock(&self.inner.marks).data_drawn = true;
    }

    /// Whether a frame must follow soon to report what this one drew (the
    /// window would otherwise sleep until the next input).
    pub fn wants_frame(&self) -> bool {
        let marks = lock(&self.inner.marks);
        (marks.data_drawn && !marks.data_reported)
            || (marks.sort_drawn && !marks.sort_reported)
            || (marks.data_reported && self.inner.bench_sort.is_some() && !marks.bench_sort_started)
            || !marks.first_frame_reported
            || (self.inner.exit_when_done && marks.data_reported)
    }

    /// The column `IRM_VIEWER_BENCH_SORT` asks to sort by, once, after the
    /// document was reported shown.
    pub fn bench_sort_due(&self) -> Option<usize> {
        let column = self.inner.bench_sort?;
        let mut marks = lock(&self.inner.marks);
        if !marks.data_reported || marks.bench_sort_started {
            return None;
        }
        marks.bench_sort_started = true;
        Some(column)
    }

    /// A sort by `column` was asked for now.
    pub fn sort_asked(&self, column: usize) {
        let mut marks = lock(&self.inner.marks);
        marks.sort_asked = Some((column, Instant::now()));
        marks.sort_asked_frame = marks.frames;
        marks.sort_compute = None;
        marks.sort_drawn = false;
        marks.sort_reported = false;
    }

    /// The sort's thread ordered the rows in `took`.
    pub fn sort_computed(&self, took: Duration) {
        lock(&self.inner.marks).sort_compute = Some(took);
    }

    /// This frame drew the table with no sort pending: the rows of any sort
    /// asked for are in it; the next frame reports it.
    pub fn sort_drawn(&self) {
        let mut marks = lock(&self.inner.marks);
        if marks.sort_asked.is_some() {
            marks.sort_drawn = true;
        }
    }
}

/// Locks `m`, going on after a panic elsewhere (these are only marks).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds the process's memory: its peak (VmHWM), and what is resident now
/// as anonymous memory (the heap: the document lives there) and as file
/// pages (the program and its libraries, such as the software renderer's
/// LLVM), in kB; 0 where unknown.
fn push_memory(fields: &mut Vec<(&str, u128)>) {
    for (name, field) in [
        ("vm_hwm_kb", "VmHWM:"),
        ("rss_anon_kb", "RssAnon:"),
        ("rss_file_kb", "RssFile:"),
    ] {
        fields.push((name, u128::from(status_kb(field))));
    }
}

/// One `kB` line of this process's `/proc/self/status` (`VmHWM:`,
/// `VmRSS:`, ...); 0 where unknown. Also the benchmark's measure.
pub fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The `key=value` pairs of a timing line, in order; `None` for a line
/// that is not one (or has a value that is not a whole number).
pub fn parse_line(line: &str) -> Option<Vec<(String, u64)>> {
    let rest = line.trim_end().strip_prefix(PREFIX)?;
    rest.split(' ')
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key_ok = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            key_ok.then_some(())?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_no_timing_without_the_variable() {
        assert!(Timing::from_vars(None, Some("1".as_ref()), Some("1".as_ref())).is_none());
        assert!(Timing::from_vars(Some("0".as_ref()), None, None).is_none());
        assert!(Timing::from_vars(Some("".as_ref()), None, None).is_none());
        assert!(Timing::from_vars(Some("1".as_ref()), None, None).is_some());
    }

    #[test]
    fn lines_parse_back_and_say_what_they_count_from() {
        let timing = Timing::in_memory(Some(2), true);
        timing.unlocked(Duration::from_millis(250));
        timing.opened(Duration::from_millis(600));
        assert!(!timing.frame_begins(), "nothing drawn yet");
        assert!(
            timing.wants_frame(),
            "the first frame's paint is reported next"
        );
        assert!(!timing.frame_begins(), "the window is up");
        timing.document_drawn();
        assert!(timing.wants_frame());
        assert!(!timing.frame_begins(), "the sort is still to come");
        assert_eq!(timing.bench_sort_due(), Some(2));
        assert_eq!(timing.bench_sort_due(), None, "once");
        timing.sort_asked(2);
        timing.sort_computed(Duration::from_millis(40));
        timing.sort_drawn();
        assert!(timing.frame_begins(), "everything measured: close");
        let lines = timing.lines();
        let parsed: Vec<Vec<(String, u64)>> = lines
            .iter()
            .map(|l| parse_line(l).unwrap_or_else(|| panic!("parses: {l}")))
            .collect();
        let keys: Vec<Vec<&str>> = parsed
            .iter()
            .map(|f| f.iter().map(|(k, _)| k.as_str()).collect())
            .collect();
        assert_eq!(
            keys,
            [
                vec!["unlock_ms", "unlock_done_at_ms"],
                vec!["open_ms", "open_done_at_ms"],
                vec!["first_frame_at_ms"],
                vec![
                    "first_data_frame_at_ms",
                    "after_unlock_ms",
                    "frames",
                    "vm_hwm_kb",
                    "rss_anon_kb",
                    "rss_file_kb"
                ],
                vec![
                    "sort_ms",
                    "sort_column",
                    "frames",
                    "sort_compute_ms",
                    "vm_hwm_kb",
                    "rss_anon_kb",
                    "rss_file_kb"
                ],
            ]
        );
        assert_eq!(parsed[0][0].1, 250);
        assert_eq!(parsed[4][1].1, 2);
        assert_eq!(parsed[4][3].1, 40);
        assert_eq!(parse_line("irm-viewer: document shown: 3 rows"), None);
        assert_eq!(parse_line("irm-viewer timing: x=1.5"), None);
    }
}
