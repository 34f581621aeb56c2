//! The README walkthrough against the real key server, through the real
//! `irm` binary: the bootstrap administrator enrolls, adds alice to
//! `@support`, alice enrolls, a file is sealed for her, she reads it, an
//! administrator takes it back. Then one test per way access is refused.
//!
//! Each test starts its own server; every refusal is checked by its exit
//! code (3) and its machine-readable reason in `--json`.

use irm_core::Rights;
use irm_core::invitation::{CodePart, Invitation};
use irm_e2e::{ADMIN, Admins, Person, Server, now_unix, seal_directly};
use serde_json::Value;

const CUSTOMERS: &[u8] = b"customer,phone\nYamada Taro,03-1234-5678\nSuzuki Hanako,06-8765-4321\n";

/// A server with the administrator and alice (in `@support`) enrolled.
struct Stage {
    server: Server,
    admins: Admins,
    alice: Person,
}

impl Stage {
    /// The stage with exports approved by rule (0 approvals), for every
    /// test but the one about take-out approval.
    fn new() -> Self {
        let stage = Self::requiring_export_approval();
        stage.admins.take_out_without_approval();
        stage
    }

    /// The stage as a new server has it: two approvals to take a file out.
    fn requiring_export_approval() -> Self {
        let server = Server::start();
        let admins = Admins::enroll(&server);
        admins.admin.ok(&["admin", "group", "add", "@support"]);
        let code = admins.add_user(&[
            "alice",
            "--display-name",
            "Alice Example",
            "--group",
            "support",
        ]);
        // As in the README: alice gives her code, not her name.
        let alice = Person::new("alice");
        alice.enroll_by_code(&server, &code);
        Self {
            server,
            admins,
            alice,
        }
    }

    /// The administrator seals CUSTOMERS online for `recipient` with `rights`;
    /// returns the sealed file's path (readable by alice) and its file id.
    fn seal_for(&self, recipient: &str, rights: &str) -> (String, String) {
        let input = self.admins.admin.write("customers.csv", CUSTOMERS);
        let output = self
            .alice
            .path(&format!("customers-{}.irm", rights.replace(',', "-")));
        let report = self.admins.admin.ok(&[
            "seal",
            input.to_str().expect("UTF-8 path"),
            "-o",
            output.to_str().expect("UTF-8 path"),
            "--to",
            recipient,
            "--allow",
            rights,
            "--expires",
            "30d",
            "--force",
        ]);
        assert_eq!(report["registered_with"], self.server.url);
        (
            output.to_str().expect("UTF-8 path").to_owned(),
            report["file_id"].as_str().expect("a file id").to_owned(),
        )
    }
}

/// Asserts a refusal: exit 3, `{"ok": false, "reason": REASON, ...}`.
fn assert_denied(person: &Person, args: &[&str], reason: &str) -> Value {
    let (code, value) = person.json(args);
    assert_eq!(code, 3, "irm {args:?} should be denied ({reason}): {value}");
    assert_eq!(value["ok"], false);
    assert_eq!(value["kind"], "denied");
    assert_eq!(value["reason"], reason, "{value}");
    assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(value["hint"].as_str().is_some_and(|h| !h.is_empty()));
    value
}

#[test]
fn walkthrough_seal_info_open_then_revoke() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for("alice", "view,export");

    let info = stage.alice.ok(&["info", &file]);
    assert_eq!(info["file_id"], file_id.as_str());
    assert_eq!(info["user"], "alice");
    assert_eq!(info["rights"], serde_json::json!(["view", "export"]));
    assert_eq!(info["watermark_required"], true);
    assert_eq!(info["file_name"], "customers.csv");
    let lease = info["lease_secs"].as_u64().expect("a lease");
    assert!(lease > 0 && lease <= 600, "{info}");
    assert!(info["time_left_secs"].as_u64().expect("time left") <= lease);

    let out = stage.alice.path("customers.csv");
    let opened = stage
        .alice
        .ok(&["open", &file, "-o", out.to_str().expect("UTF-8")]);
    assert_eq!(opened["plaintext_len"], CUSTOMERS.len());
    assert_eq!(std::fs::read(&out).expect("the output"), CUSTOMERS);

    let listed = stage.admins.admin.ok(&["admin", "file", "list"]);
    assert!(
        listed
            .as_array()
            .expect("a list")
            .iter()
            .any(|f| f["file_id"] == file_id.as_str() && f["owner"] == ADMIN),
        "{listed}"
    );
    let revoked = stage
        .admins
        .admin
        .ok(&["admin", "file", "revoke", &file_id]);
    assert_eq!(revoked["state"], "revoked");

    assert_denied(&stage.alice, &["info", &file], "file_revoked");
    let again = stage.alice.path("again.csv");
    assert_denied(
        &stage.alice,
        &["open", &file, "-o", again.to_str().expect("UTF-8")],
        "file_revoked",
    );
    assert!(!again.exists(), "a refused open leaves no output");

    // Restored, it opens again.
    stage
        .admins
        .approved(&["admin", "file", "restore", &file_id]);
    stage.alice.ok(&["info", &file]);
}

#[test]
fn a_file_sealed_offline_is_revoked_by_id_before_the_server_has_seen_it() {
    let stage = Stage::new();
    // The server's public key, as an operator would hand it to an offline sealer.
    let keys = stage.admins.admin.ok(&["admin", "key", "list"]);
    let public = keys[0]["public_key"].as_str().expect("a public key");
    let kas_pub = stage
        .alice
        .write("kas.pub", format!("{public}\n").as_bytes());
    let input = stage.alice.write("customers.csv", CUSTOMERS);
    let sealed = stage.alice.path("offline.irm");
    let report = stage.alice.ok(&[
        "seal",
        input.to_str().expect("UTF-8"),
        "-o",
        sealed.to_str().expect("UTF-8"),
        "--kas-public-key",
        kas_pub.to_str().expect("UTF-8"),
        "--kas-url",
        &stage.server.url,
        "--to",
        "alice",
        "--allow",
        "view,export",
    ]);
    let file_id = report["file_id"].as_str().expect("a file id").to_owned();
    let sealed = sealed.to_str().expect("UTF-8");
    let listed = stage.admins.admin.ok(&["admin", "file", "list"]);
    assert!(
        !listed.to_string().contains(&file_id),
        "sealed offline, the server has not seen it: {listed}"
    );

    // An id the server never saw looks like a typo: refused without --force
    // (a mistyped id would leave the real file open).
    let (code, refused) = stage
        .admins
        .admin
        .json(&["admin", "file", "revoke", &file_id]);
    assert_eq!(code, 2, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("has never seen file"),
        "{refused}"
    );
    let revoked = stage
        .admins
        .admin
        .ok(&["admin", "file", "revoke", &file_id, "--force"]);
    assert_eq!(revoked["state"], "revoked");
    assert_eq!(revoked["file_id"], file_id.as_str());
    let out = stage.alice.path("plain.csv");
    assert_denied(
        &stage.alice,
        &["open", sealed, "-o", out.to_str().expect("UTF-8")],
        "file_revoked",
    );
    assert!(!out.exists());

    // Restored, the same file opens: it was the revocation that refused it.
    stage
        .admins
        .approved(&["admin", "file", "restore", &file_id]);
    stage
        .alice
        .ok(&["open", sealed, "-o", out.to_str().expect("UTF-8")]);
    assert_eq!(std::fs::read(&out).expect("the output"), CUSTOMERS);
}

#[test]
fn taking_a_file_out_needs_an_approved_request_and_works_once() {
    let stage = Stage::requiring_export_approval();
    let (file, _) = stage.seal_for("alice", "view,export");
    let out = stage.alice.path("out.csv");
    let out_arg = out.to_str().expect("UTF-8");
    assert_denied(
        &stage.alice,
        &["open", &file, "-o", out_arg],
        "export_approval_required",
    );
    assert!(!out.exists(), "a refused export writes nothing");

    let filed = stage
        .alice
        .ok(&["export", "request", &file, "--reason", "CASE-1"]);
    assert_eq!(filed["request"]["required"], 2, "{filed}");
    let id = filed["request"]["id"].as_str().expect("an id");
    // The person asking cannot approve, even by hash.
    let (code, _) = stage.alice.json(&["admin", "request", "approve", id]);
    assert_eq!(code, 3);
    let one = stage.admins.second.ok(&["admin", "request", "approve", id]);
    assert_eq!(one["request"]["state"], "pending");
    assert_denied(
        &stage.alice,
        &["open", &file, "-o", out_arg],
        "export_approval_required",
    );
    let two = stage.admins.admin.ok(&["admin", "request", "approve", id]);
    assert_eq!(two["request"]["state"], "done");
    let opened = stage.alice.ok(&["open", &file, "-o", out_arg]);
    // An approved export of a list carries a canary row (PROTOCOL.md §7.8)
    // among the real rows, which are all there as they were.
    assert_eq!(opened["canaries"], 1, "{opened}");
    let written = String::from_utf8(std::fs::read(&out).expect("the output")).expect("UTF-8");
    let real = std::str::from_utf8(CUSTOMERS).expect("UTF-8");
    assert!(written.starts_with("customer,phone\n"), "{written}");
    assert!(real.lines().all(|line| written.lines().any(|l| l == line)));
    assert_eq!(written.lines().count(), real.lines().count() + 1);
    // Spent.
    let again = stage.alice.path("again.csv");
    assert_denied(
        &stage.alice,
        &["open", &file, "-o", again.to_str().expect("UTF-8")],
        "export_approval_required",
    );

    // Each refused take-out is an alert (PROTOCOL.md §12.1): listed open,
    // acknowledged once with a reason, then no longer open.
    let admin = &stage.admins.admin;
    let open = admin.ok(&["admin", "alert", "list", "--open"]);
    let alerts = open.as_array().expect("a list").clone();
    assert!(!alerts.is_empty(), "{open}");
    assert!(
        alerts
            .iter()
            .all(|a| a["rule"] == "take_out_refused" && a["user"] == "alice"),
        "{open}"
    );
    let id = alerts[0]["id"].as_u64().expect("an id").to_string();
    let (code, refused) = admin.json(&["admin", "alert", "ack", &id]);
    assert_ne!(code, 0, "a reason is required: {refused}");
    let acked = admin.ok(&["admin", "alert", "ack", &id, "--reason", "CASE-1 reviewed"]);
    assert_eq!(acked["ack"]["by"], "admin", "{acked}");
    assert_eq!(acked["ack"]["reason"], "CASE-1 reviewed");
    let (code, again) = admin.json(&["admin", "alert", "ack", &id, "--reason", "again"]);
    assert_ne!(code, 0, "{again}");
    assert!(
        again["message"]
            .as_str()
            .unwrap_or("")
            .contains("already acknowledged"),
        "{again}"
    );
    let still = admin.ok(&["admin", "alert", "list", "--open"]);
    assert_eq!(still.as_array().expect("a list").len(), alerts.len() - 1);
}

#[test]
fn a_denial_in_text_mode_prints_the_reason_and_advice() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for("alice", "view");
    stage
        .admins
        .admin
        .ok(&["admin", "file", "revoke", &file_id]);
    let out = stage
        .alice
        .irm(&["info", &file])
        .output()
        .expect("irm runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("file_revoked"), "{stderr}");
    assert!(
        stderr.contains(irm_core::protocol::DenyReason::FileRevoked.advice()),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_group_recipient_opens_through_group_membership() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("@support", "view,export");
    let out = stage.alice.path("plain.csv");
    stage
        .alice
        .ok(&["open", &file, "-o", out.to_str().expect("UTF-8")]);
    assert_eq!(std::fs::read(&out).expect("the output"), CUSTOMERS);

    stage
        .admins
        .admin
        .ok(&["admin", "group", "member-remove", "@support", "alice"]);
    assert_denied(&stage.alice, &["info", &file], "not_recipient");
}

#[test]
fn an_administrator_who_is_not_a_recipient_is_denied() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("alice", "view,export");
    // The admin sealed it and manages it, but admins manage, recipients read.
    assert_denied(&stage.admins.admin, &["info", &file], "not_recipient");
    let out = stage.admins.admin.path("stolen.csv");
    assert_denied(
        &stage.admins.admin,
        &["open", &file, "-o", out.to_str().expect("UTF-8")],
        "not_recipient",
    );
    assert!(!out.exists());
}

#[test]
fn opening_without_the_export_right_is_refused_and_writes_nothing() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("alice", "view,print");
    let info = stage.alice.ok(&["info", &file]);
    assert_eq!(info["rights"], serde_json::json!(["view", "print"]));
    let out = stage.alice.path("plain.csv");
    let refused = assert_denied(
        &stage.alice,
        &["open", &file, "-o", out.to_str().expect("UTF-8")],
        "right_not_granted",
    );
    // The message names the right that is missing.
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("needs the export right, and your grant gives only view,print"),
        "{refused}"
    );
    assert!(!out.exists());
}

#[test]
fn a_restriction_takes_the_export_right_away() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for("alice", "view,export");
    let restricted = stage
        .admins
        .admin
        .ok(&["admin", "file", "restrict", &file_id, "--remove", "export"]);
    assert_eq!(
        restricted["restricted_rights"],
        serde_json::json!(["export"])
    );
    let info = stage.alice.ok(&["info", &file]);
    assert_eq!(info["rights"], serde_json::json!(["view"]));
    let out = stage.alice.path("plain.csv");
    assert_denied(
        &stage.alice,
        &["open", &file, "-o", out.to_str().expect("UTF-8")],
        "right_not_granted",
    );
    // Taking the last right leaves nothing to grant.
    stage
        .admins
        .admin
        .ok(&["admin", "file", "restrict", &file_id, "--remove", "view"]);
    assert_denied(&stage.alice, &["info", &file], "rights_restricted");
}

#[test]
fn a_file_expired_by_an_administrator_is_denied() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for("alice", "view");
    stage
        .admins
        .admin
        .ok(&["admin", "file", "expire", &file_id]);
    assert_denied(&stage.alice, &["info", &file], "file_expired");
}

#[test]
fn a_file_past_its_policy_not_after_is_denied() {
    let stage = Stage::new();
    let now = now_unix();
    let url = stage.server.url.clone();
    let sealed = seal_directly(
        &stage.server,
        &url,
        "alice",
        Rights::VIEW,
        Some(now - 7200),
        Some(now - 3600),
        CUSTOMERS,
    );
    let file = stage.alice.write("old.irm", &sealed);
    assert_denied(
        &stage.alice,
        &["info", file.to_str().expect("UTF-8")],
        "policy_expired",
    );

    let early = seal_directly(
        &stage.server,
        &url,
        "alice",
        Rights::VIEW,
        Some(now + 86_400),
        None,
        CUSTOMERS,
    );
    let file = stage.alice.write("early.irm", &early);
    assert_denied(
        &stage.alice,
        &["info", file.to_str().expect("UTF-8")],
        "not_yet_valid",
    );
}

#[test]
fn a_suspended_user_is_denied_until_restored() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("alice", "view");
    let user = stage
        .admins
        .admin
        .ok(&["admin", "user", "suspend", "alice"]);
    assert_eq!(user["state"], "suspended");
    assert_denied(&stage.alice, &["info", &file], "user_suspended");
    stage
        .admins
        .approved(&["admin", "user", "restore", "alice"]);
    stage.alice.ok(&["info", &file]);
}

#[test]
fn a_revoked_device_is_denied() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("alice", "view");
    let devices = stage.admins.admin.ok(&["admin", "device", "list"]);
    let device_id = devices
        .as_array()
        .expect("a list")
        .iter()
        .find(|d| d["user"] == "alice")
        .and_then(|d| d["device_id"].as_str())
        .expect("alice's device")
        .to_owned();
    let revoked = stage
        .admins
        .admin
        .ok(&["admin", "device", "revoke", &device_id]);
    assert_eq!(revoked["state"], "revoked");
    assert_denied(&stage.alice, &["info", &file], "device_revoked");
}

#[test]
fn a_user_without_the_admin_role_cannot_administer() {
    let stage = Stage::new();
    assert_denied(&stage.alice, &["admin", "user", "list"], "role_required");
    assert_denied(&stage.alice, &["admin", "audit", "tail"], "role_required");
}

#[test]
fn an_enrollment_code_works_once() {
    let server = Server::start();
    let admin = Person::new(ADMIN);
    admin.enroll(&server, &server.admin_code);
    let again = Person::new(ADMIN);
    let (code, value) = again.json(&[
        "enroll",
        "--server",
        &server.url,
        "--ca",
        server.ca_pem.to_str().expect("UTF-8"),
        "--user",
        ADMIN,
        "--code",
        &server.admin_code,
    ]);
    assert_eq!(code, 3, "{value}");
    assert_eq!(value["reason"], "enrollment_code_invalid");
    assert!(!again.config_dir().join("device.json").exists());
}

#[test]
fn enrolling_with_the_code_alone_records_whose_code_it_is() {
    let server = Server::start();
    let admins = Admins::enroll(&server);
    let admin = &admins.admin;
    admin.ok(&["admin", "group", "add", "@support"]);
    let code = admins.add_user(&["carol", "--group", "support"]);
    let ca = server.ca_pem.to_str().expect("UTF-8");

    // Naming another user with carol's code is refused and stores nothing.
    let mallory = Person::new("mallory");
    let (exit, value) = mallory.json(&[
        "enroll",
        "--server",
        &server.url,
        "--ca",
        ca,
        "--user",
        ADMIN,
        "--code",
        &code,
    ]);
    assert_eq!(exit, 3, "{value}");
    assert_eq!(value["reason"], "enrollment_code_invalid");
    assert!(!mallory.config_dir().join("device.json").exists());

    let carol = Person::new("carol");
    let enrolled = carol.ok(&[
        "enroll",
        "--server",
        &server.url,
        "--ca",
        ca,
        "--code",
        &code,
    ]);
    assert_eq!(enrolled["user"], "carol", "{enrolled}");
    assert_eq!(enrolled["groups"], serde_json::json!(["support"]));
    let stored: Value = serde_json::from_slice(
        &std::fs::read(carol.config_dir().join("device.json")).expect("device.json"),
    )
    .expect("JSON");
    assert_eq!(stored["user"], "carol");
    // The device works as carol: she is refused administration as herself.
    assert_denied(&carol, &["admin", "user", "list"], "role_required");
}

#[test]
fn a_server_whose_certificate_is_not_from_the_given_ca_is_not_trusted() {
    let server = Server::start();
    let other = Server::start();
    let admin = Person::new(ADMIN);
    let (code, value) = admin.json(&[
        "enroll",
        "--server",
        &server.url,
        "--ca",
        other.ca_pem.to_str().expect("UTF-8"),
        "--user",
        ADMIN,
        "--code",
        &server.admin_code,
    ]);
    assert_eq!(code, 5, "{value}");
    assert_eq!(value["kind"], "unreachable");
    assert!(
        value["message"]
            .as_str()
            .is_some_and(|m| m.contains("certificate")),
        "{value}"
    );
}

#[test]
fn a_stopped_server_is_unreachable() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("alice", "view");
    let Stage { server, alice, .. } = stage;
    drop(server);
    let (code, value) = alice.json(&["info", &file]);
    assert_eq!(code, 5, "{value}");
    assert_eq!(value["kind"], "unreachable");
}

#[test]
fn a_wrong_passphrase_does_not_unlock_the_device() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("alice", "view");
    let out = stage
        .alice
        .irm(&["info", &file, "--json"])
        .env("IRM_PASSPHRASE", "not the passphrase")
        .output()
        .expect("irm runs");
    assert_eq!(out.status.code(), Some(1));
    let value = irm_e2e::json_of(&out);
    assert!(
        value["message"]
            .as_str()
            .is_some_and(|m| m.contains("wrong passphrase")),
        "{value}"
    );
}

#[test]
fn a_retired_key_denies_its_files_and_a_rotated_key_seals_new_ones() {
    let stage = Stage::new();
    let (old_file, _) = stage.seal_for("alice", "view");
    let old_key = stage.alice.ok(&["inspect", &old_file])["key_access"][0]["key_id"]
        .as_str()
        .expect("a key id")
        .to_owned();
    let new_key = stage.admins.admin.ok(&["admin", "key", "rotate"]);
    assert_ne!(new_key["key_id"], old_key.as_str());

    let input = stage.admins.admin.write("new.csv", CUSTOMERS);
    let new_file = stage.alice.path("new.irm");
    stage.admins.admin.ok(&[
        "seal",
        input.to_str().expect("UTF-8"),
        "-o",
        new_file.to_str().expect("UTF-8"),
        "--to",
        "alice",
    ]);
    let new_file = new_file.to_str().expect("UTF-8");
    assert_eq!(
        stage.alice.ok(&["inspect", new_file])["key_access"][0]["key_id"],
        new_key["key_id"]
    );

    // Both open before the retirement...
    stage.alice.ok(&["info", &old_file]);
    stage.admins.admin.ok(&["admin", "key", "retire", &old_key]);
    // ...only the new one after.
    assert_denied(&stage.alice, &["info", &old_file], "key_retired");
    stage.alice.ok(&["info", new_file]);
    let keys = stage.admins.admin.ok(&["admin", "key", "list"]);
    assert!(
        keys.as_array()
            .expect("a list")
            .iter()
            .any(|k| k["key_id"] == old_key.as_str() && k["state"] == "retired"),
        "{keys}"
    );
}

#[test]
fn the_audit_log_records_grants_and_denials_and_verifies() {
    let stage = Stage::new();
    let (file, file_id) = stage.seal_for("alice", "view");
    stage.alice.ok(&["info", &file]);
    stage
        .admins
        .admin
        .ok(&["admin", "file", "revoke", &file_id]);
    assert_denied(&stage.alice, &["info", &file], "file_revoked");

    let records = stage
        .admins
        .admin
        .ok(&["admin", "audit", "tail", "--limit", "1000"]);
    let records = records.as_array().expect("a list");
    let has = |action: &str, result: &str, reason: Option<&str>| {
        records.iter().any(|r| {
            r["file_id"] == file_id.as_str()
                && r["actor_user"] == "alice"
                && r["action"] == action
                && r["result"] == result
                && reason.is_none_or(|reason| r["reason"] == reason)
        })
    };
    assert!(has("grant", "ok", None), "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r["result"] == "denied" && r["reason"] == "file_revoked"),
        "{records:?}"
    );

    let checkpoint = stage.admins.admin.ok(&["admin", "audit", "checkpoint"]);
    assert!(checkpoint["count"].as_u64().expect("a count") >= records.len() as u64);
    let report = stage.admins.admin.ok(&["admin", "audit", "verify"]);
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["checkpoints"].as_u64().expect("a count") >= 1);
}

#[test]
fn a_file_for_another_key_server_is_refused_without_contacting_it() {
    let stage = Stage::new();
    let sealed = seal_directly(
        &stage.server,
        "https://kas.elsewhere.example:8443",
        "alice",
        Rights::VIEW,
        None,
        None,
        CUSTOMERS,
    );
    let file = stage.alice.write("foreign.irm", &sealed);
    let (code, value) = stage.alice.json(&["info", file.to_str().expect("UTF-8")]);
    assert_eq!(code, 1, "{value}");
    assert!(
        value["message"]
            .as_str()
            .is_some_and(|m| m.contains("kas.elsewhere.example")),
        "{value}"
    );
}

/// Replaces the only occurrence of `from` in `bytes` with `to` (same length).
fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the marker is in the file");
    bytes[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn an_altered_header_is_refused_by_the_key_server() {
    let stage = Stage::new();
    let input = stage.admins.admin.write("customers.csv", CUSTOMERS);
    let file = stage.alice.path("customers.irm");
    stage.admins.admin.ok(&[
        "seal",
        input.to_str().expect("UTF-8"),
        "-o",
        file.to_str().expect("UTF-8"),
        "--to",
        "alice",
        "--allow",
        "view,export",
        "--issuer",
        "issuer-AAAA",
    ]);
    let mut bytes = std::fs::read(&file).expect("the sealed file");
    replace_once(&mut bytes, b"issuer-AAAA", b"issuer-BBBB");
    std::fs::write(&file, &bytes).expect("writing the altered file");
    assert_denied(
        &stage.alice,
        &["info", file.to_str().expect("UTF-8")],
        "policy_binding_failed",
    );
}

#[test]
fn an_altered_payload_exits_4_and_leaves_no_output() {
    let stage = Stage::new();
    let (file, _) = stage.seal_for("alice", "view,export");
    let mut bytes = std::fs::read(&file).expect("the sealed file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&file, &bytes).expect("writing the altered file");
    let out = stage.alice.path("plain.csv");
    let (code, value) = stage
        .alice
        .json(&["open", &file, "-o", out.to_str().expect("UTF-8")]);
    assert_eq!(code, 4, "{value}");
    assert_eq!(value["kind"], "integrity");
    assert!(!out.exists(), "no unauthenticated plaintext is released");
}

#[test]
fn text_output_prints_codes_alone_and_rights_for_people() {
    let stage = Stage::new();
    let out = stage
        .admins
        .admin
        .irm(&["admin", "user", "add", "bob", "--role", "auditor"])
        .output()
        .expect("irm runs");
    assert!(out.status.success());
    let half = String::from_utf8(out.stdout).expect("UTF-8");
    // The requester's half as one invitation line and a newline, nothing
    // else, for scripts (PROTOCOL.md §3.4).
    assert_eq!(half.lines().count(), 1, "{half:?}");
    let first: Invitation = half.trim().parse().expect("an invitation");
    assert_eq!(
        (first.part, first.code.len()),
        (CodePart::First, 11),
        "{half:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("name=bob"), "{stderr}");
    assert!(stderr.contains("FIRST half"), "{stderr}");
    // The approver's half comes the same way, alone on stdout.
    let list = stage.admins.second.ok(&["admin", "request", "list"]);
    assert_eq!(
        list[0]["state"], "pending",
        "pending requests come first: {list}"
    );
    let id = list[0]["id"].as_str().expect("the request's id");
    let out = stage
        .admins
        .second
        .irm(&["admin", "request", "approve", id])
        .output()
        .expect("irm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = String::from_utf8(out.stdout).expect("UTF-8");
    let second: Invitation = second.trim().parse().expect("an invitation");
    assert_eq!(second.part, CodePart::Second);
    assert_eq!(
        Invitation::combine(&[first, second])
            .expect("the two halves join")
            .code
            .len(),
        23
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SECOND half"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (file, _) = stage.seal_for("alice", "view,print");
    let out = stage
        .alice
        .irm(&["info", &file])
        .output()
        .expect("irm runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.contains("rights          view,print"), "{text}");
    assert!(text.contains("watermark       required"), "{text}");
    // The lease and the file's own end, each said for what it is.
    assert!(
        text.contains("lease left      ") && text.contains("(this grant;"),
        "{text}"
    );
    assert!(text.contains("file expires    "), "{text}");

    let users = stage
        .admins
        .admin
        .irm(&["admin", "user", "list"])
        .output()
        .expect("irm runs");
    let table = String::from_utf8(users.stdout).expect("UTF-8");
    for name in ["admin", "alice", "bob"] {
        assert!(table.lines().any(|l| l.starts_with(name)), "{table}");
    }
}

/// Issue #13: a mistyped recipient seals nothing and says what was meant
/// (`@suport`, `support` for the group, a user with `@`); people not
/// created yet need `--allow-unknown-recipients`.
#[test]
fn a_mistyped_recipient_seals_nothing_and_names_what_was_meant() {
    let stage = Stage::new();
    let admin = &stage.admins.admin;
    let input = admin.write("customers.csv", CUSTOMERS);
    let input = input.to_str().expect("UTF-8 path");
    let output = admin.path("out.irm");
    let output = output.to_str().expect("UTF-8 path");
    for (to, says) in [
        ("@suport", "no group @suport; did you mean @support?"),
        (
            "support",
            "no user support; @support is a group (write it with @)",
        ),
        ("alicia", "no user alicia; did you mean alice?"),
        (
            "@alice",
            "no group @alice; alice is a user (write it without @)",
        ),
    ] {
        let (code, err) = admin.json(&["seal", input, "-o", output, "--to", to]);
        assert_eq!(code, 2, "{to}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{to}: {err}"
        );
        assert!(
            !std::path::Path::new(output).exists(),
            "{to}: nothing sealed"
        );
    }
    // Known recipients, and someone not created yet once asked for.
    admin.ok(&["seal", input, "-o", output, "--to", "@support,alice"]);
    std::fs::remove_file(output).unwrap();
    admin.ok(&[
        "seal",
        input,
        "-o",
        output,
        "--to",
        "newhire",
        "--allow-unknown-recipients",
    ]);
}

/// Issue #13: `--expires -1h` was a clap error ("unexpected argument"); it
/// is a time an hour ago, which sealing refuses for what it is.
#[test]
fn a_negative_duration_is_a_time_ago_not_a_flag() {
    let person = Person::new("carol");
    let input = person.write("list.csv", CUSTOMERS);
    let out = person
        .irm(&[
            "seal",
            input.to_str().expect("UTF-8"),
            "-o",
            "list.irm",
            "--kas-public-key",
            "/dev/null",
            "--kas-url",
            "https://kas.example:8443",
            "--to",
            "alice",
            "--expires",
            "-1h",
        ])
        .output()
        .expect("irm runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is already past"), "{err}");
    assert!(!err.contains("unexpected argument"), "{err}");
}

#[test]
fn a_revocation_during_a_long_export_stops_it_before_the_plaintext_is_released() {
    use std::io::Write as _;
    use std::process::Stdio;
    let stage = Stage::new();
    // Many chunks, so that the export is still decrypting when the test
    // revokes: the sealed file reaches `irm open` through a named pipe the
    // test feeds, so it cannot finish before the test lets it.
    let plaintext: Vec<u8> = CUSTOMERS.iter().copied().cycle().take(8 << 20).collect();
    let input = stage.admins.admin.write("long.csv", &plaintext);
    let sealed = stage.alice.path("long.csv.irm");
    let report = stage.admins.admin.ok(&[
        "seal",
        input.to_str().expect("UTF-8 path"),
        "-o",
        sealed.to_str().expect("UTF-8 path"),
        "--to",
        "alice",
        "--allow",
        "view,export",
        "--force",
    ]);
    let file_id = report["file_id"].as_str().expect("a file id").to_owned();
    let sealed = std::fs::read(&sealed).expect("the sealed file");
    let feed_path = stage.alice.path("feed.irm");
    let made = std::process::Command::new("mkfifo")
        .arg(&feed_path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", feed_path.display());
    let out = stage.alice.path("long.csv");
    // What alice's directory holds besides the pipe, sorted.
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(stage.alice.path("."))
            .expect("alice's directory")
            .map(|e| e.expect("an entry").file_name())
            .filter(|name| name != "feed.irm")
            .collect();
        names.sort();
        names
    };
    let before = listing();

    let export = stage
        .alice
        .run(irm_e2e::irm_binary())
        .args([
            "open",
            feed_path.to_str().expect("UTF-8 path"),
            "-o",
            out.to_str().expect("UTF-8 path"),
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("irm open starts");
    let mut feed = std::fs::OpenOptions::new()
        .write(true)
        .open(&feed_path)
        .expect("the pipe opens once irm open reads it");
    // Half the file, far more than the pipe and the command's read buffer
    // hold: once it is taken, the command is decrypting under its grant,
    // with its push channel open from the grant's cursor on.
    let (head, rest) = sealed.split_at(sealed.len() / 2);
    feed.write_all(head).expect("irm open reads the first half");

    let revoked = stage
        .admins
        .admin
        .ok(&["admin", "file", "revoke", &file_id, "--force"]);
    assert_eq!(revoked["state"], "revoked");
    // The command's renewal, asked for on the push channel's signal, is
    // refused (and audited) while it waits for the rest.
    let auditor = irm_client::Session::unlock(
        &stage.admins.admin.config_dir(),
        &irm_client::Passphrase::new(stage.admins.admin.passphrase()).expect("a passphrase"),
    )
    .expect("the administrator's session");
    let refused = || {
        auditor
            .audit_records(None, Some(1000))
            .expect("the audit log")
            .iter()
            .any(|r| {
                r.action == "renew"
                    && r.result != "ok"
                    && r.actor_user.as_deref() == Some("alice")
                    && r.file_id.as_deref() == Some(file_id.as_str())
            })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !refused() {
        assert!(
            std::time::Instant::now() < deadline,
            "no refused renewal of the file was audited"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The rest arrives after the refusal; the command stops at its next
    // write (or already has: the pipe is then closed, which is fine).
    let _ = feed.write_all(rest);
    drop(feed);

    let done = export.wait_with_output().expect("irm open ends");
    let value: Value = serde_json::from_slice(&done.stdout).unwrap_or_else(|_| {
        panic!(
            "irm open printed no JSON: {}",
            String::from_utf8_lossy(&done.stderr)
        )
    });
    assert_eq!(done.status.code(), Some(3), "{value}");
    assert_eq!(value["reason"], "file_revoked", "{value}");
    assert!(!out.exists(), "no plaintext was released");
    assert_eq!(listing(), before, "the temporary output was removed");
}
