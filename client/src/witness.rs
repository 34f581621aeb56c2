//! This device as a witness of the key server's audit log (PROTOCOL.md
//! §9.2). Every grant carries the server's newest signed checkpoint; the
//! device keeps the newest it has seen in `audit-witness.jsonl` beside its
//! credentials and raises a [`WitnessAlarm`] when a later one does not
//! continue it: fewer records (the log was cut back and rebuilt), the same
//! count with another head (rewritten), another signing key, or a signature
//! that does not hold.
//!
//! Why on the device: whoever holds the server's host can truncate the chain
//! and the server's own checkpoint file together; a checkpoint kept on
//! every enrolled device is out of their reach, and the file is in the
//! format `irm-key-server audit verify --witness FILE` reads.
//!
//! The first checkpoint seen pins the audit signing key (trust on first
//! use, as the CA is pinned at enrollment). An alarm never stops a grant:
//! the person is told, and the evidence kept (the stored checkpoint is not
//! replaced by one that raised an alarm).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::audit::checkpoint_signature_holds;
use irm_core::protocol::AuditCheckpoint;

use crate::config::{read_small, write_private};
use crate::error::ClientError;

/// The witness file in the configuration directory.
pub const WITNESS_FILE: &str = "audit-witness.jsonl";

/// A checkpoint that does not continue the one this device holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessAlarm {
    /// The server's log now holds fewer records than this device saw it
    /// sign earlier: it was cut back (and perhaps rebuilt).
    WentBack {
        /// The count of the checkpoint this device holds.
        held: u64,
        /// The count the server signs now.
        now: u64,
    },
    /// The same number of records with another head: the log was rewritten.
    Diverged {
        /// The count both checkpoints name.
        count: u64,
    },
    /// Signed by another key than the one this device pinned: the server's
    /// audit key was replaced.
    KeyChanged,
    /// The signature does not hold under the pinned key.
    BadSignature,
    /// The witness file could not be read or written (the grant is fine).
    Unkept {
        /// What went wrong.
        problem: String,
    },
}

impl fmt::Display for WitnessAlarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WentBack { held, now } => write!(
                f,
                "the key server's audit log went back: this device saw it signed at {held} records and it is now signed at {now}"
            ),
            Self::Diverged { count } => write!(
                f,
                "the key server's audit log was rewritten: this device saw another head for its first {count} records"
            ),
            Self::KeyChanged => f.write_str(
                "the key server signs its audit log with another key than this device has seen",
            ),
            Self::BadSignature => {
                f.write_str("the key server sent an audit checkpoint whose signature does not hold")
            }
            Self::Unkept { problem } => {
                return write!(
                    f,
                    "this device could not keep the key server's audit checkpoint as a witness: {problem}; \
                     check that its configuration directory is writable (the grant itself is good)"
                );
            }
        }?;
        write!(
            f,
            "; tell your security team and keep {WITNESS_FILE} from this device's configuration \
             directory (`irm-key-server audit verify --witness FILE` checks the server against it)"
        )
    }
}

/// The checkpoint this device holds, if any.
pub fn witnessed(dir: &Path) -> Result<Option<AuditCheckpoint>, ClientError> {
    let path = dir.join(WITNESS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_small(&path)?;
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(line)
        .map(Some)
        .map_err(|e| ClientError::BadConfig {
            path,
            problem: format!(
                "it does not hold a signed audit checkpoint ({e}); give it to your security team, \
                 then move it away so that this device starts a new witness"
            ),
        })
}

/// [`observe`], with a failure to keep the witness reported as an alarm
/// rather than failing the grant that carried the checkpoint.
pub(crate) fn witness(dir: &Path, checkpoint: &AuditCheckpoint) -> Option<WitnessAlarm> {
    observe(dir, checkpoint).unwrap_or_else(|e| {
        Some(WitnessAlarm::Unkept {
            problem: e.to_string(),
        })
    })
}

/// Compares `checkpoint` with the one held in `dir`, keeps it if it is the
/// newer continuation, and says whether it raised an alarm.
pub(crate) fn observe(
    dir: &Path,
    checkpoint: &AuditCheckpoint,
) -> Result<Option<WitnessAlarm>, ClientError> {
    let held = witnessed(dir)?;
    let verdict = judge(held.as_ref(), checkpoint);
    if verdict == Ok(true) {
        let mut line = serde_json::to_vec(checkpoint).map_err(|e| {
            ClientError::io(format!("encoding {WITNESS_FILE}"), std::io::Error::other(e))
        })?;
        line.push(b'\n');
        write_private(dir, WITNESS_FILE, &line)?;
    }
    Ok(verdict.err())
}

/// `Ok(true)`: a newer continuation, to keep; `Ok(false)`: the one held.
fn judge(held: Option<&AuditCheckpoint>, new: &AuditCheckpoint) -> Result<bool, WitnessAlarm> {
    let pinned = held.map_or(new.signing_key.as_str(), |h| h.signing_key.as_str());
    if new.signing_key != pinned {
        return Err(WitnessAlarm::KeyChanged);
    }
    let key = URL_SAFE_NO_PAD
        .decode(pinned)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or(WitnessAlarm::BadSignature)?;
    if !checkpoint_signature_holds(new, &key) {
        return Err(WitnessAlarm::BadSignature);
    }
    let Some(held) = held else {
        return Ok(true);
    };
    if new.count < held.count {
        return Err(WitnessAlarm::WentBack {
            held: held.count,
            now: new.count,
        });
    }
    if new.count == held.count {
        if new.head_hash.eq_ignore_ascii_case(&held.head_hash) {
            return Ok(false);
        }
        return Err(WitnessAlarm::Diverged { count: new.count });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use irm_core::SigningSecretKey;
    use irm_core::audit::sign_checkpoint;

    use super::*;

    #[test]
    fn the_newest_checkpoint_is_kept_and_one_that_goes_back_or_forks_raises_an_alarm() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let key = SigningSecretKey::generate().unwrap();
        let at = |count: u64, head: u8| sign_checkpoint(&key, count, &[head; 32], count * 1000);

        assert_eq!(witnessed(dir).unwrap(), None);
        assert_eq!(
            observe(dir, &at(10, 1)).unwrap(),
            None,
            "the first pins the key"
        );
        assert_eq!(witnessed(dir).unwrap(), Some(at(10, 1)));
        assert_eq!(observe(dir, &at(10, 1)).unwrap(), None, "the same again");
        assert_eq!(observe(dir, &at(12, 2)).unwrap(), None, "a newer one");
        assert_eq!(witnessed(dir).unwrap(), Some(at(12, 2)));

        assert_eq!(
            observe(dir, &at(11, 3)).unwrap(),
            Some(WitnessAlarm::WentBack { held: 12, now: 11 })
        );
        assert_eq!(
            observe(dir, &at(12, 9)).unwrap(),
            Some(WitnessAlarm::Diverged { count: 12 })
        );
        // A rebuilt server with a fresh audit key, even ahead in count.
        let other = SigningSecretKey::generate().unwrap();
        let forged = sign_checkpoint(&other, 50, &[7; 32], 1);
        assert_eq!(
            observe(dir, &forged).unwrap(),
            Some(WitnessAlarm::KeyChanged)
        );
        // The pinned key named, but signed by another.
        let mut bad = at(60, 4);
        bad.signature = forged.signature.clone();
        assert_eq!(
            observe(dir, &bad).unwrap(),
            Some(WitnessAlarm::BadSignature)
        );

        // The evidence stays: alarms never replace the held checkpoint, and
        // the file is what `audit verify --witness` reads.
        assert_eq!(witnessed(dir).unwrap(), Some(at(12, 2)));
        let text = std::fs::read_to_string(dir.join(WITNESS_FILE)).unwrap();
        let (read, problems) = irm_core::audit::read_checkpoints(text.as_bytes()).unwrap();
        assert_eq!((read, problems), (vec![at(12, 2)], Vec::<String>::new()));
        let alarm = WitnessAlarm::WentBack { held: 12, now: 11 }.to_string();
        assert!(
            alarm.contains("went back") && alarm.contains("--witness"),
            "{alarm}"
        );
    }

    #[test]
    fn a_damaged_witness_file_is_an_error_that_says_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(WITNESS_FILE), "not json\n").unwrap();
        let err = witnessed(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains(WITNESS_FILE) || err.contains("audit checkpoint"),
            "{err}"
        );
    }
}
