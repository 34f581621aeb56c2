//! libirm's `irm_export` (PROTOCOL.md §7.3, §7.8) through the C ABI as C
//! calls it, against a real key server: a customer list is refused until
//! two administrators approve the export, then comes back with the canary
//! rows the server issued for this export among its real rows, and
//! `irm trace`'s lookup names the export from them.

#![allow(unsafe_code)] // The point is to call the C ABI as C does.

use std::collections::BTreeSet;

use irm::{irm_buffer_free, irm_client_free, irm_close, irm_export, irm_status};
use irm_client::Session;
use irm_client::canary::contact_values;
use irm_core::protocol::TakeOut;
use irm_core::{PolicyGrant, Recipient, Rights, SealedHeader};
use irm_e2e::libirm::{check, client_open, open};
use irm_e2e::stage::{ALICE_PASSPHRASE, Stage};

/// A small customer list in UTF-8, as a CRM would export it.
fn customer_list(rows: usize) -> Vec<u8> {
    let mut text = String::from("id,name,phone,email\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{},Customer {i},03-{:04}-{:04},customer{i}@example.jp\n",
            1000 + i,
            2000 + i % 7000,
            i % 10_000
        ));
    }
    text.into_bytes()
}

/// `irm_export` once: its status, and the bytes and canary count on success.
fn export(doc: *const irm::irm_document) -> (irm_status, Option<(Vec<u8>, usize)>) {
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len = 0usize;
    let mut canaries = 0usize;
    // SAFETY: a live document and writable outputs.
    let status = unsafe { irm_export(doc, &raw mut out, &raw mut len, &raw mut canaries) };
    if status != irm_status::IRM_OK {
        return (status, None);
    }
    // SAFETY: libirm handed out `len` bytes at `out`; copied, then freed once.
    let bytes = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
    // SAFETY: the buffer irm_export returned, with its length.
    unsafe { irm_buffer_free(out, len) };
    (status, Some((bytes, canaries)))
}

#[test]
fn a_list_exported_through_libirm_needs_approval_and_carries_canaries() {
    let mut stage = Stage::new();
    let list = customer_list(500);
    let policy = irm_core::Policy::builder()
        .grant(PolicyGrant {
            recipients: BTreeSet::from([Recipient::parse("alice").expect("a recipient")]),
            rights: Rights::VIEW | Rights::EXPORT,
        })
        .build()
        .expect("a policy");
    let (path, file_id) = stage.seal_with("customers.irm", policy, &list);
    let alice = Session::unlock(&stage.alice_config_dir(), &Stage::alice_passphrase())
        .expect("alice unlocks");
    let client = client_open(&stage.alice_config_dir(), ALICE_PASSPHRASE);
    // SAFETY: a live client.
    let doc = unsafe { open(client, &path) };

    // Not approved: refused, nothing handed out.
    let (status, out) = export(doc);
    assert_eq!(
        status,
        irm_status::IRM_STATUS_DENIED_EXPORT_APPROVAL_REQUIRED
    );
    assert!(out.is_none());

    let sealed = std::fs::read(&path).expect("the sealed list");
    let header = SealedHeader::read_from(&mut &sealed[..]).expect("a header");
    drop(alice.grant(&header, false).expect("alice is a recipient"));
    let filed = alice
        .request_take_out(&file_id, TakeOut::Export)
        .expect("the export is filed");
    for admin in [&stage.admins.admin, &stage.admins.approver] {
        admin
            .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
            .expect("an administrator approves");
    }
    let (status, out) = export(doc);
    check(status, "irm_export");
    let (bytes, canaries) = out.expect("the list");
    let expected = irm_core::protocol::canary_count(500) as usize;
    assert_eq!(canaries, expected);
    // Every real row is there, in order, with the canary rows among them.
    let text = String::from_utf8(bytes.clone()).expect("still UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 500 + expected);
    let original = String::from_utf8(list).expect("UTF-8");
    let real: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| original.lines().any(|o| o == *l))
        .collect();
    assert_eq!(real, original.lines().collect::<Vec<_>>());
    // The approval is spent: a second export is refused again.
    assert_eq!(
        export(doc).0,
        irm_status::IRM_STATUS_DENIED_EXPORT_APPROVAL_REQUIRED
    );

    // The canaries name this export, as `irm trace` would ask.
    let admin = &mut stage.admins.admin;
    admin
        .set_reason(Some("INC-15: a list found online"))
        .expect("a reason");
    let values: Vec<String> = contact_values(&bytes).into_iter().collect();
    let answer = admin
        .trace_canaries(&values)
        .expect("the trace is answered");
    assert_eq!(answer.exports.len(), 1, "{answer:?}");
    assert_eq!(answer.exports[0].user, "alice");
    assert_eq!(answer.exports[0].file_id, file_id);

    // SAFETY: live handles, each freed once.
    unsafe {
        irm_close(doc);
        irm_client_free(client);
    }
}
