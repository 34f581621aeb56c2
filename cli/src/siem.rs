//! Audit records for a SIEM (`irm admin audit export --format cef|jsonl`,
//! PROTOCOL.md §12.1): one event a line, whatever the records hold. CEF
//! (ArcSight Common Event Format, revision 25) escapes `\` and `|` in the
//! header and `\`, `=`, CR and LF in the extension, so that a name, a
//! reason or a detail with `<script>`, quotes, pipes, equals signs, line
//! breaks or bidirectional controls stays one field of one line. JSON Lines
//! is `serde_json`'s, which escapes every control character.
//!
//! Neither carries a checkpoint: the verifiable export (PROTOCOL.md §9.1)
//! is the one to prove what the log held.

use irm_core::protocol::{ALERT_ACTION_PREFIX, AlertResponse, AuditRecord};

/// A CEF header field: `\` and `|` escaped; CR and LF (which the spec does
/// not allow there) written as `\r` and `\n` so that the event stays one line.
fn header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A CEF extension value: `\`, `=`, CR and LF escaped.
fn value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// CEF severity, 0 to 10: detections highest (a hold or suspension above a
/// plain alert), then refusals, then failures and administration.
pub(crate) fn severity(record: &AuditRecord) -> u8 {
    if record.action.starts_with(ALERT_ACTION_PREFIX) {
        match AlertResponse::from_detail(record.detail.as_deref()) {
            AlertResponse::Alert => 8,
            AlertResponse::StepUp | AlertResponse::Suspend => 9,
        }
    } else if record.result == "denied" {
        6
    } else if record.action == "alert.delivery_failed" {
        5
    } else if record.result == "failed" {
        4
    } else if record.action.starts_with("admin.") {
        3
    } else {
        1
    }
}

/// The event's name: what happened, in words.
fn name(record: &AuditRecord) -> String {
    match record.action.strip_prefix(ALERT_ACTION_PREFIX) {
        Some(rule) => format!("detection {rule}"),
        None => match &record.reason {
            Some(reason) => format!("{} {} ({reason})", record.action, record.result),
            None => format!("{} {}", record.action, record.result),
        },
    }
}

/// One audit record as one CEF line (no line end), from `irm-key-server`
/// version `version`.
pub(crate) fn cef_line(record: &AuditRecord, version: &str) -> String {
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", record.at_ms.to_string()),
        ("externalId", record.seq.to_string()),
        ("outcome", record.result.clone()),
    ];
    let optional = [
        ("suser", &record.actor_user),
        ("cs1", &record.actor_device),
        ("fileId", &record.file_id),
        ("reason", &record.reason),
        ("cs3", &record.client_addr),
        ("msg", &record.detail),
    ];
    for (key, field) in optional {
        if let Some(text) = field {
            match key {
                "cs1" => ext.push(("cs1Label", "device".into())),
                "cs3" => ext.push(("cs3Label", "clientAddress".into())),
                _ => {}
            }
            ext.push((key, text.clone()));
        }
    }
    ext.push(("cs2Label", "hash".into()));
    ext.push(("cs2", record.hash.clone()));
    let extension = ext
        .iter()
        .map(|(key, text)| format!("{key}={}", value(text)))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "CEF:0|IRM|irm-key-server|{}|{}|{}|{}|{extension}",
        header(version),
        header(&record.action),
        header(&name(record)),
        severity(record)
    )
}

/// One audit record as one JSON line (no line end).
pub(crate) fn jsonl_line(record: &AuditRecord) -> String {
    // An AuditRecord is strings and numbers: it always serialises.
    serde_json::to_string(record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CEF line read back: the seven header fields and the extension's
    /// pairs, unescaped.
    fn parse(line: &str) -> (Vec<String>, Vec<(String, String)>) {
        let mut fields = Vec::new();
        let mut current = String::new();
        let mut chars = line.chars();
        while fields.len() < 7 {
            match chars.next().expect("seven header fields") {
                '\\' => match chars.next().expect("an escape") {
                    'r' => current.push('\r'),
                    'n' => current.push('\n'),
                    c @ ('\\' | '|') => current.push(c),
                    c => panic!("bad header escape \\{c}"),
                },
                '|' => fields.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        // The extension: `key=value` pairs; a value runs to the space before
        // the next unescaped `key=`.
        let rest: String = chars.collect();
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut raw = String::new();
        let mut key: Option<String> = None;
        let mut it = rest.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\\' => match it.next().expect("an escape") {
                    'r' => raw.push('\r'),
                    'n' => raw.push('\n'),
                    c @ ('\\' | '=') => raw.push(c),
                    c => panic!("bad extension escape \\{c}"),
                },
                '=' => {
                    // An unescaped `=`: the word before it is the next key.
                    let (before, next_key) = match raw.rsplit_once(' ') {
                        Some((before, k)) => (before.to_owned(), k.to_owned()),
                        None => (String::new(), std::mem::take(&mut raw)),
                    };
                    if let Some(k) = key.take() {
                        pairs.push((k, before));
                    }
                    key = Some(next_key);
                    raw.clear();
                }
                c => raw.push(c),
            }
        }
        if let Some(k) = key {
            pairs.push((k, raw));
        }
        (fields, pairs)
    }

    fn record(detail: &str, user: &str, reason: Option<&str>) -> AuditRecord {
        AuditRecord {
            seq: 42,
            at_ms: 1_800_000_000_123,
            actor_user: Some(user.to_owned()),
            actor_device: Some("ab".repeat(16)),
            action: "detect.bulk_files".into(),
            file_id: Some("cd".repeat(16)),
            result: "ok".into(),
            reason: reason.map(str::to_owned),
            client_addr: Some("192.0.2.7:51000".into()),
            detail: Some(detail.to_owned()),
            prev_hash: "0".repeat(64),
            hash: "f".repeat(64),
        }
    }

    const HOSTILE: [&str; 8] = [
        "<script>alert(1)</script>",
        "say \"hi\" and 'bye'",
        "a|b|c",
        "k=v x=y",
        "back\\slash\\",
        "line\r\nbreak\nLF\rCR",
        "\u{202e}txt.exe",
        "end with \\",
    ];

    #[test]
    fn hostile_text_stays_in_its_field_of_one_line_and_reads_back() {
        for text in HOSTILE {
            let detail = format!("files=31 action=suspend note={text}");
            let r = record(&detail, text, Some(text));
            let line = cef_line(&r, "1.2|3");
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
            let (header, ext) = parse(&line);
            assert_eq!(
                header,
                [
                    "CEF:0",
                    "IRM",
                    "irm-key-server",
                    "1.2|3",
                    "detect.bulk_files",
                    "detection bulk_files",
                    "9"
                ],
                "{line}"
            );
            let get = |k: &str| {
                ext.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_else(|| panic!("{k} in {line}"))
            };
            assert_eq!(get("suser"), text, "{line}");
            assert_eq!(get("reason"), text, "{line}");
            assert_eq!(get("msg"), detail, "{line}");
            assert_eq!(get("externalId"), "42");
            assert_eq!(get("rt"), "1800000000123");
            assert_eq!(get("cs3"), "192.0.2.7:51000");

            let json = jsonl_line(&r);
            assert!(!json.contains('\n') && !json.contains('\r'), "{json:?}");
            let back: AuditRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn detections_and_refusals_rank_highest() {
        let mut r = record("files=31 action=step_up", "alice", None);
        assert_eq!(severity(&r), 9);
        r.detail = Some("how=export action=alert".into());
        assert_eq!(severity(&r), 8);
        r.action = "grant".into();
        r.result = "denied".into();
        r.reason = Some("file_revoked".into());
        assert_eq!(severity(&r), 6);
        let (header, _) = parse(&cef_line(&r, "1"));
        assert_eq!(header[5], "grant denied (file_revoked)");
        r.result = "ok".into();
        r.reason = None;
        assert_eq!(severity(&r), 1);
        r.action = "admin.alert.ack".into();
        assert_eq!(severity(&r), 3);
        // A header with a pipe or a backslash of its own still parses.
        r.action = "odd|act\\ion".into();
        let (header, _) = parse(&cef_line(&r, "1"));
        assert_eq!(header[4], "odd|act\\ion");
    }
}
