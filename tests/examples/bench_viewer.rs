//! The viewer on a big file: a deterministic 1,000,000-row CSV of Japanese
//! customer rows (about 100 MB), sealed for a user of a real in-process key
//! server on loopback, then
//!
//! (a) open to first frame with data: grant, decrypt, parse and the first
//!     drawn frame (unlocking the credentials, an Argon2 step done once per
//!     session, is reported on its own line);
//! (b) the UI's time per frame while scrolling page by page in a kittest
//!     `Harness` (egui's pass plus tessellation; no GPU work), p50 and p95;
//! (c) sorting by a text column and by a numeric column;
//! (d) peak resident memory (VmHWM) from opening on, relative to the
//!     plaintext size;
//! (e) parsing the same plaintext with the viewer's own CSV reader
//!     (`Table::parse`) and with csv-core feeding the same `TableBuilder`
//!     ([`csv_core_parse`], the contender it was measured against and kept
//!     so the comparison can be run again), alternating, in the same run:
//!     median time and the peak memory each adds.
//!
//! Run: `cargo run --release -p irm-e2e --example bench_viewer`. Prints a
//! markdown table; it asserts nothing about time (STYLE.md §11).
//!
//! Options, for `scripts/bench-viewer`:
//! - `--list cp932`: the list as Japanese Excel saves CSV (CP932), with an
//!   e-mail column (about 115 MB), instead of the 99.5 MB UTF-8 list;
//! - `--no-csv-core`: leaves out (e);
//! - `--json`: also prints the figures as one JSON line, `bench_viewer: {..}`;
//! - `--serve DIR`: measures nothing. Starts the key server, seals the list
//!   for a new user `alice` into `DIR/customers.csv.irm`, prints one JSON
//!   line (`url`, `ca`, `user`, `code`: alice's enrollment code, `file`,
//!   `plaintext_bytes`, `rows`) and serves until its standard input closes,
//!   so that a real `irm enroll` and a real `irm-viewer` can use them.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use irm_client::{Passphrase, Session};
use irm_core::protocol::{CreateUserRequest, Role};
use irm_core::{
    EnvelopeBuilder, Metadata, Policy, PolicyGrant, Recipient, Rights, Sealer, StreamOptions,
};
use irm_e2e::Server;
use irm_e2e::stage::AdminSessions;
use irm_viewer::app::ViewerApp;
use irm_viewer::i18n::Lang;
use irm_viewer::model::{Model, Screen};
use irm_viewer::table::{Direction, SortKey, Table, TableBuilder};
use irm_viewer::timing::status_kb;
use irm_viewer::worker::{self, Event};
use tempfile::TempDir;
use zeroize::Zeroizing;

const ROWS: usize = 1_000_000;
const FRAMES: usize = 300;
/// Rounds of (e), each parsing the list once with each reader.
const PARSE_ROUNDS: usize = 5;

/// xorshift64*: the same rows on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SEI: &[(&str, &str)] = &[
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
];
const MEI: &[(&str, &str)] = &[
    ("太郎", "タロウ"),
    ("花子", "ハナコ"),
    ("一郎", "イチロウ"),
    ("美咲", "ミサキ"),
    ("健太", "ケンタ"),
    ("陽子", "ヨウコ"),
    ("大輔", "ダイスケ"),
    ("愛", "アイ"),
    ("翔", "ショウ"),
    ("由美", "ユミ"),
    ("誠", "マコト"),
    ("直美", "ナオミ"),
];
const PLACES: &[&str] = &[
    "東京都足立区千住",
    "東京都世田谷区",
    "大阪市北区梅田",
    "名古屋市中区栄",
    "札幌市中央区",
    "福岡市博多区",
    "横浜市西区",
    "京都市下京区",
    "仙台市青葉区",
    "広島市中区",
];
const AREA: &[&str] = &[
    "03", "06", "052", "011", "092", "045", "075", "022", "082", "090", "080",
];

/// Which list: the UTF-8 one of the figures in docs/PERFORMANCE.md §7, or
/// one as Japanese Excel saves CSV (CP932) with an e-mail column more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Utf8,
    Cp932,
}

/// Writes the CSV (header and `ROWS` rows) to `out`; returns its length.
fn write_customers(out: &mut impl Write, list: List) -> std::io::Result<u64> {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut len = 0u64;
    let mut line = String::with_capacity(256);
    let mut emit = |line: &mut String| -> std::io::Result<()> {
        match list {
            List::Utf8 => {
                out.write_all(line.as_bytes())?;
                len += line.len() as u64;
            }
            List::Cp932 => {
                let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(line);
                assert!(!unmappable, "every character has a CP932 code");
                out.write_all(&bytes)?;
                len += bytes.len() as u64;
            }
        }
        line.clear();
        Ok(())
    };
    line.push_str("顧客番号,氏名,フリガナ,電話番号,住所,契約日,残高");
    if list == List::Cp932 {
        line.push_str(",メールアドレス");
    }
    line.push('\n');
    emit(&mut line)?;
    for i in 1..=ROWS {
        let (sei, sei_kana) = SEI[rng.below(SEI.len() as u64) as usize];
        let (mei, mei_kana) = MEI[rng.below(MEI.len() as u64) as usize];
        let area = rng.pick(AREA);
        use std::fmt::Write as _;
        let _ = write!(
            line,
            "C{i:07},{sei} {mei},{sei_kana} {mei_kana},{area}-{:04}-{:04},{}{}-{},{}-{:02}-{:02},{}",
            rng.below(10_000),
            rng.below(10_000),
            rng.pick(PLACES),
            1 + rng.below(9),
            1 + rng.below(30),
            2000 + rng.below(26),
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(2_000_000),
        );
        if list == List::Cp932 {
            let _ = write!(line, ",c{i:07}.{}@example.co.jp", rng.pick(DOMAINS));
        }
        line.push('\n');
        emit(&mut line)?;
    }
    Ok(len)
}

/// The e-mail column's second part (CP932 list only).
const DOMAINS: &[&str] = &["mail", "corp", "home", "shop", "office"];

fn enroll(server: &Server, dir: &std::path::Path, user: &str, code: &str) -> Session {
    irm_e2e::stage::enroll(
        server,
        &dir.join("irm"),
        user,
        code,
        &format!("{user} passphrase"),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// What the command line asked for.
struct Options {
    list: List,
    csv_core: bool,
    json: bool,
    serve: Option<std::path::PathBuf>,
}

fn options() -> Options {
    let mut options = Options {
        list: List::Utf8,
        csv_core: true,
        json: false,
        serve: None,
    };
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--list") => {
                options.list = match args.next().as_deref().and_then(|a| a.to_str()) {
                    Some("utf8") => List::Utf8,
                    Some("cp932") => List::Cp932,
                    other => panic!("--list utf8|cp932, not {other:?}"),
                }
            }
            Some("--no-csv-core") => options.csv_core = false,
            Some("--json") => options.json = true,
            Some("--serve") => options.serve = Some(args.next().expect("--serve DIR").into()),
            _ => panic!(
                "usage: bench_viewer [--list utf8|cp932] [--no-csv-core] [--json] [--serve DIR]"
            ),
        }
    }
    options
}

/// Seals the list for alice into `path` as the CLI would (media type and
/// name in the metadata), streamed to disk so that generating it costs no
/// memory; returns the plaintext's length.
fn seal_list(admin: &Session, path: &std::path::Path, list: List) -> u64 {
    let (info, kas) = admin.server_key().expect("the server key");
    let policy = Policy::builder()
        .grant(PolicyGrant {
            recipients: BTreeSet::from([Recipient::parse("alice").expect("a recipient")]),
            rights: Rights::VIEW | Rights::COPY,
        })
        .max_lease_secs(600)
        .build()
        .expect("a policy");
    let header = EnvelopeBuilder::new(policy)
        .key_server(&info.url, kas)
        .metadata(Metadata {
            file_name: Some("customers.csv".into()),
            media_type: Some("text/csv".into()),
            plaintext_len: None,
        })
        .build()
        .expect("a header");
    let file = BufWriter::new(std::fs::File::create(path).expect("the sealed file"));
    let mut sealer = Sealer::new(&header, file, StreamOptions::default()).expect("a sealer");
    let plain_len = write_customers(&mut sealer, list).expect("sealing");
    sealer.finish().expect("sealed").flush().expect("written");
    plain_len
}

/// `--serve DIR`: the key server and the sealed list for a real viewer.
fn serve(dir: &std::path::Path, list: List) {
    let server = Server::start();
    let admins = AdminSessions::enroll(&server);
    let code = admins.add_user(&CreateUserRequest {
        name: "alice".into(),
        display_name: "Alice Example".into(),
        roles: vec![Role::User],
        groups: vec![],
    });
    std::fs::create_dir_all(dir).expect("the directory");
    let path = dir.join("customers.csv.irm");
    let plain_len = seal_list(&admins.admin, &path, list);
    let ready = serde_json::json!({
        "url": server.url,
        "ca": server.ca_pem,
        "user": "alice",
        "code": code,
        "file": path,
        "plaintext_bytes": plain_len,
        "rows": ROWS,
    });
    println!("{ready}");
    std::io::stdout().flush().expect("stdout");
    // Serves until whoever started us closes our standard input.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    drop(admins);
    drop(server);
}

fn main() {
    let options = options();
    if let Some(dir) = &options.serve {
        return serve(dir, options.list);
    }
    let list = options.list;
    let server = Server::start();
    let admins = AdminSessions::enroll(&server);
    let admin = &admins.admin;
    let code = admins.add_user(&CreateUserRequest {
        name: "alice".into(),
        display_name: "Alice Example".into(),
        roles: vec![Role::User],
        groups: vec![],
    });
    let alice_dir = TempDir::new().expect("a directory");
    drop(enroll(&server, alice_dir.path(), "alice", &code));
    let path = alice_dir.path().join("customers.csv.irm");
    let plain_len = seal_list(admin, &path, list);
    let sealed_len = std::fs::metadata(&path).expect("the sealed file").len();

    let t = Instant::now();
    let session = Session::unlock(
        &alice_dir.path().join("irm"),
        &Passphrase::new("alice passphrase").expect("a passphrase"),
    )
    .expect("alice's credentials unlock");
    let unlock = t.elapsed();

    // The window exists (fonts loaded) before the file is opened, as in
    // the real app, where the worker opens the file beside it.
    let model = Model {
        file_name: "customers.csv.irm".into(),
        screen: Screen::Opening,
        lang: Lang::Ja,
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_context_setup(irm_viewer::fonts::install)
        .build_ui_state(
            |ui, app: &mut ViewerApp| app.show(ui),
            ViewerApp::new(model, None),
        );
    harness.step();

    // Peak memory from here on: reset the high-water mark (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before_kb = status_kb("VmRSS:");

    // (a) open to first frame with data.
    let t = Instant::now();
    let (grant, open) = worker::open(&session, &path).expect("the file opens");
    let opened = t.elapsed();
    harness.state_mut().handle_event(Event::Opened(open));
    let mut frames_to_data = 0;
    while harness.query_by_label("C0000001").is_none() {
        harness.step();
        frames_to_data += 1;
        assert!(frames_to_data < 10, "the first row is drawn");
    }
    let first_frame = t.elapsed();

    // (b) per-frame time while scrolling down a page per frame.
    harness.hover_at(egui::pos2(640.0, 450.0));
    let mut frames = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Page,
            delta: egui::vec2(0.0, -1.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        let t = Instant::now();
        harness.step();
        let shapes = harness.output().shapes.clone();
        let ppp = harness.output().pixels_per_point;
        let pass = t.elapsed();
        let t = Instant::now();
        let primitives = harness.ctx.tessellate(shapes, ppp);
        frames.push(pass + t.elapsed());
        assert!(!primitives.is_empty());
    }
    let scrolled_to = harness
        .state()
        .ui
        .table
        .on_screen()
        .map_or(0, |(first, _)| first);
    frames.sort();

    // The search jumps to the last row: it is drawn, and frames there cost
    // the same (the offset is 20 million points, near f32's precision).
    harness.state_mut().ui.table.search = format!("C{ROWS:07}");
    let t = Instant::now();
    harness.step();
    harness.step();
    let jump = t.elapsed();
    assert!(
        harness.query_by_label(&format!("C{ROWS:07}")).is_some(),
        "the last row is drawn after the jump"
    );
    let mut deep = Vec::with_capacity(30);
    for _ in 0..30 {
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Page,
            delta: egui::vec2(0.0, 1.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        let t = Instant::now();
        harness.step();
        let shapes = harness.output().shapes.clone();
        let ppp = harness.output().pixels_per_point;
        let pass = t.elapsed();
        let t = Instant::now();
        let primitives = harness.ctx.tessellate(shapes, ppp);
        deep.push(pass + t.elapsed());
        assert!(!primitives.is_empty());
    }
    deep.sort();

    // (c) sorting, as a header click runs it (off the UI thread).
    let doc = harness.state().model.open().expect("open").doc.clone();
    let table = doc.table(0).expect("a table");
    let t = Instant::now();
    let by_name = table.sort_order(SortKey {
        column: 1,
        direction: Direction::Ascending,
    });
    let sort_text = t.elapsed();
    let t = Instant::now();
    let by_balance = table.sort_order(SortKey {
        column: 6,
        direction: Direction::Descending,
    });
    let sort_number = t.elapsed();
    assert_eq!((by_name.len(), by_balance.len()), (ROWS, ROWS));
    drop((by_name, by_balance, doc));

    let peak_kb = status_kb("VmHWM:");
    let plain_mb = plain_len as f64 / 1e6;
    let peak_mb = peak_kb as f64 * 1024.0 / 1e6;
    let added_mb = peak_kb.saturating_sub(rss_before_kb) as f64 * 1024.0 / 1e6;
    drop(grant);

    let ok = |pass: bool| if pass { "yes" } else { "NO" };
    println!(
        "irm-viewer, {ROWS} rows, plaintext {plain_mb:.1} MB (sealed {:.1} MB)\n",
        sealed_len as f64 / 1e6
    );
    println!("| measure | figure | target | met |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| unlock credentials (Argon2, once per session) | {} | – | – |",
        ms(unlock)
    );
    println!("| grant + decrypt + parse | {} | – | – |", ms(opened));
    println!(
        "| (a) open to first frame with data ({frames_to_data} frame(s)) | {} | ≤ 1500 ms | {} |",
        ms(first_frame),
        ok(first_frame <= Duration::from_millis(1500))
    );
    let p50 = percentile(&frames, 0.5);
    let p95 = percentile(&frames, 0.95);
    println!(
        "| (b) frame time scrolling by pages, p50 ({FRAMES} frames, reached row {scrolled_to}) | {} | – | – |",
        ms(p50)
    );
    println!(
        "| (b) frame time scrolling by pages, p95 | {} | ≤ 16 ms | {} |",
        ms(p95),
        ok(p95 <= Duration::from_millis(16))
    );
    println!(
        "| (b) frame time, max | {} | – | – |",
        ms(*frames.last().expect("frames"))
    );
    println!(
        "| search a million rows and jump to the last (2 frames) | {} | – | – |",
        ms(jump)
    );
    println!(
        "| (b) frame time scrolling up from the last row, p95 (30 frames) | {} | ≤ 16 ms | {} |",
        ms(percentile(&deep, 0.95)),
        ok(percentile(&deep, 0.95) <= Duration::from_millis(16))
    );
    println!(
        "| (c) sort by 氏名 (text) | {} | ≤ 2000 ms | {} |",
        ms(sort_text),
        ok(sort_text <= Duration::from_secs(2))
    );
    println!(
        "| (c) sort by 残高 (numeric) | {} | ≤ 2000 ms | {} |",
        ms(sort_number),
        ok(sort_number <= Duration::from_secs(2))
    );
    println!(
        "| (d) peak RSS (VmHWM) from opening on | {peak_mb:.0} MB = {:.2}x plaintext | ≤ 3x | {} |",
        peak_mb / plain_mb,
        ok(peak_mb / plain_mb <= 3.0)
    );
    println!(
        "| (d) of which added by opening (peak − RSS before) | {added_mb:.0} MB = {:.2}x plaintext | – | – |",
        added_mb / plain_mb
    );

    if options.json {
        let figures = serde_json::json!({
            "list": format!("{list:?}").to_lowercase(),
            "rows": ROWS,
            "plaintext_bytes": plain_len,
            "unlock_ms": unlock.as_secs_f64() * 1e3,
            "open_ms": opened.as_secs_f64() * 1e3,
            "first_data_frame_ms": first_frame.as_secs_f64() * 1e3,
            "scroll_p95_ms": p95.as_secs_f64() * 1e3,
            "sort_text_ms": sort_text.as_secs_f64() * 1e3,
            "sort_number_ms": sort_number.as_secs_f64() * 1e3,
            "peak_rss_kb": peak_kb,
            "added_rss_kb": peak_kb.saturating_sub(rss_before_kb),
        });
        println!("bench_viewer: {figures}");
    }
    // (e) the viewer's CSV reader against csv-core, on the same UTF-8 text.
    if !options.csv_core || list != List::Utf8 {
        return;
    }
    drop(harness);
    let mut plain = Vec::with_capacity(plain_len as usize);
    write_customers(&mut plain, list).expect("the list, in memory");
    let text = std::str::from_utf8(&plain).expect("the list is UTF-8");
    let (ours, theirs) = (Table::parse(text, ','), csv_core_parse(text, b','));
    assert_eq!(
        (ours.row_count(), ours.columns()),
        (theirs.row_count(), theirs.columns())
    );
    for r in 0..ours.row_count() {
        assert!(ours.row(r).eq(theirs.row(r)), "row {r} reads the same");
    }
    drop((ours, theirs));
    let (mut core_times, mut own_times) = (Vec::new(), Vec::new());
    let (mut core_peak_kb, mut own_peak_kb) = (0, 0);
    for round in 0..PARSE_ROUNDS {
        // Alternate which goes first, so neither always meets a warm heap.
        for csv_core_now in [round % 2 == 0, round % 2 == 1] {
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let before_kb = status_kb("VmRSS:");
            let t = Instant::now();
            let table = if csv_core_now {
                csv_core_parse(text, b',')
            } else {
                Table::parse(text, ',')
            };
            let took = t.elapsed();
            let added_kb = status_kb("VmHWM:").saturating_sub(before_kb);
            assert_eq!(table.data_rows(), ROWS);
            if csv_core_now {
                core_times.push(took);
                core_peak_kb = core_peak_kb.max(added_kb);
            } else {
                own_times.push(took);
                own_peak_kb = own_peak_kb.max(added_kb);
            }
        }
    }
    core_times.sort();
    own_times.sort();
    let (core, own) = (percentile(&core_times, 0.5), percentile(&own_times, 0.5));
    let rounds = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let x = |kb: u64| kb as f64 * 1024.0 / 1e6 / plain_mb;
    println!("\n(e) parsing the {plain_mb:.1} MB list, {PARSE_ROUNDS} alternating rounds\n");
    println!("| reader | median | each round (ms, sorted) | peak memory added |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| the viewer's own (`Table::parse`) | {} | {} | {:.2}x plaintext |",
        ms(own),
        rounds(&own_times),
        x(own_peak_kb)
    );
    println!(
        "| csv-core into `TableBuilder` | {} | {} | {:.2}x plaintext |",
        ms(core),
        rounds(&core_times),
        x(core_peak_kb)
    );
    println!(
        "| csv-core time / own time (medians) | {:.2} | – | – |",
        core.as_secs_f64() / own.as_secs_f64()
    );
}

/// The contender of (e): `csv-core` (the `csv` crate's allocation-free
/// reader) finding the fields of `text` and feeding the viewer's
/// `TableBuilder`, read the way the viewer reads CSV where the two agree.
///
/// csv-core writes unescaped fields as bytes, and the viewer forbids
/// `unsafe`, so turning its output into the table's `String` would check
/// all of it as UTF-8 (on this list that check alone was a third of the
/// parse). Instead a record from which csv-core dropped nothing but the
/// separators and the line break is copied from `text`, which is already
/// a `str`; only records with quotes take csv-core's output, checked.
///
/// Where csv-core reads differently: it skips blank lines (the viewer
/// shows a row with one empty cell, so lines are started here), and a
/// quote opens a quoted field only at the start of a field (the viewer
/// opens one anywhere). The list has neither.
fn csv_core_parse(text: &str, delimiter: u8) -> Table {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let input = text.as_bytes();
    let mut out = TableBuilder::with_capacity(text.len());
    let mut reader = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    // One record's unescaped fields, and where each ends in it; both grow
    // for a longer record (the scratch by moving, as it holds plaintext).
    let mut scratch = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut ends = vec![0usize; 64];
    let mut pos = 0;
    // Whether the last record ended at a CR, which pairs with an LF right
    // after it (csv-core would take that LF too).
    let mut after_cr = false;
    loop {
        if after_cr && input.get(pos) == Some(&b'\n') {
            pos += 1;
        }
        // Blank lines are rows here; csv-core never sees them.
        while let Some(&b) = input.get(pos) {
            let len = match (b, input.get(pos + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r' | b'\n', _) => 1,
                _ => break,
            };
            out.end_cell();
            out.end_row();
            pos += len;
        }
        let record_start = pos;
        let (mut written, mut fields) = (0, 0);
        let terminated = loop {
            let rest = input.get(pos..).unwrap_or_default();
            let (result, read, w, f) = reader.read_record(
                rest,
                scratch.get_mut(written..).unwrap_or_default(),
                ends.get_mut(fields..).unwrap_or_default(),
            );
            pos += read;
            written += w;
            fields += f;
            match result {
                // Ended by a line break, or by the end of the text (the
                // call with no input left).
                csv_core::ReadRecordResult::Record => break !rest.is_empty(),
                csv_core::ReadRecordResult::End => {
                    return out.finish(char::from(delimiter));
                }
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                csv_core::ReadRecordResult::OutputFull => {
                    let mut bigger = Zeroizing::new(vec![0u8; scratch.len() * 2]);
                    bigger[..written].copy_from_slice(&scratch[..written]);
                    scratch = bigger; // the old one is wiped as it drops
                }
            }
        };
        after_cr = terminated && pos > 0 && input.get(pos - 1) == Some(&b'\r');
        // Dropped: the separators, the line break, and any quotes.
        let dropped = (pos - record_start) - written;
        let plain = dropped == fields.saturating_sub(1) + usize::from(terminated);
        let unescaped = if plain {
            None
        } else {
            std::str::from_utf8(scratch.get(..written).unwrap_or_default()).ok()
        };
        let (mut from, mut field_start) = (record_start, 0);
        for &end in ends.get(..fields).unwrap_or_default() {
            let len = end - field_start;
            let cell = match unescaped {
                None => text.get(from..from + len),
                Some(record) => record.get(field_start..end),
            };
            out.push_str(cell.unwrap_or_default());
            out.end_cell();
            (from, field_start) = (from + len + 1, end);
        }
        out.end_row();
    }
}
