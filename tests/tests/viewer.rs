//! The viewer's worker against the real key server: it opens a sealed CP932
//! CSV, renews the lease at `renew_due`, and closes the document when a
//! renewal is refused: the administrator revoked the file, the policy's
//! not-after time passed, or the user was suspended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use irm_client::{Passphrase, Session};
use irm_core::protocol::{CreateUserRequest, DenyReason, Role};
use irm_core::{EnvelopeBuilder, Metadata, Rights, Sealer, StreamOptions};
use irm_e2e::stage::{AdminSessions, policy_for};
use irm_e2e::{Server, now_unix};
use irm_viewer::model::{Content, Failure};
use irm_viewer::text::TextEncoding;
use irm_viewer::worker::{Command, Event, Source, Worker};
use tempfile::TempDir;

const CSV: &str =
    "顧客番号,氏名,電話番号\r\n1001,山田 太郎,03-1234-5678\r\n1002,鈴木 花子,06-9876-5432\r\n";
/// Short enough that the worker renews within the test (at two thirds).
const LEASE_SECS: u32 = 3;

fn enroll(server: &Server, dir: &TempDir, user: &str, code: &str) -> Session {
    irm_e2e::stage::enroll(
        server,
        &dir.path().join("irm"),
        user,
        code,
        &format!("{user} passphrase"),
    )
}

/// The next event other than the "opening…" progress.
fn next(worker: &Worker) -> Event {
    loop {
        match worker.recv_timeout(Duration::from_secs(20)) {
            Some(Event::Opening) => {}
            Some(event) => return event,
            None => panic!("the worker reports within 20 s"),
        }
    }
}

/// A running server, alice enrolled, and a CP932 CSV sealed for her with
/// `rights` and a short lease, in her home directory.
struct Stage {
    _server: Server,
    admins: AdminSessions,
    alice_dir: TempDir,
    path: std::path::PathBuf,
    header: irm_core::VerifiedHeader,
}

fn stage(rights: Rights) -> Stage {
    // Sealed the way Japanese Excel saves CSV: CP932, with no metadata, so
    // the viewer goes by the name and the bytes.
    let (cp932, _, _) = encoding_rs::SHIFT_JIS.encode(CSV);
    stage_with(rights, &cp932, Metadata::default(), "customers.csv.irm")
}

fn stage_with(rights: Rights, plaintext: &[u8], metadata: Metadata, name: &str) -> Stage {
    stage_until(rights, plaintext, metadata, name, None)
}

/// As [`stage`], on a server that keeps the new server's take-out rules:
/// two approvals for an export, or a copy or print of more than 100 rows.
fn stage_requiring_take_out_approval(rights: Rights) -> Stage {
    let (cp932, _, _) = encoding_rs::SHIFT_JIS.encode(CSV);
    stage_full(
        rights,
        &cp932,
        Metadata::default(),
        "customers.csv.irm",
        None,
        false,
        LEASE_SECS,
    )
}

/// As [`stage_with`], with a policy that expires `expires_in_secs` after
/// sealing (measured once the server and people are set up, so a slow
/// machine does not eat into it).
fn stage_until(
    rights: Rights,
    plaintext: &[u8],
    metadata: Metadata,
    name: &str,
    expires_in_secs: Option<u64>,
) -> Stage {
    stage_full(
        rights,
        plaintext,
        metadata,
        name,
        expires_in_secs,
        true,
        LEASE_SECS,
    )
}

fn stage_full(
    rights: Rights,
    plaintext: &[u8],
    metadata: Metadata,
    name: &str,
    expires_in_secs: Option<u64>,
    take_out_freely: bool,
    lease_secs: u32,
) -> Stage {
    let server = Server::start();
    let admins = AdminSessions::enroll(&server);
    // Take-out approval has tests of its own (key-server/tests/approval.rs,
    // and one below).
    if take_out_freely {
        admins.take_out_without_approval();
    }
    let code = admins.add_user(&CreateUserRequest {
        name: "alice".into(),
        display_name: "Alice Example".into(),
        roles: vec![Role::User],
        groups: vec![],
    });
    let alice_dir = TempDir::new().expect("a directory");
    drop(enroll(&server, &alice_dir, "alice", &code));

    let (info, kas) = admins.admin.server_key().expect("the server key");
    let not_after = expires_in_secs.map(|secs| now_unix() + secs);
    let mut policy = policy_for("alice", rights);
    policy.max_lease_secs = lease_secs;
    policy.not_after_unix = not_after;
    let header = EnvelopeBuilder::new(policy)
        .key_server(&info.url, kas)
        .metadata(metadata)
        .build()
        .expect("a header");
    let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).expect("a sealer");
    std::io::Write::write_all(&mut sealer, plaintext).expect("sealing");
    let path = alice_dir.path().join(name);
    std::fs::write(&path, sealer.finish().expect("sealed")).expect("writing the sealed file");

    Stage {
        _server: server,
        admins,
        alice_dir,
        path,
        header,
    }
}

fn spawn(stage: &Stage) -> Worker {
    Worker::spawn(
        Source {
            file: stage.path.clone(),
            config_dir: stage.alice_dir.path().join("irm"),
            passphrase: Some(Passphrase::new("alice passphrase").expect("a passphrase")),
        },
        || {},
    )
}

#[test]
fn the_viewer_worker_opens_cp932_renews_and_closes_on_revocation() {
    let stage = stage(Rights::VIEW);
    let header = &stage.header;
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the document should open: {other:?}"),
    };
    assert_eq!(open.rights, Rights::VIEW);
    assert_eq!(open.watermark.user, "alice");
    assert_eq!(
        open.watermark.file_id,
        header.header().file_id().to_string()
    );
    assert!(open.watermark_required);
    assert_eq!(open.doc.encoding(), Some(TextEncoding::ShiftJis));
    let table = open.doc.table(0).expect("a CSV file opens as a table");
    assert_eq!(table.data_rows(), 2);
    assert_eq!(
        table.row(1).collect::<Vec<_>>(),
        ["1001", "山田 太郎", "03-1234-5678"]
    );

    // Two thirds into the lease the worker renews.
    assert!(matches!(next(&worker), Event::Renewed { .. }));

    stage
        .admins
        .admin
        .revoke_file(&header.header().file_id().to_string())
        .expect("the admin revokes the file");
    match next(&worker) {
        Event::Closed(Failure::Denied(DenyReason::FileRevoked)) => {}
        Event::Closed(other) => panic!("closed for the wrong reason: {other:?}"),
        other => panic!("expected the document to close: {other:?}"),
    }
    // The worker kept no reference to the plaintext: the UI's is the last.
    let doc = Arc::downgrade(&open.doc);
    drop(open);
    assert!(doc.upgrade().is_none());
}

#[test]
fn export_is_recorded_then_written_and_refused_without_the_right() {
    for (rights, allowed) in [(Rights::VIEW | Rights::EXPORT, true), (Rights::VIEW, false)] {
        let stage = stage(rights);
        let worker = spawn(&stage);
        let open = match next(&worker) {
            Event::Opened(open) => open,
            other => panic!("the document should open: {other:?}"),
        };
        let target = stage.alice_dir.path().join("export.csv");
        worker.send(Command::Export {
            doc: Arc::clone(&open.doc),
            path: target.clone(),
        });
        let answer = loop {
            match next(&worker) {
                Event::Renewed { .. } => {}
                other => break other,
            }
        };
        match (answer, allowed) {
            (Event::Exported(Ok(path)), true) => {
                assert_eq!(path, target);
                let written = std::fs::read(&target).expect("the export");
                let text = std::str::from_utf8(&written[3..]).expect("UTF-8 after the BOM");
                assert_eq!(text, CSV, "UTF-8 CSV with the same rows");
            }
            (Event::Exported(Err(Failure::Denied(DenyReason::RightNotGranted))), false) => {
                assert!(!target.exists(), "nothing written when the server refuses");
            }
            (other, _) => panic!("unexpected for {rights:?}: {other:?}"),
        }
    }
}

/// The answer to the next command, past any renewal.
fn answer(worker: &Worker) -> Event {
    loop {
        match next(worker) {
            Event::Renewed { .. } => {}
            other => return other,
        }
    }
}

/// PROTOCOL.md §7.3 through the viewer's worker: a few rows copy freely; a
/// copy of more than the server's threshold waits for a take-out two
/// administrators approved for this file and device, and spends it.
#[test]
fn copying_many_rows_in_the_viewer_needs_an_approved_take_out() {
    let stage = stage_requiring_take_out_approval(Rights::VIEW | Rights::COPY);
    let worker = spawn(&stage);
    assert!(matches!(next(&worker), Event::Opened(_)));
    let copy = |rows: usize| {
        worker.send(Command::ReportCopy {
            chars: rows * 40,
            rows,
        });
        answer(&worker)
    };
    assert!(matches!(copy(3), Event::CopyReported(Ok(()))));
    let refused = copy(150);
    assert!(
        matches!(
            refused,
            Event::CopyReported(Err(Failure::Denied(DenyReason::ExportApprovalRequired)))
        ),
        "{refused:?}"
    );

    // Alice asks for a copy of this file; both administrators approve.
    let alice = Session::unlock(
        &stage.alice_dir.path().join("irm"),
        &Passphrase::new("alice passphrase").expect("a passphrase"),
    )
    .expect("alice's credentials");
    let filed = alice
        .request_take_out(
            &stage.header.header().file_id().to_string(),
            irm_core::protocol::TakeOut::Copy,
        )
        .expect("anyone enrolled may ask");
    for approver in [&stage.admins.admin, &stage.admins.approver] {
        approver
            .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
            .expect("an administrator approves");
    }
    assert!(matches!(copy(150), Event::CopyReported(Ok(()))));
    assert!(
        matches!(
            copy(150),
            Event::CopyReported(Err(Failure::Denied(DenyReason::ExportApprovalRequired)))
        ),
        "spent after one copy"
    );
}

/// PROTOCOL.md §7.8 through the viewer's worker: an approved export of a
/// CSV table carries a canary row among the real ones, and the watermark
/// shows the grant's id.
#[test]
fn an_approved_export_from_the_viewer_carries_a_canary() {
    let stage = stage_requiring_take_out_approval(Rights::VIEW | Rights::EXPORT);
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the document should open: {other:?}"),
    };
    let watermark_id = open.watermark.watermark_id.clone().expect("a watermark id");
    assert_eq!(
        irm_core::protocol::grant_prefix_of_watermark(&watermark_id).map(|p| p.len()),
        Some(15)
    );
    let alice = Session::unlock(
        &stage.alice_dir.path().join("irm"),
        &Passphrase::new("alice passphrase").expect("a passphrase"),
    )
    .expect("alice's credentials");
    let filed = alice
        .request_take_out(
            &stage.header.header().file_id().to_string(),
            irm_core::protocol::TakeOut::Export,
        )
        .expect("anyone enrolled may ask");
    for approver in [&stage.admins.admin, &stage.admins.approver] {
        approver
            .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
            .expect("an administrator approves");
    }
    let target = stage.alice_dir.path().join("export.csv");
    worker.send(Command::Export {
        doc: Arc::clone(&open.doc),
        path: target.clone(),
    });
    match answer(&worker) {
        Event::Exported(Ok(path)) => assert_eq!(path, target),
        other => panic!("the approved export is written: {other:?}"),
    }
    let written = std::fs::read(&target).expect("the export");
    let text = std::str::from_utf8(&written[3..]).expect("UTF-8 after the BOM");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), CSV.lines().count() + 1, "{text}");
    assert!(CSV.lines().all(|real| lines.contains(&real)));
    let real = irm_client::canary::contact_values(CSV.as_bytes());
    let added: Vec<String> = irm_client::canary::contact_values(&written)
        .into_iter()
        .filter(|v| !real.contains(v))
        .collect();
    assert_eq!(
        added.len(),
        1,
        "the canary's phone number (the list has no e-mail column): {text}"
    );
}

#[test]
fn the_sealed_media_type_picks_the_kind_whatever_the_file_is_called() {
    // JSON sealed by the CLI from "order.json", then renamed by a person:
    // the metadata still says what it is.
    let json = r#"{"顧客番号":1001,"氏名":"山田 太郎"}"#;
    let metadata = Metadata {
        file_name: Some("order.json".into()),
        media_type: Some("application/json".into()),
        plaintext_len: None,
    };
    let stage = stage_with(Rights::VIEW, json.as_bytes(), metadata, "renamed.irm");
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the document should open: {other:?}"),
    };
    let Content::Text(text) = &open.doc.content else {
        panic!("JSON opens as text: {:?}", open.doc);
    };
    assert!(text.pretty_json);
    assert_eq!(text.line(1), "  \"顧客番号\": 1001,");

    // A PNG header on a truncated picture is a corrupt file, not a crash.
    let metadata = Metadata {
        file_name: Some("scan.png".into()),
        media_type: Some("image/png".into()),
        plaintext_len: None,
    };
    let stage = stage_with(
        Rights::VIEW,
        b"\x89PNG\r\n\x1a\n\0\0",
        metadata,
        "scan.png.irm",
    );
    let worker = spawn(&stage);
    match next(&worker) {
        Event::CannotOpen(Failure::Corrupt(detail)) => {
            assert!(detail.contains("PNG"), "{detail}");
        }
        other => panic!("a damaged picture is a corrupt file: {other:?}"),
    }
}

/// PROTOCOL.md §7.8: an approved export of an XLSX list carries a canary
/// row in its list sheet; the workbook still opens.
#[test]
fn an_approved_workbook_export_carries_a_canary_in_its_list_sheet() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("顧客").expect("a sheet name");
    for (c, h) in ["顧客番号", "氏名", "電話番号"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).expect("a cell");
    }
    for r in 1..=20u32 {
        sheet
            .write_number(r, 0, f64::from(1000 + r))
            .expect("a cell");
        sheet.write_string(r, 1, "山田 太郎").expect("a cell");
        sheet
            .write_string(r, 2, format!("090-1111-{r:04}"))
            .expect("a cell");
    }
    let xlsx = book.save_to_buffer().expect("an XLSX file");
    let metadata = Metadata {
        file_name: Some("customers.xlsx".into()),
        media_type: Some(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".into(),
        ),
        plaintext_len: None,
    };
    let stage = stage_full(
        Rights::VIEW | Rights::EXPORT,
        &xlsx,
        metadata,
        "customers.xlsx.irm",
        None,
        false,
        LEASE_SECS,
    );
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the workbook should open: {other:?}"),
    };
    let alice = Session::unlock(
        &stage.alice_dir.path().join("irm"),
        &Passphrase::new("alice passphrase").expect("a passphrase"),
    )
    .expect("alice's credentials");
    let filed = alice
        .request_take_out(
            &stage.header.header().file_id().to_string(),
            irm_core::protocol::TakeOut::Export,
        )
        .expect("anyone enrolled may ask");
    for approver in [&stage.admins.admin, &stage.admins.approver] {
        approver
            .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
            .expect("an administrator approves");
    }
    let target = stage.alice_dir.path().join("customers-export.xlsx");
    worker.send(Command::Export {
        doc: Arc::clone(&open.doc),
        path: target.clone(),
    });
    match answer(&worker) {
        Event::Exported(Ok(path)) => assert_eq!(path, target),
        other => panic!("the approved export is written: {other:?}"),
    }
    let written = std::fs::read(&target).expect("the export");
    use calamine::Reader;
    let mut wb = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(&written))
        .expect("the export is still a workbook");
    let range = wb.worksheet_range("顧客").expect("the list sheet");
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows.len(), 1 + 20 + 1, "{rows:?}");
    let canaries: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| !r[2].starts_with("090-1111-") && r[0] != "顧客番号")
        .collect();
    assert_eq!(canaries.len(), 1, "{rows:?}");
    assert!(irm_core::protocol::contact_key(&canaries[0][2]).is_some());
}

#[test]
fn a_sealed_workbook_opens_by_sheet_and_exports_its_original_bytes() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("顧客").expect("a sheet name");
    sheet.write_string(0, 0, "顧客番号").expect("a cell");
    sheet.write_string(0, 1, "氏名").expect("a cell");
    sheet.write_number(1, 0, 1001).expect("a cell");
    sheet.write_string(1, 1, "山田 太郎").expect("a cell");
    book.add_worksheet().set_name("空").expect("a sheet name");
    let xlsx = book.save_to_buffer().expect("an XLSX file");
    let metadata = Metadata {
        file_name: Some("customers.xlsx".into()),
        media_type: Some(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".into(),
        ),
        plaintext_len: None,
    };
    let stage = stage_with(
        Rights::VIEW | Rights::EXPORT,
        &xlsx,
        metadata,
        "customers.xlsx.irm",
    );
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the workbook should open: {other:?}"),
    };
    let Content::Workbook(sheets) = &open.doc.content else {
        panic!("an XLSX opens as a workbook: {:?}", open.doc);
    };
    let names: Vec<_> = sheets.sheets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["顧客", "空"]);
    let table = open.doc.table(0).expect("the first sheet");
    assert_eq!(table.row(1).collect::<Vec<_>>(), ["1001", "山田 太郎"]);
    assert_eq!(open.doc.table(1).expect("the second sheet").row_count(), 0);

    let target = stage.alice_dir.path().join("customers-export.xlsx");
    worker.send(Command::Export {
        doc: Arc::clone(&open.doc),
        path: target.clone(),
    });
    loop {
        match next(&worker) {
            Event::Renewed { .. } => {}
            Event::Exported(Ok(path)) => {
                assert_eq!(path, target);
                break;
            }
            other => panic!("the export should be written: {other:?}"),
        }
    }
    assert_eq!(std::fs::read(&target).expect("the export"), xlsx);
}

/// Waits (up to `limit`) for the worker to close the document, skipping
/// renewals on the way; returns why it closed.
fn closed_within(worker: &Worker, limit: Duration) -> Failure {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match worker.recv_timeout(left) {
            Some(Event::Renewed { .. } | Event::Opening) => {}
            Some(Event::Closed(why)) => return why,
            Some(other) => panic!("expected renewals, then the document to close: {other:?}"),
            None => panic!("the document did not close within {limit:?}"),
        }
    }
}

#[test]
fn the_document_closes_when_its_policy_expires_while_open() {
    // The key server caps each lease at the not-after time, so the worker
    // renews ever shorter leases until a renewal lands past it.
    let (cp932, _, _) = encoding_rs::SHIFT_JIS.encode(CSV);
    let stage = stage_until(
        Rights::VIEW,
        &cp932,
        Metadata::default(),
        "customers.csv.irm",
        Some(8),
    );
    let not_after = stage
        .header
        .header()
        .policy()
        .not_after_unix
        .expect("an expiry");
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the document should open before it expires: {other:?}"),
    };
    assert_eq!(
        open.not_after_unix,
        Some(not_after),
        "the expiry the UI shows"
    );
    let doc = Arc::downgrade(&open.doc);
    drop(open);
    match closed_within(&worker, Duration::from_secs(30)) {
        Failure::Denied(DenyReason::PolicyExpired) => {}
        other => panic!("closed for the wrong reason: {other:?}"),
    }
    assert!(now_unix() >= not_after, "not before the expiry");
    assert!(doc.upgrade().is_none(), "no plaintext kept by the worker");
}

#[test]
fn the_document_closes_when_the_user_is_suspended_while_open() {
    let stage = stage(Rights::VIEW);
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the document should open: {other:?}"),
    };
    assert_eq!(open.not_after_unix, None);
    stage
        .admins
        .admin
        .suspend_user("alice")
        .expect("the admin suspends alice");
    match closed_within(&worker, Duration::from_secs(30)) {
        Failure::Denied(DenyReason::UserSuspended) => {}
        other => panic!("closed for the wrong reason: {other:?}"),
    }
}

/// A lease the test never waits for: only the push channel can close the
/// document before it ends.
const LONG_LEASE_SECS: u32 = 600;

#[test]
fn a_revocation_closes_the_open_document_in_seconds_through_the_push_channel() {
    let (cp932, _, _) = encoding_rs::SHIFT_JIS.encode(CSV);
    let stage = stage_full(
        Rights::VIEW,
        &cp932,
        Metadata::default(),
        "customers.csv.irm",
        None,
        true,
        LONG_LEASE_SECS,
    );
    let worker = spawn(&stage);
    let open = match next(&worker) {
        Event::Opened(open) => open,
        other => panic!("the document should open: {other:?}"),
    };
    let lease_deadline = open.lease_deadline;
    let doc = Arc::downgrade(&open.doc);
    drop(open);
    // Whether the stream is connected yet or not: the grant's cursor makes
    // the stream report a change committed after the grant's decision.
    let revoked_at = Instant::now();
    stage
        .admins
        .admin
        .revoke_file(&stage.header.header().file_id().to_string())
        .expect("the admin revokes the file");
    let why = closed_within(&worker, Duration::from_secs(60));
    let took = revoked_at.elapsed();
    assert!(
        matches!(why, Failure::Denied(DenyReason::FileRevoked)),
        "closed for the wrong reason: {why:?}"
    );
    // Behaviour, not timing: it closed while the lease had most of its ten
    // minutes left, so the server told it; the lease did not run out.
    assert!(
        lease_deadline.saturating_duration_since(Instant::now()) > Duration::from_secs(500),
        "closed by the push channel, long before the lease's end"
    );
    assert!(doc.upgrade().is_none(), "no plaintext kept by the worker");
    println!("viewer worker: closed {took:?} after the revocation");
}
