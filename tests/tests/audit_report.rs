//! `irm admin audit report` and `irm admin review` through the real `irm`
//! binary against the real key server: a day of activity (two people open
//! files, one is refused, one prints), an administrator's action with a
//! hostile reason and a printer with a hostile name; the account review
//! recorded; then the report from the server (JSON) and from an export by
//! a reviewer with no credentials at all (HTML), rendered by Debian's
//! headless Chromium, whose DOM must show the same totals, the hostile
//! strings as text, and no `<script>` element.

use std::path::Path;
use std::process::Command;

use irm_client::{Passphrase, Session};
use irm_core::SealedHeader;
use irm_core::protocol::UsageAction;
use irm_e2e::{Admins, Person, Server};
use serde_json::Value;

/// A reason an administrator types, written to break out of HTML, quoted
/// attributes and SVG text, and to reorder the page with a bidi override.
const HOSTILE_REASON: &str =
    "<script>alert('reason')</script> \"quoted\" & 'single' \u{202E}fdp.exe";
/// A printer's name as a viewer reports it.
const HOSTILE_PRINTER: &str = "<img src=x onerror=alert(1)>&amp;\u{202E}3F";

/// `chromium --headless ... ARGS file://PAGE`; fails the test with what to
/// do when Chromium is missing (scripts/test installs it).
fn chromium(args: &[&str], page: &Path) -> Vec<u8> {
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run chromium ({e}): the HTML report is checked in Debian's headless \
                 Chromium; scripts/test installs it (apt-get install --no-install-recommends chromium)"
            )
        });
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The text of the element with `id` in a serialized DOM.
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in the page"));
    let text = &dom[start..];
    let text = &text[text.find('>').expect("a tag") + 1..];
    &text[..text.find('<').expect("an end tag")]
}

#[test]
fn a_day_of_activity_reports_the_same_in_json_and_in_the_rendered_page() {
    let server = Server::start();
    let admins = Admins::enroll(&server);
    let admin = &admins.admin;
    admin.ok(&["admin", "group", "add", "@support"]);
    let alice = Person::new("alice");
    alice.enroll(&server, &admins.add_user(&["alice", "--group", "support"]));
    let carol = Person::new("carol");
    carol.enroll(&server, &admins.add_user(&["carol", "--group", "support"]));
    let mallory = Person::new("mallory");
    mallory.enroll(&server, &admins.add_user(&["mallory"]));

    let input = admin.write("calls.csv", b"customer,phone\nYamada,03-1234-5678\n");
    let input = input.to_str().expect("UTF-8");
    let sealed: Vec<String> = ["calls", "orders"]
        .iter()
        .map(|name| {
            let path = admin.path(&format!("{name}.csv.irm"));
            let path = path.to_str().expect("UTF-8").to_owned();
            admin.ok(&[
                "seal",
                input,
                "-o",
                &path,
                "--to",
                "@support",
                "--allow",
                "view,print",
            ]);
            path
        })
        .collect();

    // The day: alice opens both files, carol one, mallory is refused.
    alice.ok(&["info", &sealed[0]]);
    alice.ok(&["info", &sealed[1]]);
    carol.ok(&["info", &sealed[0]]);
    let (code, refused) = mallory.json(&["info", &sealed[0]]);
    assert_eq!(
        (code, refused["reason"].as_str()),
        (3, Some("not_recipient"))
    );
    // Alice prints three rows from her viewer (a third grant).
    let session = Session::unlock(
        &alice.config_dir(),
        &Passphrase::new(alice.passphrase()).expect("a passphrase"),
    )
    .expect("alice's credentials unlock");
    let bytes = std::fs::read(&sealed[0]).expect("the sealed file");
    let header = SealedHeader::read_from(&mut &bytes[..]).expect("a header");
    let grant = session.grant(&header, false).expect("alice is granted");
    session
        .report_rows(&grant, UsageAction::Print, 3, Some(HOSTILE_PRINTER))
        .expect("printing three rows needs no approval");
    // An administrator's action, with a reason meant to break the page.
    admin.ok(&[
        "admin",
        "file",
        "revoke",
        &sealed[1],
        "--reason",
        HOSTILE_REASON,
    ]);

    // The account review: listed, refused without a reason, recorded.
    let review = admin.ok(&["admin", "review", "--dormant-days", "30"]);
    assert_eq!(review["dormant_days"], 30);
    let support = review["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "support")
        .expect("@support in the review");
    assert_eq!(support["members"], serde_json::json!(["alice", "carol"]));
    assert!(
        review["privileged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "admin2")
    );
    let (code, _) = admin.json(&["admin", "review", "done"]);
    assert_eq!(code, 2, "no reason: a usage error");
    admin.ok(&[
        "admin",
        "review",
        "done",
        "--reason",
        "December review, SEC-7",
    ]);
    let again = admin.ok(&["admin", "review"]);
    assert_eq!(again["last_review"]["by"], "admin");
    assert_eq!(again["last_review"]["reason"], "December review, SEC-7");

    // From the key server, as JSON.
    let report: Value = {
        let out = admin
            .irm(&[
                "admin", "audit", "report", "--since", "1d", "--format", "json",
            ])
            .output()
            .expect("irm runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("a JSON report")
    };
    let totals = &report["totals"];
    assert_eq!(totals["grants"], 4, "{totals}");
    assert_eq!(totals["people"], 2);
    assert_eq!(totals["files"], 2);
    assert_eq!(totals["denials"], 1);
    assert_eq!(totals["prints"], 1);
    assert_eq!(totals["rows_taken"], 3);
    assert_eq!(report["denials"][0]["reason"], "not_recipient");
    assert_eq!(report["last_review"]["reason"], "December review, SEC-7");
    assert!(report["checkpoint"]["count"].as_u64().unwrap() > 0);
    let revoke = report["admin_actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "admin.file.revoke")
        .expect("the revocation");
    assert_eq!(revoke["reason"], HOSTILE_REASON);

    // The export, then the report from it by a reviewer with no
    // enrollment, no passphrase and no key server.
    let export = admin.path("audit.jsonl");
    admin.ok(&["admin", "audit", "export", "-o", export.to_str().unwrap()]);
    let reviewer = Person::new("reviewer");
    let page = reviewer.path("report.html");
    reviewer
        .irm(&["admin", "audit", "report", "--from-export"])
        .arg(&export)
        .args(["--since", "1d", "--format", "html", "-o"])
        .arg(&page)
        .env_remove("IRM_PASSPHRASE")
        .assert()
        .success();
    let text = String::from_utf8(
        reviewer
            .irm(&["admin", "audit", "report", "--from-export"])
            .arg(&export)
            .args(["--since", "1d"])
            .output()
            .expect("irm runs")
            .stdout,
    )
    .unwrap();
    assert!(
        text.contains("opens 4 (renewals 0) by 2 people of 2 files"),
        "{text}"
    );
    assert!(text.contains("[U+202E]fdp.exe") && !text.contains('\u{202E}'));

    // The export's last record, vouched for by its checkpoint: the head the
    // page must name for a reader to tie it to `irm audit verify`.
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(&export)
            .expect("the export")
            .lines()
            .next()
            .expect("a header line"),
    )
    .expect("a JSON header");
    let last_seq = header["export"]["last_seq"].to_string();

    let dom = String::from_utf8(chromium(&["--dump-dom"], &page)).expect("UTF-8 DOM");
    for (id, want) in [
        ("total-grants", "4"),
        ("total-people", "2"),
        ("total-files", "2"),
        ("total-denials", "1"),
        ("total-prints", "1"),
        ("total-rows", "3"),
        (
            "total-admin-actions",
            totals["admin_actions"].to_string().as_str(),
        ),
        ("head-seq", last_seq.as_str()),
        ("checkpoint-count", format!("{last_seq} records").as_str()),
    ] {
        assert_eq!(by_id(&dom, id), want, "#{id}");
    }
    assert!(by_id(&dom, "last-review").contains("by "));
    assert!(dom.contains("December review, SEC-7"));
    // The hostile strings arrived as text: escaped in the serialized DOM,
    // never as elements, and the override shown, not obeyed.
    assert!(
        !dom.to_ascii_lowercase().contains("<script"),
        "a script element"
    );
    assert!(!dom.to_ascii_lowercase().contains("<img"), "an img element");
    assert!(
        dom.contains(
            "&lt;script&gt;alert('reason')&lt;/script&gt; \"quoted\" &amp; 'single' [U+202E]fdp.exe"
        ) || dom.contains("&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;"),
        "the reason as text"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;&amp;amp;[U+202E]3F"),
        "the printer as text"
    );
    assert!(!dom.contains('\u{202E}'));

    // And it draws: a screenshot is a PNG (kept for the README when asked).
    let shot = reviewer.path("report.png");
    chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2200",
            "--hide-scrollbars",
        ],
        &page,
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if let Some(keep) = std::env::var_os("IRM_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("copying the screenshot");
    }
}
