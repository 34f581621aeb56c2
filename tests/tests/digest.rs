//! `irm admin audit digest` (PROTOCOL.md §7.7) through the real `irm`
//! binary against the real key server, with the data owners' ends made
//! here: a minimal SMTP server (EHLO, MAIL, RCPT, DATA, QUIT on a loopback
//! port, refusing one mailbox) and an HTTPS webhook receiver with its own
//! throw-away CA.
//!
//! A week's activity for two groups, compressed into the test's minutes:
//! @support's files are opened by alice and carol, refused to mallory and
//! printed from a printer with a hostile name; @sales's by bob, whose third
//! file sets off a bulk alert that an administrator acknowledges. Then
//! @support's owner (a mailbox) must receive exactly @support's summary
//! with the right totals and nothing of @sales, and @sales's owner (a
//! webhook) the JSON, signed; a third owner whose mailbox the mail server
//! refuses gives exit 7 naming it; every run is on record as
//! `admin.digest.sent`; and no person's string reaches a mail header.
//! Apart: a digest over implicit TLS (`smtps://`, the sink's CA given with
//! `--ca`) with `AUTH PLAIN` from a password file, refused while that file
//! is readable by others.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use irm_client::{Passphrase, Session};
use irm_core::SealedHeader;
use irm_core::protocol::DetectionLimit;
use irm_core::protocol::{AuditQuery, OwnerContact, UsageAction};
use irm_e2e::{Admins, Person, Server, now_unix};
use irm_key_server::detect::Action;
use serde_json::Value;

/// A printer's name as a viewer reports it: a fake header and a bidi
/// override (the server refuses control characters in it, so CR and LF
/// are the unit tests' to try: `delivery.rs`, `audit_report/digest.rs`).
const HOSTILE_PRINTER: &str = "Bcc: spy@evil.example \u{202E}3F";
/// What an administrator acknowledging the alert writes.
const ACK_REASON: &str = "checked with bob \u{202E}kcab";
/// The webhook's HMAC key, shared with the receiver.
const HOOK_KEY: &[u8] = b"the-digest-webhook-key-of-the-client";
/// The mailbox the mail server refuses.
const BROKEN: &str = "owner@broken.example";

/// One mail the sink took.
#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    /// The header section, unfolded, one header a line.
    headers: String,
    /// The body, decoded from its transfer encoding, LF line ends.
    body: String,
}

type Mails = Arc<Mutex<Vec<Mail>>>;

/// An SMTP server on a loopback port that keeps every mail and refuses
/// `RCPT TO:<refuse>` with a permanent error; with `tls`, it speaks
/// implicit TLS (`smtps://`) and wants `AUTH PLAIN`, whose
/// `user:password` it keeps in `auth`.
fn smtp_sink(
    refuse: &'static str,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (String, Mails, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().unwrap().port();
    let scheme = if tls.is_some() { "smtps" } else { "smtp" };
    let mails: Mails = Arc::default();
    let auth: Arc<Mutex<Vec<String>>> = Arc::default();
    let (kept, logins) = (Arc::clone(&mails), Arc::clone(&auth));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // One client at a time is all the CLI is.
            let _ = match &tls {
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(conn) => converse(
                        rustls::StreamOwned::new(conn, stream),
                        &kept,
                        &logins,
                        refuse,
                        true,
                    ),
                    Err(_) => continue,
                },
                None => converse(stream, &kept, &logins, refuse, false),
            };
        }
    });
    (format!("{scheme}://127.0.0.1:{port}"), mails, auth)
}

fn converse(
    stream: impl Read + Write,
    mails: &Mails,
    logins: &Mutex<Vec<String>>,
    refuse: &str,
    wants_auth: bool,
) -> std::io::Result<()> {
    let mut input = BufReader::new(stream);
    macro_rules! reply {
        ($bytes:expr) => {{
            input.get_mut().write_all($bytes)?;
            input.get_mut().flush()?;
        }};
    }
    reply!(b"220 sink.test ESMTP\r\n");
    let mut authed = !wants_auth;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let address = || {
            command
                .split_once(':')
                .map(|(_, a)| {
                    a.trim()
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default()
        };
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if wants_auth {
                reply!(b"250-sink.test\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n");
            } else {
                reply!(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n");
            }
        } else if upper.starts_with("AUTH PLAIN ") {
            // RFC 4616: base64 of "authzid\0user\0password".
            let plain = base64::engine::general_purpose::STANDARD
                .decode(command["AUTH PLAIN ".len()..].trim())
                .unwrap_or_default();
            let parts: Vec<String> = plain
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            logins.lock().unwrap().push(parts[1..].join(":"));
            authed = true;
            reply!(b"235 2.7.0 accepted\r\n");
        } else if !authed && upper.starts_with("MAIL FROM:") {
            reply!(b"530 5.7.0 authentication required\r\n");
        } else if upper.starts_with("MAIL FROM:") {
            from = address();
            to.clear();
            reply!(b"250 2.1.0 OK\r\n");
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address();
            if rcpt == refuse {
                reply!(b"550 5.1.1 no such mailbox\r\n");
            } else {
                to.push(rcpt);
                reply!(b"250 2.1.5 OK\r\n");
            }
        } else if upper == "DATA" {
            reply!(b"354 end with <CRLF>.<CRLF>\r\n");
            let mut data = String::new();
            loop {
                line.clear();
                if input.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                // RFC 5321 §4.5.2: the client doubled a leading dot.
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            mails.lock().unwrap().push(parse(&from, &to, &data));
            reply!(b"250 2.0.0 queued\r\n");
        } else if upper == "RSET" || upper == "NOOP" {
            reply!(b"250 2.0.0 OK\r\n");
        } else if upper == "QUIT" {
            reply!(b"221 2.0.0 bye\r\n");
            return Ok(());
        } else {
            reply!(b"502 5.5.2 not here\r\n");
        }
    }
}

/// The mail's headers (unfolded) and its decoded body.
fn parse(from: &str, to: &[String], data: &str) -> Mail {
    let (head, body) = data.split_once("\r\n\r\n").unwrap_or((data, ""));
    let headers = head
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .replace("\r\n", "\n");
    let encoding = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-transfer-encoding:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    let bytes = match encoding.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .expect("a base64 body"),
        "quoted-printable" => quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    Mail {
        from: from.to_owned(),
        to: to.to_vec(),
        headers,
        body: String::from_utf8(bytes)
            .expect("a UTF-8 body")
            .replace("\r\n", "\n"),
    }
}

fn quoted_printable(body: &str) -> Vec<u8> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if let Some(b) = body
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

type Posts = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook receiver on 127.0.0.1 over HTTPS with a CA of its own: its
/// URL (whose path plays a receiver's token), the CA's PEM file and what
/// it was sent.
async fn receiver(dir: &std::path::Path) -> (String, std::path::PathBuf, Posts) {
    irm_key_server::tls::generate(dir, &[], now_unix()).expect("a throw-away CA");
    let tls = irm_key_server::tls::server_config(dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener = irm_key_server::tls::TlsListener::new(listener, tls).unwrap();
    let posts: Posts = Arc::default();
    let kept = Arc::clone(&posts);
    let app = axum::Router::new().route(
        "/hooks/T0KEN",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    // Never stopped: the receiver lives as long as the test's runtime.
    let (keep, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        irm_key_server::connections::serve_connections(listener, app, stop).await;
        drop(keep);
    });
    (
        format!("https://127.0.0.1:{port}/hooks/T0KEN"),
        dir.join("tls/ca.pem"),
        posts,
    )
}

fn session_of(person: &Person) -> Session {
    Session::unlock(
        &person.config_dir(),
        &Passphrase::new(person.passphrase()).expect("a passphrase"),
    )
    .expect("the credentials unlock")
}

#[test]
fn each_data_owner_receives_their_groups_week_and_nothing_else() {
    let (smtp, mails, _) = smtp_sink(BROKEN, None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the webhook receiver");
    let hook_dir = tempfile::tempdir().unwrap();
    let (hook, hook_ca, posts) = runtime.block_on(receiver(hook_dir.path()));
    let owners = BTreeMap::from([
        (
            "support".to_owned(),
            "mailto:owner-support@client.example".to_owned(),
        ),
        ("sales".to_owned(), hook.clone()),
        ("ops".to_owned(), format!("mailto:{BROKEN}")),
    ]);
    let server = Server::start_with(move |settings| {
        settings.data_owners = owners
            .iter()
            .map(|(g, c)| (g.clone(), OwnerContact::parse(c).expect("a contact")))
            .collect();
        // More than two files within the hour alerts (and only alerts).
        settings.detection.bulk = Some(DetectionLimit {
            limit: 2,
            window_secs: 3600,
            action: Action::Alert,
        });
    });

    // The week.
    let admins = Admins::enroll(&server);
    let admin = &admins.admin;
    for group in ["@support", "@sales", "@ops"] {
        admin.ok(&["admin", "group", "add", group]);
    }
    let person = |name: &str, group: Option<&str>| {
        let p = Person::new(name);
        let mut args = vec![name];
        if let Some(g) = group {
            args.extend(["--group", g]);
        }
        p.enroll(&server, &admins.add_user(&args));
        p
    };
    let alice = person("alice", Some("support"));
    let carol = person("carol", Some("support"));
    let bob = person("bob", Some("sales"));
    let mallory = person("mallory", None);
    let input = admin.write("list.csv", b"customer,phone\nYamada,03-1234-5678\n");
    let seal = |name: &str, to: &str| {
        let path = admin.path(&format!("{name}.csv.irm"));
        let path = path.to_str().expect("UTF-8").to_owned();
        admin.ok(&[
            "seal",
            input.to_str().unwrap(),
            "-o",
            &path,
            "--to",
            to,
            "--allow",
            "view,print",
        ]);
        path
    };
    let calls = seal("calls", "@support");
    let quarters: Vec<String> = ["q1", "q2", "q3"]
        .iter()
        .map(|q| seal(q, "@sales"))
        .collect();

    alice.ok(&["info", &calls]);
    carol.ok(&["info", &calls]);
    let (code, refused) = mallory.json(&["info", &calls]);
    assert_eq!(
        (code, refused["reason"].as_str()),
        (3, Some("not_recipient"))
    );
    let alice_session = session_of(&alice);
    let bytes = std::fs::read(&calls).expect("the sealed file");
    let header = SealedHeader::read_from(&mut &bytes[..]).expect("a header");
    let grant = alice_session
        .grant(&header, false)
        .expect("alice is granted");
    alice_session
        .report_rows(&grant, UsageAction::Print, 3, Some(HOSTILE_PRINTER))
        .expect("printing three rows needs no approval");
    for q in &quarters {
        bob.ok(&["info", q]);
    }
    let alerts = admin.ok(&["admin", "alert", "list"]);
    let alerts = alerts.as_array().expect("a list of alerts");
    assert_eq!(alerts.len(), 1, "bob's third file alerts: {alerts:?}");
    let alert_id = alerts[0]["id"].to_string();
    admin.ok(&["admin", "alert", "ack", &alert_id, "--reason", ACK_REASON]);

    let admin_session = session_of(admin);
    let owners = admin_session
        .data_owners()
        .expect("an admin reads the data owners");
    let files_of = |group: &str| {
        owners
            .owners
            .iter()
            .find(|o| o.group == group)
            .map(|o| o.files.clone())
            .expect("the group has an owner")
    };
    let (support_files, sales_files) = (files_of("support"), files_of("sales"));
    assert_eq!((support_files.len(), sales_files.len()), (1, 3));

    let key = admin.write("hook.key", &[HOOK_KEY, b"\n"].concat());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let digest = |extra: &[&str]| {
        admin
            .irm(&["admin", "audit", "digest", "--smtp", &smtp])
            .args([
                "--from",
                "IRM digest <irm@provider.example>",
                "--attempts",
                "2",
            ])
            .arg("--ca")
            .arg(&hook_ca)
            .arg("--webhook-secret-file")
            .arg(&key)
            .args(extra)
            .output()
            .expect("irm runs")
    };

    // A dry run sends nothing and says what it would.
    let dry = digest(&["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let shown = String::from_utf8_lossy(&dry.stdout);
    assert!(
        shown.contains("=== @support to mailto:owner-support@client.example"),
        "{shown}"
    );
    assert!(mails.lock().unwrap().is_empty() && posts.lock().unwrap().is_empty());

    // The two good owners: exit 0.
    let sent = digest(&["--group", "support", "--group", "@sales"]);
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert_eq!(sent.status.code(), Some(0), "{stderr}");

    let got = mails.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one mail: {got:?}");
    let mail = &got[0];
    assert_eq!(mail.to, ["owner-support@client.example"]);
    assert_eq!(mail.from, "irm@provider.example");
    assert!(
        mail.headers
            .contains("Subject: IRM audit digest for @support"),
        "{}",
        mail.headers
    );
    // Nothing a person wrote is in a header, and no header was added.
    assert!(!mail.headers.contains("spy@") && !mail.headers.contains('\u{202E}'));
    assert!(
        !mail
            .headers
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc"))
    );
    let body = &mail.body;
    assert!(
        body.contains("opens 3 (renewals 0) by 2 people of 1 files"),
        "{body}"
    );
    assert!(body.contains("denials 1"), "{body}");
    assert!(body.contains("prints 1, copies 0, exports 0"), "{body}");
    assert!(body.contains("alerts 0 (acknowledgements 0)"), "{body}");
    assert!(body.contains("alice") && body.contains("carol") && body.contains("mallory"));
    // The hostile printer as text, its override shown and not obeyed.
    assert!(
        body.contains("[U+202E]3F") && !body.contains('\u{202E}'),
        "{body}"
    );
    // Nothing of @sales.
    assert!(!body.contains("bob") && !body.contains("@sales"), "{body}");
    for file in &sales_files {
        assert!(
            !body.contains(file.as_str()),
            "a @sales file in @support's mail"
        );
    }
    assert!(body.contains(support_files[0].as_str()));
    assert!(body.contains("chain head: record"), "{body}");

    let got = posts.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one webhook POST");
    let (headers, raw) = &got[0];
    assert_eq!(headers["x-irm-digest-group"], "sales");
    let signature = headers["x-irm-signature"].to_str().unwrap();
    assert!(irm_core::webhook::verify(
        HOOK_KEY,
        signature,
        raw,
        now_unix(),
        300
    ));
    let json: Value = serde_json::from_slice(raw).expect("a JSON body");
    assert_eq!(
        (json["version"].as_u64(), json["group"].as_str()),
        (Some(1), Some("sales"))
    );
    assert_eq!(json["server"], server.url);
    let totals = &json["report"]["totals"];
    assert_eq!(totals["grants"], 3, "{totals}");
    assert_eq!(totals["people"], 1);
    assert_eq!(totals["denials"], 0);
    assert_eq!(totals["alerts"], 1);
    assert_eq!(totals["acknowledgements"], 1);
    assert_eq!(
        json["report"]["alerts"][0]["acknowledged"]["reason"],
        ACK_REASON
    );
    assert_eq!(
        json["report"]["groups"][0]["members"],
        serde_json::json!(["bob"])
    );
    let text = String::from_utf8_lossy(raw);
    for other in ["alice", "carol", "mallory", support_files[0].as_str()] {
        assert!(!text.contains(other), "{other} in @sales's digest");
    }

    // Every group: @ops's mailbox is refused, retried, named; exit 7.
    let partly = digest(&[]);
    let stderr = String::from_utf8_lossy(&partly.stderr);
    assert_eq!(partly.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains(&format!("@ops (mailto:{BROKEN})")),
        "{stderr}"
    );
    assert!(stderr.contains("after 2 tries"), "{stderr}");
    let got = mails.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "@support's again, and nothing for @ops");
    assert!(got.iter().all(|m| m.to == ["owner-support@client.example"]));
    assert_eq!(posts.lock().unwrap().len(), 2);

    // Both runs are on record, with their recipients, the webhook by its
    // host only (its path holds its token).
    let records = admin_session
        .audit_query(&AuditQuery {
            limit: 10,
            action: Some("admin.digest.sent".into()),
            ..AuditQuery::default()
        })
        .expect("the audit log");
    assert_eq!(records.len(), 2, "{records:?}");
    let port = hook.split(':').nth(2).unwrap().split('/').next().unwrap();
    let first = records[0].detail.as_deref().unwrap();
    assert!(
        first.contains(&format!(
            "sent=sales:https://127.0.0.1:{port}/,support:mailto:owner-support@client.example failed="
        )),
        "{first}"
    );
    let second = records[1].detail.as_deref().unwrap();
    assert!(
        second.contains(&format!("failed=ops:mailto:{BROKEN}")),
        "{second}"
    );
    assert!(
        records
            .iter()
            .all(|r| !r.detail.as_deref().unwrap().contains("T0KEN"))
    );
    assert_eq!(records[0].actor_user.as_deref(), Some("admin"));

    // An auditor may run it (reads and the record are auditors' too); a
    // person without the role is refused by the server.
    let auditor = Person::new("auditor");
    auditor.enroll(&server, &admins.add_user(&["auditor", "--role", "auditor"]));
    let out = auditor
        .irm(&[
            "admin",
            "audit",
            "digest",
            "--dry-run",
            "--group",
            "support",
            "--json",
        ])
        .output()
        .expect("irm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dry: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(dry[0]["group"], "support");
    assert_eq!(dry[0]["body"]["report"]["totals"]["grants"], 3);
    let (code, refused) = mallory.json(&["admin", "audit", "digest", "--dry-run"]);
    assert_eq!(
        (code, refused["reason"].as_str()),
        (3, Some("role_required"))
    );

    // A mailbox owner and no mail server: a usage error before anything.
    let out = admin
        .irm(&["admin", "audit", "digest", "--group", "support"])
        .output()
        .expect("irm runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mails.lock().unwrap().len(), 2);
}

/// `smtps://` with the mail server's CA given by `--ca`, the account by
/// `--smtp-user` and its password from a private file (never the command
/// line); a password file others can read is refused before anything is
/// sent.
#[test]
fn a_digest_goes_over_implicit_tls_with_the_password_from_a_private_file() {
    let tls_dir = tempfile::tempdir().unwrap();
    irm_key_server::tls::generate(tls_dir.path(), &[], now_unix()).expect("a throw-away CA");
    let mut config = (*irm_key_server::tls::server_config(tls_dir.path()).unwrap()).clone();
    config.alpn_protocols.clear();
    let (smtp, mails, logins) = smtp_sink(BROKEN, Some(Arc::new(config)));
    assert!(smtp.starts_with("smtps://"));
    let server = Server::start_with(|settings| {
        settings.data_owners = BTreeMap::from([(
            "support".to_owned(),
            OwnerContact::parse("mailto:owner-support@client.example").unwrap(),
        )]);
    });
    let admins = Admins::enroll(&server);
    let admin = &admins.admin;
    admin.ok(&["admin", "group", "add", "@support"]);

    let password = admin.write("smtp-password", b"s3cret-smtp-password\n");
    let digest = || {
        admin
            .irm(&["admin", "audit", "digest", "--smtp", &smtp])
            .args([
                "--smtp-user",
                "irm-digest",
                "--from",
                "irm@provider.example",
            ])
            .arg("--smtp-password-file")
            .arg(&password)
            .arg("--ca")
            .arg(tls_dir.path().join("tls/ca.pem"))
            .env_remove("IRM_SMTP_PASSWORD")
            .output()
            .expect("irm runs")
    };
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = digest();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("chmod 600"), "{stderr}");
        assert!(mails.lock().unwrap().is_empty());
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = digest();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert_eq!(
        logins.lock().unwrap().as_slice(),
        ["irm-digest:s3cret-smtp-password"]
    );
    let got = mails.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, ["owner-support@client.example"]);
    assert!(
        got[0].body.contains("IRM audit digest for @support"),
        "{}",
        got[0].body
    );
}
