//! Writes a synthetic but valid audit export (PROTOCOL.md §9.1) for the
//! audit report's benchmark (`scripts/bench-report`): N records of a month
//! of work by 200 people (grants, renewals, refusals, prints and copies,
//! approvals, alerts and their acknowledgements, administrators' actions,
//! enrollments), chained with the real `chain_hash` and vouched for by a
//! checkpoint signed with a fresh audit key, whose public key is written
//! beside it, so that `irm audit verify --export` passes on it.
//!
//! Usage: synthetic_audit_export OUT.jsonl RECORDS START_UNIX_MS
//! (writes OUT.jsonl and OUT.jsonl.pub)

use std::io::{BufWriter, Write};

use irm_core::SigningSecretKey;
use irm_core::audit::{AuditPublicKey, GENESIS_HASH, chain_hash, sign_checkpoint};
use irm_core::protocol::{AuditExportHeader, AuditExportLine, AuditRecord};

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, count, start] = args.as_slice() else {
        return Err("usage: synthetic_audit_export OUT.jsonl RECORDS START_UNIX_MS".into());
    };
    let count: u64 = count.parse()?;
    let start: u64 = start.parse()?;
    let key = SigningSecretKey::generate()?;
    let month_ms = 30 * 86_400_000u64;
    let step = (month_ms / count.max(1)).max(1);

    // Records first (hashed as they go), to a temporary file; the
    // checkpoint over the last one must come before them in the export.
    let body_path = format!("{out}.records");
    let mut body = BufWriter::with_capacity(1 << 20, std::fs::File::create(&body_path)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut prev = GENESIS_HASH;
    let mut last_alert = 0u64;
    for seq in 1..=count {
        let user = format!("user{:03}", rng.below(200));
        let device = format!("{:032x}", rng.below(400));
        let file = format!("{:032x}", rng.below(5000));
        let roll = rng.below(1000);
        let (action, result, reason, detail, file_id): (
            &str,
            &str,
            Option<&str>,
            Option<String>,
            bool,
        ) = match roll {
            0..=699 => (
                "grant",
                "ok",
                None,
                Some(format!(
                    "grant={:032x} rights=view,print lease_expires_at=0",
                    rng.next()
                )),
                true,
            ),
            700..=849 => (
                "renew",
                "ok",
                None,
                Some(format!(
                    "grant={:032x} rights=view lease_expires_at=0",
                    rng.next()
                )),
                true,
            ),
            850..=899 => ("grant", "denied", Some("not_recipient"), None, true),
            900..=939 => (
                "event.print",
                "ok",
                None,
                Some(format!(
                    "grant={:032x} printer-{} rows={}",
                    rng.next(),
                    rng.below(9),
                    rng.below(100)
                )),
                true,
            ),
            940..=959 => (
                "event.copy",
                "ok",
                None,
                Some(format!("grant={:032x} rows={}", rng.next(), rng.below(100))),
                true,
            ),
            960..=964 => (
                "event.copy",
                "denied",
                Some("export_approval_required"),
                Some(format!("grant={:032x} rows=5000", rng.next())),
                true,
            ),
            965..=969 => (
                "file.print",
                "ok",
                None,
                Some(format!(
                    "user={user} device={device} request={:032x} approved_by=admin1,admin2 reason=TICKET-{}",
                    rng.next(),
                    rng.below(999)
                )),
                true,
            ),
            970..=974 => {
                last_alert = seq;
                (
                    "detect.take_out_refused",
                    "ok",
                    None,
                    Some("how=copy action=alert".to_owned()),
                    true,
                )
            }
            975..=976 if last_alert > 0 => (
                "admin.alert.ack",
                "ok",
                None,
                Some(format!(
                    "alert={last_alert} reason=checked with the manager"
                )),
                false,
            ),
            977..=989 => (
                "audit.read",
                "ok",
                None,
                Some("after=0 limit=1000".to_owned()),
                false,
            ),
            990..=994 => (
                "admin.file.revoke",
                "ok",
                None,
                Some(format!("reason=TICKET-{}", rng.below(999))),
                true,
            ),
            995..=997 => (
                "admin.group.add_member",
                "ok",
                None,
                Some(format!(
                    "group=g{} user={user} request={:032x} approved_by=admin2 reason=joined",
                    rng.below(20),
                    rng.next()
                )),
                false,
            ),
            _ => (
                "enroll",
                "ok",
                None,
                Some(format!(
                    "device={device} name=laptop-{} issued_by=admin1",
                    rng.below(99)
                )),
                false,
            ),
        };
        let mut record = AuditRecord {
            seq,
            at_ms: start + seq * step,
            actor_user: Some(user),
            actor_device: Some(device),
            action: action.to_owned(),
            file_id: file_id.then_some(file),
            result: result.to_owned(),
            reason: reason.map(str::to_owned),
            client_addr: Some("10.0.0.7".to_owned()),
            detail,
            prev_hash: hex::encode(prev),
            hash: String::new(),
        };
        let hash = chain_hash(&prev, &record);
        record.hash = hex::encode(hash);
        prev = hash;
        serde_json::to_writer(&mut body, &AuditExportLine::Record(record))?;
        body.write_all(b"\n")?;
    }
    body.flush()?;
    drop(body);

    let mut export = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let header = AuditExportHeader {
        version: 1,
        server: "https://synthetic.invalid".to_owned(),
        first_seq: 1,
        last_seq: count,
        exported_at_ms: start + month_ms,
    };
    let checkpoint = sign_checkpoint(&key, count, &prev, start + month_ms);
    for line in [
        AuditExportLine::Export(header),
        AuditExportLine::Checkpoint(checkpoint),
    ] {
        serde_json::to_writer(&mut export, &line)?;
        export.write_all(b"\n")?;
    }
    std::io::copy(&mut std::fs::File::open(&body_path)?, &mut export)?;
    export.flush()?;
    std::fs::remove_file(&body_path)?;
    let public = AuditPublicKey(key.public_key());
    std::fs::write(format!("{out}.pub"), public.to_text())?;
    Ok(())
}
