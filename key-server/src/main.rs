//! The `irm-key-server` binary: parses the command line and dispatches to
//! the library (`init`, `serve`, `recover-code`, `audit verify`). Configuration merging,
//! initialisation and serving all live in the library.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use irm_key_server::clock::SystemClock;
use irm_key_server::config::{ServerArgs, ServerConfig};
use irm_key_server::datadir::{self, DataDirError, Layout};
use irm_key_server::{AppState, serve};

/// The IRM key server: enrollment, audited grants, revocation.
#[derive(Debug, Parser)]
#[command(name = "irm-key-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTPS; initialises an empty data directory first.
    Serve(ServerArgs),
    /// Initialise a data directory and print the bootstrap admin's enrollment code once.
    Init(ServerArgs),
    /// From a shell on the server, with the server stopped: a fresh one-time enrollment code for
    /// an administrator whose code was burnt by wrong guesses or lost. Only while the server has at
    /// most one active administrator (after that, another administrator issues codes); audited
    /// with the reason.
    #[command(after_help = "\
Example:
  irm-key-server recover-code --data-dir /srv/irm-data --user admin --reason 'ticket 4711: bootstrap code burnt'")]
    RecoverCode {
        /// The data directory.
        #[arg(long, env = "IRM_KS_DATA_DIR", value_hint = clap::ValueHint::DirPath)]
        data_dir: std::path::PathBuf,
        /// The PostgreSQL database, when the server keeps its state there.
        #[arg(
            long,
            env = "IRM_KS_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        database_url: Option<irm_key_server::store::DatabaseUrl>,
        /// The administrator.
        #[arg(long, default_value = "admin")]
        user: String,
        /// Why (a ticket id, for example); written to the audit record.
        #[arg(long)]
        reason: String,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the audit chain and signed checkpoints offline: of a data
    /// directory, or of an export written by `irm admin audit export`.
    #[command(after_help = "\
Examples:
  irm-key-server audit verify --data-dir /srv/irm-data
  IRM_KS_DATABASE_URL=postgresql://irm@db.example/irm irm-key-server audit verify --data-dir /srv/irm-data
  irm-key-server audit verify --export audit.jsonl --audit-key audit-signing.pub
  irm-key-server audit verify --export audit.jsonl --audit-key audit-signing.pub \\
      --checkpoints audit-checkpoints.jsonl
  irm-key-server audit verify --data-dir /srv/irm-data \\
      --witness /mnt/audit-sink/audit-checkpoints.jsonl --witness alice-audit-witness.jsonl

An export is trusted only through a checkpoint signed by the audit key given here (never the key
named inside the file): every record must chain from the one before, and the last must be
confirmed by a checkpoint. A data directory's chain must have checkpoints (a server writes one at
init and at every start), and only its tail younger than --grace-secs may be unconfirmed.
Checkpoints kept elsewhere (--witness: the off-host sink's file, a device's audit-witness.jsonl)
must be met too: a chain shorter than any of them was cut back. Exit status 1 when a problem is
found.")]
    Verify {
        /// The data directory (or a copy of it); with --export, only its audit-signing.pub is read.
        #[arg(long, env = "IRM_KS_DATA_DIR", value_hint = clap::ValueHint::DirPath)]
        data_dir: Option<std::path::PathBuf>,
        /// Verify this export (JSON Lines, docs/PROTOCOL.md §9.1; - for standard input) instead of a database.
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        export: Option<std::path::PathBuf>,
        /// The server's audit public key (DATA_DIR/audit-signing.pub) to check an export against.
        #[arg(long, value_name = "PUB", value_hint = clap::ValueHint::FilePath, requires = "export")]
        audit_key: Option<std::path::PathBuf>,
        /// The PostgreSQL database that holds the audit log, when the server keeps its
        /// state there (read only).
        #[arg(
            long,
            env = "IRM_KS_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL",
            conflicts_with = "export"
        )]
        database_url: Option<irm_key_server::store::DatabaseUrl>,
        /// Signed checkpoints kept apart [default without --export: DATA_DIR/audit-checkpoints.jsonl].
        #[arg(long, value_hint = clap::ValueHint::FilePath)]
        checkpoints: Option<std::path::PathBuf>,
        /// More signed checkpoints the chain must meet, kept off the server: the sink's
        /// audit-checkpoints.jsonl, a device's audit-witness.jsonl (repeatable).
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        witness: Vec<std::path::PathBuf>,
        /// Records newer than the last checkpoint are accepted while they are at most this many
        /// seconds older than the newest record (a server checkpoints every minute by default).
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 120,
            conflicts_with = "export"
        )]
        grace_secs: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("irm-key-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_bootstrap(report: &datadir::InitReport, config: &ServerConfig) {
    // Printed once, on stdout only; the server keeps just its hash.
    let data_dir = &config.settings.data_dir;
    let ca_path = Layout::new(data_dir).ca_pem();
    println!("Initialised {}.", data_dir.display());
    println!("Key server key: {}", report.key_id);
    println!("CA certificate for clients: {}", ca_path.display());
    println!(
        "Bootstrap administrator {:?}: one-time enrollment code {} (valid 24 hours, shown only now)",
        report.admin, report.admin_code
    );
    let url = config.settings.public_url_at(config.listen.port());
    match invitation(&url, &ca_path, &report.admin_code) {
        Ok(line) => {
            let file = Layout::new(data_dir).bootstrap_invitation();
            println!(
                "Invitation (irm enroll 'INVITATION', or paste it into the viewer; also in {}, mode 0600: delete it once the administrator has enrolled):\n{line}",
                file.display()
            );
            let written = irm_key_server::secret_file::write_secret_file(
                &file,
                format!("{line}\n").as_bytes(),
            );
            if let Err(e) = written {
                eprintln!("irm-key-server: {}: {e}", file.display());
            }
        }
        Err(why) => eprintln!(
            "irm-key-server: no invitation line: {why}; enroll with --server {url} --ca {} --code CODE",
            ca_path.display()
        ),
    }
}

/// The bootstrap administrator's one-line invitation (PROTOCOL.md §3.4).
fn invitation(url: &str, ca_path: &std::path::Path, code: &str) -> anyhow::Result<String> {
    use irm_core::invitation::{CodePart, Invitation, ca_fingerprint};
    let pem = std::fs::read_to_string(ca_path)
        .with_context(|| format!("reading {}", ca_path.display()))?;
    let fingerprint = ca_fingerprint(&pem)
        .with_context(|| format!("{} holds no certificate", ca_path.display()))?;
    Ok(Invitation::new(url, fingerprint, code, CodePart::Whole)?.to_string())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => {
            let config = args.resolve()?;
            let dir = &config.settings.data_dir;
            let report = datadir::init_with(
                dir,
                config.settings.database_url.as_ref(),
                &config.hostnames,
                &config.bootstrap_admin,
                &SystemClock,
            )
            .with_context(|| format!("initialising {}", dir.display()))?;
            print_bootstrap(&report, &config);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let config = args.resolve()?;
            if config.settings.public_url.is_none() && config.settings.public_host == "localhost" {
                eprintln!(
                    "irm-key-server: warning: listening on every address, but invitations and sealed files will name https://localhost:{}, which only this host reaches; give --public-url https://NAME:PORT (or --hostname NAME at the first start)",
                    config.listen.port()
                );
            }
            let dir = config.settings.data_dir.clone();
            match datadir::init_with(
                &dir,
                config.settings.database_url.as_ref(),
                &config.hostnames,
                &config.bootstrap_admin,
                &SystemClock,
            ) {
                Ok(report) => print_bootstrap(&report, &config),
                Err(DataDirError::AlreadyInitialised(_)) => {}
                Err(e) => return Err(e).with_context(|| format!("initialising {}", dir.display())),
            }
            let state = AppState::open(config.settings, Arc::new(SystemClock))
                .with_context(|| format!("opening {}", dir.display()))?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("listening on {}", config.listen))?;
                let shutdown = shutdown_signal().context("installing the signal handlers")?;
                serve(listener, state, shutdown).await.context("serving")
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::RecoverCode {
            data_dir,
            database_url,
            user,
            reason,
        } => {
            let database_url = database_url.and_then(irm_key_server::store::DatabaseUrl::non_empty);
            let issued = datadir::recover_admin_code(
                &data_dir,
                database_url.as_ref(),
                &user,
                &reason,
                &SystemClock,
            )
            .with_context(|| format!("issuing a code for {user:?} in {}", data_dir.display()))?;
            // Printed once, on stdout only; the server keeps just its hash.
            println!(
                "Administrator {:?}: one-time enrollment code {} (valid 24 hours, shown only now; recorded in the audit log)",
                issued.user, issued.code
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    data_dir,
                    export,
                    audit_key,
                    database_url,
                    checkpoints,
                    witness,
                    grace_secs,
                    json,
                },
        } => {
            let witnessed = read_witnesses(&witness)?;
            let report = match (export, data_dir) {
                (Some(export), data_dir) => {
                    let trusted = match (audit_key, data_dir) {
                        (Some(path), _) => datadir::read_audit_public(&path)
                            .with_context(|| format!("reading the audit key {}", path.display()))?,
                        (None, Some(dir)) => datadir::load_audit_public(&Layout::new(&dir))
                            .with_context(|| {
                                format!("reading the audit key of {}", dir.display())
                            })?,
                        (None, None) => anyhow::bail!(
                            "an export is checked against the server's audit public key: give --audit-key FILE (DATA_DIR/audit-signing.pub) or --data-dir DIR"
                        ),
                    };
                    verify_export_file(&export, trusted, checkpoints.as_deref(), witnessed)?
                }
                (None, Some(dir)) => {
                    let database_url =
                        database_url.and_then(irm_key_server::store::DatabaseUrl::non_empty);
                    irm_key_server::state::verify_offline(
                        &dir,
                        database_url.as_ref(),
                        checkpoints.as_deref(),
                        witnessed,
                        std::time::Duration::from_secs(grace_secs),
                    )
                    .with_context(|| match &database_url {
                        // Never the URL itself: it may hold a password.
                        Some(_) => format!(
                            "verifying the audit log in PostgreSQL against {}",
                            dir.display()
                        ),
                        None => format!("verifying the audit log in {}", dir.display()),
                    })?
                }
                (None, None) => anyhow::bail!(
                    "nothing to verify: give --data-dir DIR (a database) or --export FILE (an export)"
                ),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "audit log: {} records, {} checkpoints: {}",
                    report.records,
                    report.checkpoints,
                    if report.ok { "OK" } else { "PROBLEMS FOUND" }
                );
                for problem in &report.problems {
                    println!("  - {problem}");
                }
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// `audit verify --export`: the export (or standard input) against the
/// trusted key and, if given, a checkpoint file kept apart.
fn verify_export_file(
    export: &std::path::Path,
    trusted: [u8; 32],
    checkpoints: Option<&std::path::Path>,
    witnessed: Witnessed,
) -> anyhow::Result<irm_core::protocol::AuditVerifyReport> {
    let (mut extra, mut unreadable) = match checkpoints {
        Some(path) => irm_key_server::audit::read_checkpoints(path)
            .with_context(|| format!("reading the checkpoints {}", path.display()))?,
        None => (Vec::new(), Vec::new()),
    };
    extra.extend(witnessed.0);
    unreadable.extend(witnessed.1);
    if export.as_os_str() == "-" {
        irm_core::audit::verify_export(std::io::stdin().lock(), trusted, extra, unreadable)
            .context("reading the export from standard input")
    } else {
        let file = std::fs::File::open(export)
            .with_context(|| format!("opening the export {}", export.display()))?;
        irm_core::audit::verify_export(std::io::BufReader::new(file), trusted, extra, unreadable)
            .with_context(|| format!("reading the export {}", export.display()))
    }
}

/// Checkpoints read from `--witness` files, and a problem line for each
/// line that did not parse.
type Witnessed = (Vec<irm_core::protocol::AuditCheckpoint>, Vec<String>);

/// Reads every `--witness` file; one that cannot be read is an error, not
/// an empty witness (it was named on purpose).
fn read_witnesses(paths: &[std::path::PathBuf]) -> anyhow::Result<Witnessed> {
    let mut all = (Vec::new(), Vec::new());
    for path in paths {
        // The server's reader takes a missing file for an empty one.
        if !path.is_file() {
            anyhow::bail!(
                "the witness {} is not a file: give the sink's audit-checkpoints.jsonl or a device's audit-witness.jsonl",
                path.display()
            );
        }
        let (checkpoints, unreadable) = irm_key_server::audit::read_checkpoints(path)
            .with_context(|| format!("reading the witness {}", path.display()))?;
        all.0.extend(checkpoints);
        all.1.extend(
            unreadable
                .into_iter()
                .map(|problem| format!("{}: {problem}", path.display())),
        );
    }
    Ok(all)
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed before this
/// returns, that is before the server says it listens: installed on the
/// future's first poll instead, a SIGTERM sent as soon as the server said so
/// could still find the default action and kill it uncleanly.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutdown signal received");
    })
}
