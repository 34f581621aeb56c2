//! `irm admin unseal` and `irm admin shares ...`: a holder submitting their
//! share of the key server's root key from their own device, where the
//! unsealing stands, and filing a reissue of the shares
//! (docs/PROTOCOL.md §11.2).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use irm_client::{Session, Unsealing};
use irm_core::protocol::{SealMode, UnsealStatus};

use super::approval::show_filed;
use crate::cli::SharesCommand;
use crate::report::Out;
use crate::text::printable;

pub(super) fn shares(session: &Session, cmd: &SharesCommand, out: &Out) -> Result<()> {
    match cmd {
        SharesCommand::Status => {
            let status = session
                .unseal_status()
                .context("asking the key server where unsealing stands")?;
            out.show(&status, || describe(&status, session.user()))
        }
        SharesCommand::Reissue { threshold, holders } => {
            let answer = session
                .reissue_shares(*threshold, holders)
                .context("filing a reissue of the root key's shares")?;
            show_filed(session, &answer, out)?;
            if !out.json {
                eprintln!(
                    "once approved, the server splits a fresh root key: each holder's share is encrypted to their enrolled devices, and the old shares and the bootstrap share file open nothing"
                );
            }
            Ok(())
        }
    }
}

pub(super) fn unseal(session: &Session, out: &Out) -> Result<()> {
    let done = session
        .unseal()
        .context("submitting your share of the root key")?;
    let status = match &done {
        Unsealing::NotSealed(status) | Unsealing::Submitted(status) => status,
    };
    out.show(status, || {
        let mut text = String::new();
        if matches!(done, Unsealing::NotSealed(_)) {
            text.push_str("the key server is not sealed; nothing was sent\n");
        } else if status.sealed {
            let _ = writeln!(
                text,
                "share accepted: {} of {} submitted ({}); still sealed until {} more holder{} run `irm admin unseal`",
                status.submitted.len(),
                status.threshold,
                printable(&status.submitted.join(", ")),
                usize::from(status.threshold).saturating_sub(status.submitted.len()),
                if usize::from(status.threshold).saturating_sub(status.submitted.len()) == 1 {
                    ""
                } else {
                    "s"
                }
            );
        } else {
            text.push_str("share accepted: the key server is unsealed and serves\n");
        }
        text
    })
}

fn describe(status: &UnsealStatus, me: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "state       {}",
        if status.sealed { "sealed" } else { "unsealed" }
    );
    match status.mode {
        SealMode::Bootstrap => {
            let _ = writeln!(
                text,
                "mode        bootstrap: the root key's only share is a file on the server; reissue shares (irm admin shares reissue)"
            );
        }
        SealMode::Shares => {
            let _ = writeln!(
                text,
                "mode        shares: {} of {} holders unseal",
                status.threshold,
                status.holders.len()
            );
            let _ = writeln!(
                text,
                "holders     {}",
                printable(&status.holders.join(", "))
            );
            if status.sealed {
                let _ = writeln!(
                    text,
                    "submitted   {}",
                    printable(&status.submitted.join(", "))
                );
            }
        }
    }
    let _ = writeln!(
        text,
        "your share  {}",
        if status.share.is_some() {
            format!("{} holds one on this device", printable(me))
        } else {
            "none on this device".to_owned()
        }
    );
    text
}
