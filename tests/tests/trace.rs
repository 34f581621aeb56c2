//! Issue #14 point 6: a leaked list is traced to its export, and a photo of
//! the watermark to its grant (PROTOCOL.md §7.8). A 100,000-row CP932
//! customer list is exported under an approved take-out, cut to 1,000
//! random rows, re-encoded to UTF-8 and reordered, 100 times; each cut is
//! traced through one key server. The exports go through the client's
//! `Session::export_list`, the code `irm open` runs, with seeded positions
//! so that a failure can be replayed; `irm open` and `irm trace` themselves
//! are driven on a small list in the second test.

use std::collections::{BTreeMap, BTreeSet};

use irm_client::Session;
use irm_client::canary::{RandomSource, contact_values};
use irm_core::protocol::{ExportReceipt, TakeOut};
use irm_core::{Opener, PolicyGrant, Recipient, Rights, SealedHeader, StreamOptions};
use irm_e2e::stage::{Stage, enroll};
use irm_e2e::{Admins, Person, Server};
use tempfile::TempDir;

/// SplitMix64: the test's positions and cuts, reproducible.
struct Seeded(u64);

impl RandomSource for Seeded {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

const HEADER: &str = "顧客番号,氏名,フリガナ,電話番号,メールアドレス,郵便番号,住所,契約日";

/// A customer list of `rows` rows, in CP932 as Japanese Excel saves it.
fn customer_list(rows: usize) -> Vec<u8> {
    const FAMILY: [(&str, &str); 6] = [
        ("山田", "ヤマダ"),
        ("鈴木", "スズキ"),
        ("高橋", "タカハシ"),
        ("田中", "タナカ"),
        ("渡辺", "ワタナベ"),
        ("中村", "ナカムラ"),
    ];
    const GIVEN: [(&str, &str); 5] = [
        ("太郎", "タロウ"),
        ("花子", "ハナコ"),
        ("一郎", "イチロウ"),
        ("恵子", "ケイコ"),
        ("翔", "ショウ"),
    ];
    let mut text = String::with_capacity(rows * 120);
    text.push_str(HEADER);
    text.push_str("\r\n");
    for i in 0..rows {
        let (f, fk) = FAMILY[i % FAMILY.len()];
        let (g, gk) = GIVEN[i / FAMILY.len() % GIVEN.len()];
        text.push_str(&format!(
            "{},{f} {g},{fk} {gk},090-{:04}-{:04},c{i}@example.co.jp,{:03}-{:04},東京都港区芝{}-{}-{},2024/{:02}/{:02}\r\n",
            100_000 + i,
            1000 + i / 10_000,
            i % 10_000,
            100 + i % 900,
            i % 10_000,
            1 + i % 5,
            1 + i % 20,
            1 + i % 30,
            1 + i % 12,
            1 + i % 28,
        ));
    }
    encoding_rs::SHIFT_JIS.encode(&text).0.into_owned()
}

/// `who` asks to export `file_id` and both administrators approve.
fn approved_export(stage: &Stage, who: &Session, file_id: &str) {
    let filed = who
        .request_take_out(file_id, TakeOut::Export)
        .expect("the export is filed");
    for admin in [&stage.admins.admin, &stage.admins.approver] {
        admin
            .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
            .expect("an administrator approves");
    }
}

/// `who` exports the sealed list as `irm open` does, with seeded positions.
fn export(who: &Session, sealed: &[u8], seed: u64) -> (Vec<u8>, ExportReceipt, String) {
    let mut input = sealed;
    let header = SealedHeader::read_from(&mut input).expect("a header");
    let grant = who.grant(&header, false).expect("a grant");
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut Opener::new(
            grant.verified_header().expect("the lease holds"),
            input,
            StreamOptions::default(),
        ),
        &mut plain,
    )
    .expect("the file decrypts");
    let (out, receipt) = who
        .export_list(&grant, &plain, None, &mut Seeded(seed))
        .expect("the approved export is reported");
    let watermark = grant.watermark_id().expect("a watermark id").to_owned();
    (out.to_vec(), receipt, watermark)
}

/// `count` distinct random data lines of `lines` (the header first), in a
/// random order, as UTF-8 text.
fn cut(lines: &[&str], count: usize, rng: &mut Seeded) -> Vec<u8> {
    let mut picked: Vec<usize> = (1..lines.len()).collect();
    for i in 0..count {
        let j = i + rng.below((picked.len() - i) as u64) as usize;
        picked.swap(i, j);
    }
    let mut text = String::from(lines[0]);
    for &i in &picked[..count] {
        text.push('\n');
        text.push_str(lines[i]);
    }
    text.into_bytes()
}

fn contacts(canaries: &[irm_core::protocol::Canary]) -> BTreeSet<String> {
    canaries
        .iter()
        .flat_map(|c| [c.phone.clone(), c.email.clone()])
        .collect()
}

#[test]
fn a_leaked_cut_of_an_exported_list_names_its_export() {
    let mut stage = Stage::new();
    let code = stage.add_user("bob");
    let bob_dir = TempDir::new().expect("a directory");
    let bob = enroll(
        &stage.server,
        &bob_dir.path().join("irm"),
        "bob",
        &code,
        "bob passphrase",
    );
    let alice = Session::unlock(&stage.alice_config_dir(), &Stage::alice_passphrase())
        .expect("alice unlocks");

    let list = customer_list(100_000);
    let policy = irm_core::Policy::builder()
        .grant(PolicyGrant {
            recipients: BTreeSet::from([
                Recipient::parse("alice").expect("a recipient"),
                Recipient::parse("bob").expect("a recipient"),
            ]),
            rights: Rights::VIEW | Rights::EXPORT,
        })
        .max_lease_secs(600)
        .build()
        .expect("a policy");
    let (path, file_id) = stage.seal_with("customers.irm", policy, &list);
    let sealed = std::fs::read(path).expect("the sealed list");
    // Sealed offline: the first grant registers it, so it can be asked for.
    let header = SealedHeader::read_from(&mut &sealed[..]).expect("a header");
    drop(alice.grant(&header, false).expect("alice is a recipient"));

    approved_export(&stage, &alice, &file_id);
    let (exported, receipt, watermark) = export(&alice, &sealed, 14);
    let export_id = receipt
        .export_id
        .clone()
        .expect("an approved export has an id");
    let k = irm_core::protocol::canary_count(100_000);
    assert_eq!(receipt.canaries.len(), k as usize, "0.69% of 100,000 rows");
    // Still CP932, every real row kept, the canaries among them.
    let (text, _, errors) = encoding_rs::SHIFT_JIS.decode(&exported);
    assert!(!errors, "the export is still CP932");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1 + 100_000 + k as usize);
    assert_eq!(lines[0], HEADER);

    // 100 random cuts of 1,000 rows, re-encoded to UTF-8 and reordered.
    let admin = &mut stage.admins.admin;
    admin
        .set_reason(Some("INC-14: a list offered for sale"))
        .expect("a reason");
    let mut rng = Seeded(6);
    let mut named = 0;
    for _ in 0..100 {
        let leak = cut(&lines, 1000, &mut rng);
        let values: Vec<String> = contact_values(&leak).into_iter().collect();
        assert!(
            values.len() >= 2000,
            "every row's phone and address is found"
        );
        let answer = admin
            .trace_canaries(&values)
            .expect("the trace is answered");
        if let Some(best) = answer.exports.first() {
            assert_eq!(answer.exports.len(), 1, "one export is named");
            assert_eq!(best.export_id, export_id);
            assert_eq!(best.user, "alice");
            assert_eq!(best.file_id, file_id);
            assert_eq!(best.approvers.len(), 2, "{best:?}");
            named += 1;
        }
    }
    assert!(named >= 99, "{named} of 100 cuts named the export");

    // A list without canaries says so.
    let original = String::from_utf8(
        encoding_rs::SHIFT_JIS
            .decode(&list)
            .0
            .replace("\r\n", "\n")
            .into_bytes(),
    )
    .expect("UTF-8");
    let original_lines: Vec<&str> = original.lines().collect();
    let clean = cut(&original_lines, 1000, &mut rng);
    let values: Vec<String> = contact_values(&clean).into_iter().collect();
    let answer = admin
        .trace_canaries(&values)
        .expect("the trace is answered");
    assert!(answer.exports.is_empty(), "{answer:?}");
    assert_eq!(answer.checked, 2000);

    // A second export of the same file, by another person, carries other
    // canaries, and names that person.
    approved_export(&stage, &bob, &file_id);
    let (bob_exported, bob_receipt, _) = export(&bob, &sealed, 15);
    assert_ne!(bob_receipt.export_id, receipt.export_id);
    assert_eq!(bob_receipt.canaries.len(), k as usize);
    assert!(
        contacts(&bob_receipt.canaries).is_disjoint(&contacts(&receipt.canaries)),
        "no canary value is shared between two exports"
    );
    let values: Vec<String> = contact_values(&bob_exported).into_iter().collect();
    // The whole list: sent in parts of at most MAX_TRACE_VALUES.
    let parts = values.len().div_ceil(irm_core::protocol::MAX_TRACE_VALUES);
    let answer = stage
        .admins
        .admin
        .trace_canaries(&values)
        .expect("the trace is answered");
    assert_eq!(answer.exports.len(), 1, "{answer:?}");
    assert_eq!(answer.exports[0].user, "bob");
    assert_eq!(answer.exports[0].matched, 2 * k, "every phone and address");

    // A photo of alice's screen names her grant, read back in lower case.
    let grants = stage
        .admins
        .admin
        .trace_watermark(&watermark.to_lowercase())
        .expect("the watermark is looked up");
    assert_eq!(grants.watermark_id, watermark);
    assert_eq!(grants.grants.len(), 1);
    assert_eq!(grants.grants[0].user, "alice");
    assert_eq!(grants.grants[0].file_id, file_id);

    // Both lookups are audited with their reason and what matched.
    let records = stage
        .admins
        .admin
        .audit_records(None, Some(1000))
        .expect("the audit log");
    let traces: BTreeMap<&str, usize> = records
        .iter()
        .filter(|r| r.action.starts_with("admin.trace."))
        .fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.action.as_str()).or_default() += 1;
            m
        });
    assert_eq!(
        traces.get("admin.trace.canaries"),
        Some(&(100 + 1 + parts)),
        "{traces:?}"
    );
    assert_eq!(traces.get("admin.trace.watermark"), Some(&1));
    assert!(records.iter().any(|r| {
        r.action == "admin.trace.canaries"
            && r.detail.as_deref().is_some_and(|d| {
                d.contains(&format!("matched={export_id}("))
                    && d.ends_with("reason=INC-14: a list offered for sale")
            })
    }));
    // The export's own record names its canaries.
    assert!(records.iter().any(|r| {
        r.action == "event.export"
            && r.actor_user.as_deref() == Some("alice")
            && r.detail
                .as_deref()
                .is_some_and(|d| d.contains(&format!("export={export_id} canaries={k}")))
    }));
}

#[test]
fn irm_open_writes_canaries_and_irm_trace_names_the_export() {
    let server = Server::start();
    let admins = Admins::enroll(&server);
    let code = admins.add_user(&["alice", "--display-name", "Alice Example"]);
    let alice = Person::new("alice");
    alice.enroll_by_code(&server, &code);
    let auditor_code = admins.add_user(&["audrey", "--role", "auditor"]);
    let auditor = Person::new("audrey");
    auditor.enroll_by_code(&server, &auditor_code);

    let list = customer_list(50);
    let input = admins.admin.write("customers.csv", &list);
    let sealed = alice.path("customers.irm");
    admins.admin.ok(&[
        "seal",
        input.to_str().expect("UTF-8"),
        "-o",
        sealed.to_str().expect("UTF-8"),
        "--to",
        "alice",
        "--allow",
        "view,export",
    ]);
    let sealed = sealed.to_str().expect("UTF-8");
    let filed = alice.ok(&["export", "request", sealed, "--reason", "CASE-6"]);
    let id = filed["request"]["id"].as_str().expect("a request id");
    admins.second.ok(&["admin", "request", "approve", id]);
    admins.admin.ok(&["admin", "request", "approve", id]);
    let out = alice.path("customers.csv");
    let opened = alice.ok(&["open", sealed, "-o", out.to_str().expect("UTF-8")]);
    assert_eq!(opened["canaries"], 1, "{opened}");
    let exported = std::fs::read(&out).expect("the export");
    let (text, _, errors) = encoding_rs::SHIFT_JIS.decode(&exported);
    assert!(!errors, "CP932 stays CP932");
    assert_eq!(text.lines().count(), 1 + 50 + 1);

    // Pasted as UTF-8 text, a few rows: the canary's row is among them.
    let canary_row = text
        .lines()
        .find(|l| l.contains("@mail.invalid"))
        .expect("the canary row");
    let pasted = auditor.write(
        "pasted.txt",
        format!("{}\n{canary_row}\n", text.lines().nth(3).unwrap()).as_bytes(),
    );
    let (code, answer) = auditor.json(&[
        "trace",
        pasted.to_str().expect("UTF-8"),
        "--reason",
        "INC-6",
    ]);
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["exports"][0]["user"], "alice", "{answer}");
    assert_eq!(
        answer["exports"][0]["approvers"].as_array().map(Vec::len),
        Some(2)
    );

    // The same row in a workbook, its phone number typed as a number (the
    // leading zero lost, as Excel does): named as well.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, cell) in canary_row.split(',').enumerate() {
        let col = col as u16;
        if cell.starts_with("03-") || cell.starts_with("06-") {
            let digits: String = cell.chars().filter(char::is_ascii_digit).collect();
            sheet
                .write_number(0, col, digits.parse::<f64>().expect("digits"))
                .expect("a cell");
        } else if !cell.contains('@') {
            sheet.write_string(0, col, cell).expect("a cell");
        }
    }
    let xlsx = auditor.write("leak.xlsx", &book.save_to_buffer().expect("a workbook"));
    let (code, answer) =
        auditor.json(&["trace", xlsx.to_str().expect("UTF-8"), "--reason", "INC-6"]);
    assert_eq!(code, 0, "{answer}");
    assert_eq!(
        answer["exports"][0]["matched"], 1,
        "the phone number alone: {answer}"
    );

    // The list as sealed carries none: exit 8, and says so.
    let (code, answer) =
        auditor.json(&["trace", input.to_str().expect("UTF-8"), "--reason", "INC-6"]);
    assert_eq!(code, 8, "{answer}");
    assert_eq!(answer["kind"], "not_found");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("no canaries found"))
    );

    // Without a reason, nothing is asked (exit 2); a person without the
    // role is refused (exit 3).
    let (code, _) = auditor.json(&["trace", pasted.to_str().expect("UTF-8")]);
    assert_eq!(code, 2);
    let (code, answer) = alice.json(&[
        "trace",
        pasted.to_str().expect("UTF-8"),
        "--reason",
        "curious",
    ]);
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["reason"], "role_required");

    // A list sealed from standard input has no name or type: its columns
    // tell that it is one. A letter is exported as it is.
    for (data, canaries) in [
        (
            &b"customer_id,name,phone\nC-000001,x,03-1234-5678\nC-000002,y,06-2345-6789\n"[..],
            1,
        ),
        (
            &b"Dear Sato, thank you for your call, 03-1234-5678.\n"[..],
            0,
        ),
    ] {
        let sealed = alice.path("piped.irm");
        let out = admins
            .admin
            .irm(&[
                "seal",
                "-",
                "-o",
                sealed.to_str().expect("UTF-8"),
                "--to",
                "alice",
                "--allow",
                "view,export",
                "--force",
                "--json",
            ])
            .write_stdin(data)
            .output()
            .expect("irm runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sealed = sealed.to_str().expect("UTF-8");
        let filed = alice.ok(&["export", "request", sealed, "--reason", "CASE-7"]);
        let id = filed["request"]["id"].as_str().expect("a request id");
        admins.second.ok(&["admin", "request", "approve", id]);
        admins.admin.ok(&["admin", "request", "approve", id]);
        let out = alice.path("piped.csv");
        let opened = alice.ok(&[
            "open",
            sealed,
            "-o",
            out.to_str().expect("UTF-8"),
            "--force",
        ]);
        assert_eq!(opened["canaries"], canaries, "{opened}");
        let written = std::fs::read(&out).expect("the export");
        if canaries == 0 {
            assert_eq!(written, data);
        }
    }

    // An unknown watermark id: exit 8; a malformed one: the server's 400.
    let (code, _) = auditor.json(&[
        "trace",
        "--watermark",
        "0000-0000-0000",
        "--reason",
        "INC-6",
    ]);
    assert_eq!(code, 8);
    let (code, _) = auditor.json(&["trace", "--watermark", "UUUU", "--reason", "INC-6"]);
    assert_eq!(code, 1);
}
