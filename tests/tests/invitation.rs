//! One-line invitations (PROTOCOL.md §3.4) end to end, through the real
//! `irm` and `irm-key-server` binaries: a person enrolls from the lines
//! the administrators printed, with no CA file handed over; the CA is
//! fetched and pinned by the fingerprint, and a wrong fingerprint sends
//! nothing and burns no code.

use std::process::Output;

use irm_core::invitation::{CodePart, Invitation, ca_fingerprint};
use irm_e2e::{ADMIN, Person, Server, json_of, key_server_binary};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one invitation line a command printed on stdout, checked against
/// the server it names and the CA it pins.
fn invitation_of(out: &Output, server: &Server, part: CodePart) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    let text = stdout(out);
    let line = text.trim_end();
    assert_eq!(line.lines().count(), 1, "one line on stdout: {text:?}");
    let invitation: Invitation = line.parse().expect("an invitation");
    assert_eq!(invitation.server_url, server.url);
    let pem = std::fs::read_to_string(&server.ca_pem).unwrap();
    assert_eq!(Some(invitation.ca_sha256), ca_fingerprint(&pem));
    assert_eq!(invitation.part, part);
    line.to_owned()
}

/// `irm enroll INVITATION...` as `person`, with no `--ca` and no `--server`.
fn enroll_with(person: &Person, invitations: &[&str]) -> Output {
    let mut args = vec!["enroll"];
    args.extend_from_slice(invitations);
    person
        .irm(&args)
        .args(["--device-name", &format!("{}-pc", person.name)])
        .output()
        .expect("irm runs")
}

fn whoami(person: &Person) -> String {
    let device = std::fs::read_to_string(person.config_dir().join("device.json")).unwrap();
    let device: serde_json::Value = serde_json::from_str(&device).unwrap();
    device["user"].as_str().unwrap().to_owned()
}

#[test]
fn the_second_administrator_enrolls_from_one_line_and_a_person_from_two_halves() {
    let server = Server::start();
    let admin = Person::new(ADMIN);
    admin.enroll(&server, &server.admin_code);

    // The whole code, as a new server's first administrator hands it over.
    let out = admin
        .irm(&["admin", "user", "add", "admin2", "--role", "admin", "--qr"])
        .output()
        .unwrap();
    let line = invitation_of(&out, &server, CodePart::Whole);
    assert!(
        stderr(&out).contains('▀'),
        "--qr draws on stderr: {}",
        stderr(&out)
    );
    let admin2 = Person::new("admin2");
    let enrolled = enroll_with(&admin2, &[&line]);
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    assert_eq!(whoami(&admin2), "admin2");
    // The pinned CA is the server's: every later call works.
    admin2.ok(&["admin", "user", "list"]);

    // Halves: one line from each administrator, given in either order.
    admin.ok(&["admin", "group", "add", "@support"]);
    let filed = admin
        .irm(&["admin", "user", "add", "alice", "--group", "support"])
        .output()
        .unwrap();
    let first = invitation_of(&filed, &server, CodePart::First);
    let requests = admin2.ok(&["admin", "request", "list"]);
    let id = requests[0]["id"].as_str().unwrap().to_owned();
    let approved = admin2
        .irm(&["admin", "request", "approve", &id])
        .output()
        .unwrap();
    let second = invitation_of(&approved, &server, CodePart::Second);

    let alice = Person::new("alice");
    let half_only = enroll_with(&alice, &[&first]);
    assert_eq!(half_only.status.code(), Some(2), "{}", stderr(&half_only));
    assert!(stderr(&half_only).contains("other administrator's invitation"));
    assert!(!alice.config_dir().join("device.json").exists());

    let enrolled = enroll_with(&alice, &[&second, &first]);
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    assert_eq!(whoami(&alice), "alice");
}

#[test]
fn a_wrong_fingerprint_sends_nothing_and_the_code_still_works() {
    let server = Server::start();
    let admin = Person::new(ADMIN);
    admin.enroll(&server, &server.admin_code);
    let out = admin
        .irm(&["admin", "user", "add", "admin2", "--role", "admin"])
        .output()
        .unwrap();
    let line = invitation_of(&out, &server, CodePart::Whole);
    // Another CA (one hex digit off): a server in between, or a copy error.
    let mut forged: Invitation = line.parse().unwrap();
    forged.ca_sha256[0] ^= 1;
    let admin2 = Person::new("admin2");
    let refused = admin2
        .irm(&["enroll", &forged.to_string(), "--json"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    let failure = json_of(&refused);
    assert_eq!(failure["ok"], false);
    let message = failure["message"].as_str().unwrap();
    assert!(message.contains("fingerprint"), "{message}");
    assert!(
        message.contains(&hex::encode(forged.ca_sha256)),
        "{message}"
    );
    assert!(failure["hint"].as_str().unwrap().contains("not used up"));
    assert!(!admin2.config_dir().join("device.json").exists());

    // Nothing reached the enrollment endpoint: the real line still works.
    let enrolled = enroll_with(&admin2, &[&line]);
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
}

#[test]
fn json_answers_carry_the_invitation_beside_the_code() {
    let server = Server::start();
    let admin = Person::new(ADMIN);
    admin.enroll(&server, &server.admin_code);
    let created = admin.ok(&["admin", "user", "add", "admin2", "--role", "admin"]);
    let code = created["code"].as_str().unwrap();
    let invitation: Invitation = created["invitation"].as_str().unwrap().parse().unwrap();
    assert_eq!(*invitation.code, code);
    assert_eq!(invitation.server_url, server.url);
}

#[test]
fn the_bootstrap_administrator_gets_an_invitation_from_init() {
    let data = tempfile::TempDir::new().unwrap();
    let dir = data.path().join("irm-data");
    let out = std::process::Command::new(key_server_binary())
        .args(["init", "--listen", "127.0.0.1:9443", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("irm-invite:"))
        .unwrap_or_else(|| panic!("no invitation in {text}"));
    let invitation: Invitation = line.parse().unwrap();
    assert_eq!(invitation.server_url, "https://127.0.0.1:9443");
    let pem = std::fs::read_to_string(dir.join("tls/ca.pem")).unwrap();
    assert_eq!(Some(invitation.ca_sha256), ca_fingerprint(&pem));
    assert!(text.contains(&*invitation.code), "the same code as printed");
}
