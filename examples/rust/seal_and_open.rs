//! The call-centre example through the Rust API (irm-client and irm-core),
//! the same flow as `examples/c/seal_and_open.c` and
//! `examples/python/seal_and_open.py`: seal a CSV export of customer
//! records for a group, open it back, print the row count and the rights.
//!
//! ```sh
//! IRM_PASSPHRASE=... cargo run -p irm-client --example seal_and_open -- customers.csv customers.csv.irm @support
//! ```
//! The device must be enrolled (`irm enroll`); `IRM_CONFIG_DIR` chooses
//! its configuration directory as for the `irm` CLI.

use std::error::Error;
use std::fs::File;
use std::io::{BufWriter, Read};

use irm_client::{HeaderOptions, Passphrase, SealTarget, Session, config_dir};
use irm_core::protocol::UsageAction;
use irm_core::{
    Metadata, Opener, Policy, PolicyGrant, Recipient, Rights, SealedHeader, StreamOptions,
};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, sealed, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: seal_and_open CSV SEALED [RECIPIENTS]   (IRM_PASSPHRASE in the environment)"
        );
        std::process::exit(2);
    };
    let recipients = rest.first().map_or("@support", String::as_str);
    let passphrase = std::env::var("IRM_PASSPHRASE").map_err(|_| "set IRM_PASSPHRASE")?;
    let session = Session::unlock(&config_dir()?, &Passphrase::new(passphrase)?)?;

    // Seal online: the key server's current key, and the file registered so
    // that an administrator can revoke it, through the client crate.
    let policy = Policy::builder()
        .grant(PolicyGrant::new(
            Recipient::parse_list(recipients)?,
            Rights::VIEW | Rights::PROGRAM,
        )?)
        .classification(Some("customer records"))
        .build()?;
    let mut input = File::open(csv)?;
    let metadata = Metadata {
        file_name: Some("customers.csv".into()),
        media_type: Some("text/csv".into()),
        plaintext_len: Some(input.metadata()?.len()),
    };
    let pending =
        SealTarget::Online(&session).prepare(policy, metadata, HeaderOptions::default())?;
    let sealed_file = pending.seal(
        &mut input,
        BufWriter::new(File::create(sealed)?),
        StreamOptions::default(),
    )?;
    sealed_file
        .output
        .into_inner()
        .map_err(|e| e.into_error())?;
    println!(
        "sealed {csv} into {sealed} (file id {})",
        sealed_file.file_id
    );

    // Open it back: a grant for this person on this device, then the
    // plaintext, reported as a program read as libirm does.
    let mut input = File::open(sealed)?;
    let header = SealedHeader::read_from(&mut input)?;
    let grant = session.grant(&header, false)?;
    println!("rights: {}", grant.rights());
    if !grant.rights().contains(Rights::PROGRAM) {
        return Err("the grant does not include the program right".into());
    }
    session.report_event(&grant, UsageAction::ProgramRead, None)?;
    let mut plain = Vec::new();
    Opener::new(grant.verified_header()?, input, StreamOptions::default())
        .read_to_end(&mut plain)?;
    let rows = plain
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    println!("rows: {}", rows.saturating_sub(1));
    Ok(())
}
