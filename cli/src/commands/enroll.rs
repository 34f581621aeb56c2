//! `irm enroll`: makes this computer a device of one person. The client
//! crate does the work (keys, proof of possession, credentials at rest);
//! this command gathers the arguments, the passphrase (asked twice on a
//! terminal) and reports the outcome.

use std::fs;

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
    let ca_len = fs::metadata(&args.ca)
        .with_context(|| format!("reading the CA certificate {}", args.ca.display()))?
        .len();
    if ca_len > MAX_CA_LEN {
        return Err(crate::exit::Refusal::usage(format!(
            "{} is too large to be the key server's CA certificate",
            args.ca.display()
        ))
        .hint("give the ca.pem file the key server created (DATA_DIR/tls/ca.pem)")
        .into());
    }
    let ca_pem = fs::read_to_string(&args.ca)
        .with_context(|| format!("reading the CA certificate {}", args.ca.display()))?;
    let passphrase = online::passphrase(&args.passphrase, Ask::Choose)?;
    let enrollment = Enrollment {
        config_dir: dir.clone(),
        server_url: args.server.clone(),
        ca_pem,
        user: args.user.clone().unwrap_or_default(),
        code: args.code.clone(),
        device_name: args.device_name.clone().unwrap_or_else(host_name),
        replace: args.force,
    };
    let session = enrollment
        .run(&passphrase)
        .with_context(|| match &args.user {
            Some(user) => format!("enrolling {user} with {}", args.server),
            None => format!("enrolling with {}", args.server),
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

/// The host name, for a default device label.
fn host_name() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "device".to_owned())
}
