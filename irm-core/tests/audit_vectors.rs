//! The audit vectors (`tests/audit-vectors/`, written once by
//! `examples/gen_audit_vectors.rs`): an intact export verifies, and each kind
//! of tampering is reported with the problem `EXPECTED` names. The `irm` and
//! `irm-key-server` binaries' tests run the same files through their
//! `audit verify` commands.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use irm_core::audit::{AuditPublicKey, read_checkpoints, verify_export};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/audit-vectors")
}

/// `(name, expected)` from `EXPECTED`: `ok`, or a phrase a problem contains.
fn expected() -> Vec<(String, String)> {
    std::fs::read_to_string(dir().join("EXPECTED"))
        .expect("EXPECTED")
        .lines()
        .map(|line| {
            let (name, outcome) = line.split_once(": ").expect("NAME: OUTCOME");
            (name.to_owned(), outcome.to_owned())
        })
        .collect()
}

#[test]
fn every_audit_vector_verifies_as_expected() {
    let key = AuditPublicKey::from_text(
        &std::fs::read_to_string(dir().join("audit-signing.pub")).unwrap(),
    )
    .unwrap();
    let cases = expected();
    assert!(cases.len() >= 9, "{} cases", cases.len());
    assert_eq!(cases.iter().filter(|(_, e)| e == "ok").count(), 2);
    for (name, outcome) in &cases {
        let apart = dir().join(format!("{name}.checkpoints.jsonl"));
        let (extra, unreadable) = if apart.exists() {
            read_checkpoints(BufReader::new(std::fs::File::open(&apart).unwrap())).unwrap()
        } else {
            (Vec::new(), Vec::new())
        };
        let export = std::fs::File::open(dir().join(format!("{name}.jsonl"))).unwrap();
        let report = verify_export(BufReader::new(export), key.0, extra, unreadable).unwrap();
        if outcome == "ok" {
            assert!(report.ok, "{name}: {:?}", report.problems);
            assert!(report.records > 0 && report.checkpoints > 0, "{name}");
        } else {
            assert!(!report.ok, "{name} verified");
            assert!(
                report.problems.iter().any(|p| p.contains(outcome.as_str())),
                "{name}: no problem says {outcome:?}: {:?}",
                report.problems
            );
        }
    }
}

#[test]
fn every_vector_file_is_listed_in_expected() {
    let listed: BTreeSet<String> = expected().into_iter().map(|(name, _)| name).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if ["EXPECTED", "README.md", "audit-signing.pub"].contains(&name.as_str()) {
            continue;
        }
        let case = name
            .strip_suffix(".checkpoints.jsonl")
            .or_else(|| name.strip_suffix(".jsonl"))
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        assert!(listed.contains(case), "{name} is not in EXPECTED");
    }
}

/// The verifier trusts only the key it is given: the intact export fails
/// against any other audit key.
#[test]
fn the_intact_export_fails_against_another_key() {
    let export = std::fs::File::open(dir().join("intact.jsonl")).unwrap();
    let report = verify_export(BufReader::new(export), [9; 32], vec![], vec![]).unwrap();
    assert!(!report.ok);
}
