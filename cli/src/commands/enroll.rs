//! `irm enroll`: makes this computer a device of one person. The client
//! crate does the work (keys, proof of possession, credentials at rest);
//! this command gathers the arguments, the passphrase (asked twice on a
//! terminal) and reports the outcome.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use irm_client::{Enrollment, config_dir};
use serde::Serialize;

use crate::cli::EnrollArgs;
use crate::online::{self, Ask};
use crate::report::print_json;

/// A CA file is a certificate or two; anything larger is the wrong file.
const MAX_CA_LEN: u64 = 256 * 1024;

/// The `--json` success object; its shape is documented in `irm enroll --help`.
#[derive(Serialize)]
struct EnrollReport {
    ok: bool,
    user: String,
    device_id: String,
    device_name: String,
    server: String,
    roles: Vec<irm_core::protocol::Role>,
    groups: Vec<String>,
    config_dir: String,
}

pub(crate) fn run(args: &EnrollArgs) -> Result<()> {
    let dir = config_dir()?;
    let device_name = args.device_name.clone().unwrap_or_else(host_name);
    // The CA is fetched and pinned before the passphrase is asked for, so
    // a wrong or unreachable server costs the person no typing.
    let mut enrollment = if args.invitations.is_empty() {
        let (Some(server), Some(ca), Some(code)) = (&args.server, &args.ca, &args.code) else {
            return Err(crate::exit::Refusal::usage(
                "enrolling needs your invitation, or --server, --ca and --code",
            )
            .hint("irm enroll 'irm-invite:1?...' (the line your administrator gave you)")
            .into());
        };
        Enrollment {
            config_dir: dir.clone(),
            server_url: server.clone(),
            ca_pem: read_ca(ca)?,
            user: String::new(),
            code: code.clone(),
            device_name,
            replace: args.force,
        }
    } else {
        // The lines must make one code before anything is fetched, so that
        // the error says what is missing, not that a fetch failed.
        let whole = irm_core::invitation::Invitation::combine(&args.invitations).map_err(|e| {
            crate::exit::Refusal::usage(e.to_string())
                .hint("give the one invitation line, or both administrators' lines, each in quotes")
        })?;
        Enrollment::from_invitations(&args.invitations, dir.clone(), device_name, args.force)
            .with_context(|| format!("fetching the CA certificate of {}", whole.server_url))?
    };
    enrollment.user = args.user.clone().unwrap_or_default();
    let server = enrollment.server_url.clone();
    let passphrase = online::passphrase(&args.passphrase, Ask::Choose)?;
    let session = enrollment
        .run(&passphrase)
        .with_context(|| match &args.user {
            Some(user) => format!("enrolling {user} with {server}"),
            None => format!("enrolling with {server}"),
        })?;
    let config = session.config();
    if args.json {
        print_json(&EnrollReport {
            ok: true,
            user: config.user.clone(),
            device_id: config.device_id.clone(),
            device_name: config.device_name.clone(),
            server: config.server_url.clone(),
            roles: config.roles.clone(),
            groups: config.groups.clone(),
            config_dir: dir.display().to_string(),
        });
    } else {
        eprintln!(
            "enrolled {} as device {} ({}) with {}\n\
             credentials in {} (mode 0600, keys encrypted under your passphrase)",
            config.user,
            config.device_id,
            config.device_name,
            config.server_url,
            dir.display()
        );
    }
    Ok(())
}

/// The CA certificate given with `--ca`.
fn read_ca(path: &Path) -> Result<String> {
    let len = fs::metadata(path)
        .with_context(|| format!("reading the CA certificate {}", path.display()))?
        .len();
    if len > MAX_CA_LEN {
        return Err(crate::exit::Refusal::usage(format!(
            "{} is too large to be the key server's CA certificate",
            path.display()
        ))
        .hint("give the ca.pem file the key server created (DATA_DIR/tls/ca.pem), or enroll with your invitation")
        .into());
    }
    fs::read_to_string(path)
        .with_context(|| format!("reading the CA certificate {}", path.display()))
}

/// The host name, for a default device label.
fn host_name() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "device".to_owned())
}
