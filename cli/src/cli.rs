//! The command line: clap types for every subcommand, and the parsers that
//! turn argument strings into domain values (rights, recipients, grants,
//! times, durations, chunk sizes) so that a bad value is a usage error (exit
//! 2) reported by clap before any work starts.
//!
//! What each command does with its arguments lives in `commands/`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args, Parser, Subcommand, ValueHint};
use irm_core::protocol::Role;
use irm_core::{DEFAULT_CHUNK_LEN, MAX_CHUNK_LEN, MIN_CHUNK_LEN, PolicyGrant, Recipient, Rights};

use crate::exit::exit_codes_help;

/// Seal, open, inspect and recover customer data files protected by the IRM key server.
///
/// Online commands (enroll, seal without --kas-public-key, info, open, admin) use the
/// credentials in $IRM_CONFIG_DIR (default ~/.config/irm) and the passphrase from
/// --passphrase-file, $IRM_PASSPHRASE or a prompt.
#[derive(Debug, Parser)]
#[command(name = "irm", version, after_help = exit_codes_help())]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Enroll this computer as a device of yours with the key server (once per person and computer).
    Enroll(EnrollArgs),
    /// Seal a file: encrypt it under a policy so that only the key server can release it.
    Seal(SealArgs),
    /// Ask the key server what you may do with a sealed file: your rights, lease and time left.
    Info(InfoArgs),
    /// Decrypt a sealed file to plaintext through the key server; needs the `export` right.
    Open(OpenArgs),
    /// Show a sealed file's header and policy; needs no key, asks no server, decrypts nothing.
    Inspect(InspectArgs),
    /// Ask administrators to let you take a file's plaintext out (`irm open -o`) once.
    Export(ExportArgs),
    /// Administer the key server: users, groups, devices, files, keys and the audit log.
    Admin(AdminArgs),
    /// Check an audit export offline, without the key server (for reviewers and auditors).
    Audit(AuditArgs),
    /// Name the export a leaked customer list came from (its canaries), or the grant a watermark
    /// id names; admin or auditor, with --reason.
    Trace(TraceArgs),
    /// Generate a key server key pair (KEY and KEY.pub) for offline sealing and tests.
    Keygen(KeygenArgs),
    /// Break-glass recovery: decrypt a sealed file with the key server's own private key.
    ///
    /// For disaster recovery, tests and benchmarks only. Whoever holds the key
    /// server's private key can read every file sealed to it, whatever the
    /// policy says. Staff open files through the key server with `irm open`,
    /// which checks the policy and records an audit entry.
    Recover(RecoverArgs),
}

impl Command {
    /// Whether errors must be reported as a JSON object on stdout.
    pub(crate) fn json(&self) -> bool {
        match self {
            Command::Keygen(_) => false,
            Command::Enroll(args) => args.json,
            Command::Seal(args) => args.json,
            Command::Info(args) => args.json,
            Command::Open(args) => args.json,
            Command::Inspect(args) => args.json,
            Command::Export(args) => args.json,
            Command::Admin(args) => args.json,
            Command::Audit(args) => match &args.command {
                OfflineAuditCommand::Verify(verify) => verify.json,
            },
            Command::Recover(args) => args.json,
            Command::Trace(args) => args.json,
        }
    }
}

/// Where the passphrase that unlocks this device's keys comes from.
#[derive(Debug, Args)]
pub(crate) struct PassphraseArg {
    /// Read the passphrase from the first line of FILE [default: $IRM_PASSPHRASE, else a prompt on
    /// the terminal].
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, global = true)]
    pub(crate) passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Your administrator gives you an invitation: one line that carries the key server's URL, the
fingerprint of its CA certificate and your one-time code. Where two administrators each hand
you half of the code, each half comes as its own invitation line: give both. You choose a
passphrase (at least 8 characters): it encrypts this device's keys in $IRM_CONFIG_DIR (default
~/.config/irm), and every online command asks for it.

Examples:
  irm enroll 'irm-invite:1?server=https://kas.example:8443&ca=3f2a...&code=ABCDE-FGHIJ-KLMNO-PQRST'
  irm enroll 'irm-invite:1?...&code=ABCDE-FGHIJ&part=1/2' 'irm-invite:1?...&code=KLMNO-PQRST&part=2/2'
  irm enroll --server https://kas.example:8443 --ca ca.pem --code ABCDE-FGHIJ-KLMNO-PQRST

With an invitation, the CA certificate is fetched from the server and used only if its SHA-256
fingerprint is the one in the invitation; no ca.pem is handed around.

The code says who you are; --user is only a check that it is the account you expect.

With --json, success prints one object on stdout:
  {\"ok\": true, \"user\": \"alice\", \"device_id\": \"<32 hex>\", \"device_name\": \"...\", \"server\": \"https://...\",
   \"roles\": [\"user\"], \"groups\": [\"support\"], \"config_dir\": \"...\"}")]
pub(crate) struct EnrollArgs {
    /// The invitation from your administrator (irm-invite:1?...), or the two halves' invitations.
    #[arg(value_name = "INVITATION", num_args = 0..=2, value_parser = parse_invitation,
          conflicts_with_all = ["server", "ca", "code"])]
    pub(crate) invitations: Vec<irm_core::invitation::Invitation>,

    /// The key server's URL, such as https://kas.example:8443 (without an invitation).
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url, value_parser = parse_kas_url,
          required_unless_present = "invitations", requires_all = ["ca", "code"])]
    pub(crate) server: Option<String>,

    /// The key server's CA certificate (PEM), without an invitation; the only certificate this
    /// device will trust for it.
    #[arg(long, value_name = "CA.pem", value_hint = ValueHint::FilePath)]
    pub(crate) ca: Option<PathBuf>,

    /// Your user name on the key server [default: the user the code was issued for].
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,

    /// The one-time enrollment code from your administrator (without an invitation).
    #[arg(long, value_name = "CODE")]
    pub(crate) code: Option<String>,

    /// A label for this device [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub(crate) device_name: Option<String>,

    /// Replace this computer's existing enrollment (its old device can then no longer open files).
    #[arg(long)]
    pub(crate) force: bool,

    #[command(flatten)]
    pub(crate) passphrase: PassphraseArg,

    /// Print the result (or the error) as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Asks the key server for a grant, as opening the file would (the request is audited), and shows
what it allows. `irm inspect` shows the header alone, offline.

With --json, success prints one object on stdout (times are RFC 3339 UTC or null):
  {\"ok\": true, \"path\": \"calls.csv.irm\", \"file_id\": \"<32 hex>\", \"user\": \"alice\",
   \"device_id\": \"<32 hex>\", \"grant_id\": \"<32 hex>\", \"rights\": [\"view\", \"export\"],
   \"watermark_required\": true, \"lease_secs\": 600, \"time_left_secs\": 599,
   \"lease_expires\": \"...\", \"lease_expires_unix\": 1767605400, \"not_after\": \"...\" | null,
   \"not_after_unix\": 1800662400 | null, \"file_name\": \"calls.csv\" | null, \"media_type\": \"text/csv\" | null,
   \"server\": \"https://kas.example:8443\", \"notices\": [{\"kind\": \"new_device\", \"at\": 1767605000,
   \"device_id\": \"<32 hex>\", \"device_name\": \"laptop\", \"code_origin\": \"request=... requested_by=... approved_by=...\"}],
   \"audit_alarm\": null | \"the key server's audit log went back: ...\"}
\"notices\" says what the key server told you with this grant, each notice once: a device enrolled for
your account that you do not recognise means someone else can act as you; tell your security team.
\"audit_alarm\" is set when the server's signed audit checkpoint is behind, or other than, the newest
this device has kept (audit-witness.jsonl in the configuration directory): its log was cut back or
rewritten; tell your security team and keep that file.
A refusal exits 3 and prints {\"ok\": false, \"kind\": \"denied\", \"exit_code\": 3, \"reason\": \"file_revoked\",
\"message\": \"...\", \"hint\": \"...\"}.")]
pub(crate) struct InfoArgs {
    /// The sealed file.
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) input: PathBuf,

    #[command(flatten)]
    pub(crate) passphrase: PassphraseArg,

    /// Print one JSON object instead of text; see below.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Taking plaintext out needs administrators' approval on servers that require it (new servers do:
two administrators other than you). `irm export request FILE --reason TICKET` files the request
and prints its id; once approved (`irm admin request approve ID`, by each administrator), this
device may run `irm open FILE -o OUT` once within an hour. Without it `irm open -o` exits 3 with
export_approval_required. Copying or printing more rows than the server's threshold (default 100)
in the viewer or through libirm is approved the same way: `irm export request FILE --for copy`
(or `--for print`), spent by the next such copy (or print) from this device.")]
pub(crate) struct ExportArgs {
    #[command(subcommand)]
    pub(crate) command: ExportCommand,

    #[command(flatten)]
    pub(crate) passphrase: PassphraseArg,

    /// Print the result (or the error) as JSON on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExportCommand {
    /// File a request to take FILE out once from this device.
    Request {
        /// The sealed file (or its 32-hex-digit file id).
        #[arg(value_name = "FILE")]
        file: String,
        /// Why (a ticket id): shown to the approvers and recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// How it is to be taken out: export (a file), copy or print (more rows than the
        /// server's threshold), program (reads through libirm, where administrators gate them).
        #[arg(long = "for", value_name = "HOW", default_value = "export", value_parser = parse_take_out)]
        how: irm_core::protocol::TakeOut,
    },
}

fn parse_take_out(text: &str) -> Result<irm_core::protocol::TakeOut, String> {
    irm_core::protocol::TakeOut::ALL
        .into_iter()
        .find(|how| how.as_str() == text)
        .ok_or_else(|| "one of export, copy, print, program".to_owned())
}

#[derive(Debug, Args)]
#[command(after_help = "\
Writes the plaintext only if the key server grants you the `export` right; the export is
reported to the key server (and audited) before any plaintext is released, and where the server
requires approval for take-out it spends this device's approved export (`irm export request`).
Otherwise exits 3 with the reason (right_not_granted, export_approval_required, file_revoked, ...). The output appears only after the whole
file has been decrypted and every chunk has verified, with mode 0600. While it decrypts, the
command listens for the key server's changes to the file, to you and to this device; if the server
then refuses the file (revoked, suspended, restricted), it stops, removes the partial output and
exits 3 with the reason, before any plaintext is released (standard output excepted: -o - has
already written what it decrypted).

An approved export of a customer list (CSV or TSV) carries canary rows: invented customers the
key server issued for this export alone, at random places among the real rows, in the file's own
columns and encoding. If the list leaks, `irm trace` names this export, you and the approvers.

With --json, success prints one object on stdout:
  {\"ok\": true, \"input\": \"calls.csv.irm\", \"output\": \"calls.csv\" | null, \"file_id\": \"<32 hex>\",
   \"file_name\": \"calls.csv\" | null, \"media_type\": \"text/csv\" | null, \"plaintext_len\": 1234,
   \"grant_id\": \"<32 hex>\", \"canaries\": 0}")]
pub(crate) struct OpenArgs {
    /// The sealed file.
    #[arg(value_name = "IN", value_hint = ValueHint::FilePath)]
    pub(crate) input: PathBuf,

    /// Where to write the plaintext, or `-` for standard output.
    #[arg(short, long, value_name = "OUT", value_hint = ValueHint::FilePath)]
    pub(crate) output: PathBuf,

    #[command(flatten)]
    pub(crate) threads: ThreadsArg,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub(crate) force: bool,

    /// Print nothing on stderr on success.
    #[arg(short, long)]
    pub(crate) quiet: bool,

    #[command(flatten)]
    pub(crate) passphrase: PassphraseArg,

    /// Print the result (or the error) as one JSON object on stdout; needs -o FILE.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `irm trace`.
#[derive(Debug, Args)]
#[command(after_help = "\
An approved export of a CSV customer list (irm open -o, the viewer's Export) carries canary rows:
invented customers whose phone numbers and e-mail addresses the key server issued for that export
alone. irm trace reads a leaked list (CSV or TSV in UTF-8, CP932 or UTF-16, an XLSX or XLS
workbook, or text pasted from one; cut to a few rows, reordered or re-encoded), finds the phone numbers and e-mail addresses in it, and
asks the key server which export's canaries are among them: the export, the person, the
device, the approvers and the time. Only the contact values are sent, never the rest of the
file. --watermark names the grant whose watermark shows that id (read off a photo of a screen
or a print: case, hyphens and O/0, I/L/1 do not matter).

Both lookups need the admin or auditor role and a reason, and are audited (admin.trace.canaries,
admin.trace.watermark) with what they found.

Examples:
  irm trace leaked.csv --reason 'INC-77: list posted on a forum'
  pbpaste | irm trace - --reason INC-77
  irm trace --watermark W7K2-9QXM-4HTD --reason 'INC-78: photo of a screen'

Exit status: 0 when an export (or grant) is named, 8 when none is (\"no canaries found\": the
file carries no canary of any export, or they were removed), and the usual codes otherwise.
With --json, the key server's answer: {\"checked\": N, \"exports\": [{\"export_id\", \"user\", \"device_id\",
\"approvers\", \"exported_at\", \"matched\", ...}]} or {\"watermark_id\": ID, \"grants\": [{\"grant_id\",
\"user\", \"device_id\", \"issued_at\", ...}]}; nothing found is {\"ok\": false, \"kind\": \"not_found\",
\"exit_code\": 8, \"message\": \"no canaries found: ...\", ...}.")]
pub(crate) struct TraceArgs {
    /// The leaked list (CSV, TSV, XLSX or text), or `-` for standard input.
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath,
          required_unless_present = "watermark", conflicts_with = "watermark")]
    pub(crate) input: Option<PathBuf>,

    /// Look up the grant of this watermark id instead (such as W7K2-9QXM-4HTD).
    #[arg(long, value_name = "ID")]
    pub(crate) watermark: Option<String>,

    /// Why you look (a ticket id); required, recorded in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: Option<String>,

    #[command(flatten)]
    pub(crate) passphrase: PassphraseArg,

    /// Print the answer (or the error) as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Every administrative call is signed by your own device and audited; it needs the admin role
(audit reads: admin or auditor; keys and checkpoints: admin or maintainer). With --json each command prints its result as JSON on stdout
(the key server's objects, or {\"ok\": true} for calls that return nothing); a refusal prints
{\"ok\": false, \"kind\": \"denied\", \"exit_code\": 3, \"reason\": \"role_required\", \"message\": \"...\", ...}.")]
pub(crate) struct AdminArgs {
    #[command(subcommand)]
    pub(crate) object: AdminObject,

    #[command(flatten)]
    pub(crate) passphrase: PassphraseArg,

    /// Print the result (or the error) as JSON on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Why you act (a ticket id, a sentence): recorded in the audit log
    /// with the call, and shown to the administrators asked to approve it.
    #[arg(long, global = true, value_name = "TEXT")]
    pub(crate) reason: Option<String>,

    /// Also draw an enrollment invitation as a QR code on the terminal (user add, user code,
    /// request approve).
    #[arg(long, global = true)]
    pub(crate) qr: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminObject {
    /// People: add, list, suspend, restore, new enrollment code.
    #[command(subcommand)]
    User(UserCommand),
    /// Groups (`@support` in policies): add, add or remove members.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Enrolled devices: list, revoke.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Files the key server knows: list, revoke, restore, expire, restrict rights.
    #[command(subcommand)]
    File(FileCommand),
    /// The key server's keys: list, rotate, retire.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The audit log: recent records, chain verification, export, signed checkpoints.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Requests waiting for approval: list, show, approve, deny.
    #[command(subcommand)]
    Request(RequestCommand),
    /// Detection alerts: list, show, acknowledge.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// How many approvals each kind of request needs: list, set.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Detection rules (bulk access, repeated refusals): list, set; loosening one is a request.
    #[command(subcommand)]
    Detection(DetectionCommand),
    /// Working hours by group, for the off_hours rule: list, set; widening them is a request.
    #[command(subcommand)]
    Hours(HoursCommand),
    /// The break-glass code for emergencies when approvers are away: issue.
    #[command(subcommand)]
    BreakGlass(BreakGlassCommand),
    /// The shares of the key server's root key: status, reissue.
    #[command(subcommand)]
    Shares(SharesCommand),
    /// Account review: dormant people and devices, privileged roles, who receives what.
    Review(ReviewArgs),
    /// Submit your share of the root key from this device, so that a
    /// restarted key server can unseal its keys (PROTOCOL.md §11.2).
    Unseal,
}

#[derive(Debug, Subcommand)]
#[command(after_help = "\
The break-glass code lets one person stand in for missing approvers in an emergency: with it,
`irm admin request approve ID --break-glass` completes a request (not a rule change, a share
reissue or a new break-glass code) at once. It works once. Its use is audited
(admin.request.break_glass), told to every administrator at their next grant, and reported by
/healthz for a week. Issuing it is itself approved, in two halves: the two administrators seal both
halves in one envelope together and hand it to whoever keeps it (a security officer's safe). A new
code replaces the old; issue one after every use and at least once a year.")]
pub(crate) enum BreakGlassCommand {
    /// File a request for a new break-glass code; prints your half on stdout (the approver gets the other).
    Issue,
}

#[derive(Debug, Subcommand)]
#[command(after_help = "\
The key server's private keys are sealed under a root key that exists on disk only as shares. A new
server keeps its one share in a file (the bootstrap mode, which it warns about at every start). Once
two administrators are enrolled, split the root key among the people who run the server: each share
is encrypted to its holder's enrolled devices, and after a restart THRESHOLD holders each run
`irm admin unseal` before the server serves again. Reissuing is itself approved, makes a fresh root
key, and leaves old shares (and the bootstrap file) useless: run it again when a holder leaves.")]
pub(crate) enum SharesCommand {
    /// Whether the server is sealed, the threshold, the holders, and whether you hold a share.
    Status,
    /// Split a fresh root key among holders (filed for approval; done when approved).
    Reissue {
        /// Shares needed to unseal (at least 2: no one unseals alone).
        #[arg(long, value_name = "K")]
        threshold: u8,
        /// The holders: administrators or maintainers with an enrolled device, comma-separated.
        #[arg(
            long,
            value_name = "NAME,NAME,...",
            value_delimiter = ',',
            required = true
        )]
        holders: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
#[command(after_help = "\
An action that widens who can read (a new user, an enrollment code, a group member, restoring a user
or a file, an approval rule) is filed as a request; it runs when enough administrators other than
the requester approve it. An approval signs the action's hash, so a request cannot change after.")]
pub(crate) enum RequestCommand {
    /// List requests, newest first.
    List {
        /// Only the requests still waiting for approvals.
        #[arg(long)]
        pending: bool,
        /// Print only the request ids, one per line (for scripts: `req=$(irm admin request list
        /// --pending --quiet)`).
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Show one request: its action, canonical hash and approvals.
    Show {
        /// The request id (32 hex digits).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Approve a request (not your own); runs it when it has enough approvals.
    Approve {
        /// The request id.
        #[arg(value_name = "ID")]
        id: String,
        /// The action hash you were shown (`request show`); refused if the request now hashes otherwise.
        #[arg(long, value_name = "HEX")]
        hash: Option<String>,
        /// Emergency only: approve with the break-glass code from the sealed envelope, read from
        /// the terminal (or IRM_BREAK_GLASS_CODE). It completes the request at once, works once,
        /// and every administrator is told. Admins or the maintainer on call; never the requester.
        #[arg(long)]
        break_glass: bool,
    },
    /// Deny a pending request (yours: withdraw it).
    Deny {
        /// The request id.
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RuleCommand {
    /// Each action and the approvals it needs.
    List,
    /// Change the approvals an action needs (1 to 9); itself a request.
    Set {
        /// The action, as `rule list` names it (admin.group.add_member, ...).
        #[arg(value_name = "ACTION")]
        action: String,
        /// Approvals from administrators other than the requester.
        #[arg(value_name = "N")]
        required: u8,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a person: files a request and prints an invitation with your half of their
    /// enrollment code on stdout (a new server's first administrator creating the second gets
    /// the whole code at once).
    Add {
        /// Login name (1 to 64 of a-z A-Z 0-9 . _ -).
        #[arg(value_name = "NAME")]
        name: String,
        /// Full name, for watermarks and the audit log [default: NAME].
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// A role: user, admin, auditor or maintainer; repeat for several [default: user].
        #[arg(long = "role", value_name = "ROLE", value_parser = parse_role)]
        roles: Vec<Role>,
        /// A group to join (with or without the @); repeat for several.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// List every user.
    List,
    /// Suspend a user: every later grant and call is refused (user_suspended).
    Suspend {
        /// The user.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Lift a suspension (filed for approval).
    Restore {
        /// The user.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Release a person whose grants a detection rule holds (step_up_required), once their
    /// activity is reviewed (filed for approval).
    Release {
        /// The user.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Request a new enrollment code (the previous one stops working once it is approved);
    /// prints an invitation with your half on stdout, the approver receives the other.
    Code {
        /// The user.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a group.
    Add {
        /// The group's name (a leading @ is dropped).
        #[arg(value_name = "GROUP")]
        name: String,
    },
    /// Add a user to a group (filed for approval).
    MemberAdd {
        /// The group.
        #[arg(value_name = "GROUP")]
        group: String,
        /// The user.
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Remove a user from a group.
    MemberRemove {
        /// The group.
        #[arg(value_name = "GROUP")]
        group: String,
        /// The user.
        #[arg(value_name = "USER")]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// List every enrolled device.
    List,
    /// Revoke a device: it gets nothing from now on (device_revoked).
    Revoke {
        /// The device id (32 hex digits, from `irm admin device list`).
        #[arg(value_name = "DEVICE_ID")]
        device_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum FileCommand {
    /// List the files the key server knows.
    List,
    /// Revoke a file: every later grant is refused (file_revoked).
    Revoke {
        /// The file: its id (32 hex digits, from `irm inspect` or `irm admin file list`) or the sealed file itself.
        #[arg(value_name = "ID|FILE")]
        file_id: String,
        /// Act on an id the key server has never seen (a file sealed offline that nobody opened yet).
        #[arg(long)]
        force: bool,
    },
    /// Undo a revocation, an administrator's expiry and restrictions (filed for approval).
    Restore {
        /// The file: its id or the sealed file itself.
        #[arg(value_name = "ID|FILE")]
        file_id: String,
        /// Act on an id the key server has never seen (a file sealed offline that nobody opened yet).
        #[arg(long)]
        force: bool,
    },
    /// Expire a file now (file_expired).
    Expire {
        /// The file: its id or the sealed file itself.
        #[arg(value_name = "ID|FILE")]
        file_id: String,
        /// Act on an id the key server has never seen (a file sealed offline that nobody opened yet).
        #[arg(long)]
        force: bool,
    },
    /// Take rights away from every grant of a file, such as --remove print.
    Restrict {
        /// The file: its id or the sealed file itself.
        #[arg(value_name = "ID|FILE")]
        file_id: String,
        /// Act on an id the key server has never seen (a file sealed offline that nobody opened yet).
        #[arg(long)]
        force: bool,
        /// The rights to remove, comma-separated (view, print, copy, export, program).
        #[arg(long, value_name = "RIGHTS", value_parser = parse_rights)]
        remove: Rights,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// List the key server's keys and their states.
    List,
    /// Make a new current key; files sealed to older keys still open.
    Rotate,
    /// Retire a key: every file sealed to it is refused from now on (key_retired).
    Retire {
        /// The key id (32 hex digits, from `irm admin key list`).
        #[arg(value_name = "KEY_ID")]
        key_id: String,
    },
}

#[derive(Debug, Subcommand)]
#[command(after_help = "\
An alert is a detection rule's firing (docs/PROTOCOL.md §12.1): its id is the sequence number of
its detect.RULE audit record. Acknowledging one records who looked at it and why (audited as
admin.alert.ack), once; it does not lift a hold or a suspension the rule set: that takes
`irm admin user release NAME` or `irm admin user restore NAME`, approved by a second
administrator.

  irm admin alert list --open
  irm admin alert show 1234
  irm admin alert ack 1234 --reason \"INC-42: reviewed with the team lead\"")]
pub(crate) enum AlertCommand {
    /// List the alerts, oldest first.
    List {
        /// Only those nobody has acknowledged yet.
        #[arg(long)]
        open: bool,
    },
    /// Show one alert.
    Show {
        /// The alert's id (its audit record's sequence number).
        #[arg(value_name = "ID")]
        id: u64,
    },
    /// Acknowledge an alert (needs --reason); a hold or suspension it set stays.
    Ack {
        /// The alert's id.
        #[arg(value_name = "ID")]
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DetectionCommand {
    /// Each rule and its setting.
    List,
    /// Change a rule: tightening takes effect at once; loosening it (a higher limit, a shorter
    /// window, a weaker action, --off) is filed for another administrator's approval.
    #[command(after_help = "\
Examples:
  irm admin detection set bulk_files --limit 20 --window 300 --action suspend --reason 'SEC-12'
  irm admin detection set denials --off --reason 'SEC-13: noisy during migration'")]
    Set {
        /// bulk_files (distinct files per person) or denials (refused grants per person).
        #[arg(value_name = "RULE")]
        rule: String,
        /// bulk_files: more distinct files than this fire; denials: this many refusals fire.
        #[arg(long, value_name = "N", required_unless_present = "off")]
        limit: Option<u32>,
        /// The sliding window in seconds.
        #[arg(long, value_name = "SECS", required_unless_present = "off")]
        window: Option<u64>,
        /// What a firing does: alert, step_up (hold the person's grants) or suspend.
        #[arg(long, value_name = "ACTION", required_unless_present = "off", value_parser = ["alert", "step_up", "suspend"])]
        action: Option<String>,
        /// Switch the rule off.
        #[arg(long, conflicts_with_all = ["limit", "window", "action"])]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HoursCommand {
    /// Each group's working hours.
    List,
    /// Set a group's working hours (GROUP, or * for everyone whose groups have none): narrowing
    /// them takes effect at once; widening or --off is filed for another administrator's approval.
    #[command(after_help = "\
Example:
  irm admin hours set support --tz Asia/Tokyo --days mon,tue,wed,thu,fri --hours 08:00-20:00 \\
      --holiday 2026-12-31 --holiday 2027-01-01 --reason 'SEC-9'")]
    Set {
        /// The group, or *.
        #[arg(value_name = "GROUP")]
        group: String,
        /// An IANA time zone (Asia/Tokyo).
        #[arg(long, value_name = "ZONE", required_unless_present = "off")]
        tz: Option<String>,
        /// Days, comma-separated: mon,tue,wed,thu,fri,sat,sun.
        #[arg(
            long,
            value_name = "DAYS",
            required_unless_present = "off",
            value_delimiter = ','
        )]
        days: Vec<String>,
        /// HH:MM-HH:MM, local time (22:00-06:00 runs past midnight).
        #[arg(long, value_name = "SPAN", required_unless_present = "off")]
        hours: Option<String>,
        /// A day off (YYYY-MM-DD), as often as needed.
        #[arg(long = "holiday", value_name = "DATE")]
        holidays: Vec<String>,
        /// Remove the group's working hours.
        #[arg(long, conflicts_with_all = ["tz", "days", "hours", "holidays"])]
        off: bool,
    },
}

/// The shape of `irm admin audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// JSON Lines with a signed checkpoint, for `irm audit verify --export`.
    #[default]
    Verifiable,
    /// ArcSight Common Event Format, one event a line, for a SIEM.
    Cef,
    /// One audit record (JSON) a line, for a SIEM.
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Show audit records, oldest first.
    #[command(after_help = "\
Shows the newest records, oldest of them first, as tail(1) does; with --follow it goes on printing
new ones below them (every 5 s; each look is itself an audit.read record, which is not shown).
With --after SEQ it shows the first N records after SEQ instead (to page through the log).

  irm admin audit tail                         # what just happened
  irm admin audit tail --user alice --since 1d # alice's last day
  irm admin audit tail --file list.csv.irm     # everything about one file
  irm admin audit tail --action admin -f       # administrators' actions, as they happen")]
    Tail {
        /// The first N records after this sequence number, instead of the newest.
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// How many records (1 to 1000).
        #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
        limit: u32,
        /// Only records of this person.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Only records about this file: its id (32 hex digits) or the sealed file itself.
        #[arg(long, value_name = "ID|FILE")]
        file: Option<String>,
        /// Only this action and the actions under it (grant, enroll, admin, admin.file.revoke).
        #[arg(long, value_name = "ACTION")]
        action: Option<String>,
        /// Only records since: a duration ago (1h, 2d), a date (2027-01-31) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN", value_parser = parse_since)]
        since: Option<u64>,
        /// Keep printing new records as they are written, until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Have the key server recompute the hash chain and check every checkpoint.
    Verify,
    /// Write the audit log, up to a checkpoint signed for it, as JSON Lines for offline checking.
    #[command(after_help = "\
The key server signs a checkpoint first; the export holds the records up to it (after SEQ, or
all of them) and the checkpoint (docs/PROTOCOL.md §9.1). Anyone with the server's audit public
key (DATA_DIR/audit-signing.pub) can check it offline, without the database:

  irm admin audit export -o audit.jsonl
  irm audit verify --export audit.jsonl --audit-key audit-signing.pub

For a SIEM, --format cef writes one CEF event a line (detections and refusals with the highest
severities) and --format jsonl one audit record a line; neither carries a checkpoint:

  irm admin audit export --format cef --since 1d -o irm.cef

The file is written atomically (mode 0600); an existing file is kept unless --force.")]
    Export {
        /// Where to write the export; - for standard output.
        #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        output: PathBuf,
        /// verifiable (signed, for irm audit verify), cef or jsonl (for a SIEM).
        #[arg(long, value_enum, default_value_t = ExportFormat::Verifiable)]
        format: ExportFormat,
        /// Only records after this sequence number [default: the whole chain].
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// cef and jsonl: only records since a duration ago (1h, 2d), a date (2027-01-31) or an
        /// RFC 3339 time.
        #[arg(long, value_name = "WHEN", value_parser = parse_since)]
        since: Option<u64>,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Have the key server sign and write a checkpoint now.
    Checkpoint,
    /// Summarise a stretch of the audit log for the people who answer for the data.
    #[command(after_help = "\
Who opened which files and how often (per person per day; renewals apart), prints, copies and
exports with their approvals, denials by reason, alerts and their acknowledgements,
administrators' actions with their reasons and approvers, devices enrolled, who could read each
group's files, and the last account review. It ends with the chain's head and the newest
checkpoint: check the export with `irm audit verify --export` and compare.

  irm admin audit report --since 7d                                # last week, text
  irm admin audit report --since 2027-01-01 --until 2027-02-01 --format html -o jan.html
  irm admin audit report --since 30d --user alice --format json
  irm admin audit report --from-export audit.jsonl --since 7d --format html -o week.html

With --from-export the report is built offline from an export (`irm admin audit export`), with
no key server, enrollment or passphrase, so a reviewer can make it from the file alone. The HTML
page is one file with no script and no network access; open it in any browser.")]
    Report(ReportArgs),
    /// Send each group's data owner the summary of their group's files for the past week.
    #[command(after_help = "\
Meant for cron or a systemd timer (docs/DIGEST.md has a unit and a timer). The key server names
each group's data owner ([data_owners] in its config: mailto:ADDRESS or https://URL) and the
files whose policy names the group; the digest is `irm admin audit report` over those files only:
who opened them and how often, take-outs with their approvals, prints, copies and exports,
denials, alerts and their acknowledgements, who was in the group, and the chain's head with a
checkpoint signed for this run. A mailbox gets it as plain text through --smtp; a webhook gets
the JSON (signed like the server's alerts when --webhook-secret-file is given).

  irm admin audit digest --dry-run                      # what would be sent, to whom
  IRM_SMTP_PASSWORD=... irm admin audit digest --smtp smtps://mail.example.com \\
      --smtp-user irm-digest --from 'IRM <irm@example.com>' --passphrase-file /etc/irm/pass

SMTP URLs: smtps://HOST[:PORT] (TLS from the start), smtp://HOST[:PORT]?tls=required
(STARTTLS, refused without it), or smtp://localhost[:PORT] without TLS to a relay on this host
only. Credentials never go on the command line: --smtp-user names the account, the password
comes from $IRM_SMTP_PASSWORD or --smtp-password-file.

Each delivery is tried up to --attempts times, waiting 1 s, then twice as long each time. Every
run that sends anything is recorded with the key server (admin.digest.sent: the period, the
chain head, each group's contact and whether it was delivered). Exit 0: all delivered; exit 7:
some were not (each named on stderr), the others were sent; other codes as for every command.")]
    Digest(DigestArgs),
}

/// `irm admin audit digest`.
#[derive(Debug, Args)]
pub(crate) struct DigestArgs {
    /// The period's start: a duration ago (7d), a date (2027-01-31) or an RFC 3339 time in UTC.
    #[arg(long, value_name = "WHEN", value_parser = parse_since, default_value = "7d")]
    pub(crate) since: u64,
    /// The period's end (excluded) [default: now].
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub(crate) until: Option<u64>,
    /// Only these groups (repeat the flag) [default: every group with a data owner].
    #[arg(long = "group", value_name = "GROUP")]
    pub(crate) groups: Vec<String>,
    /// The mail server: smtps://HOST[:PORT], smtp://HOST[:PORT]?tls=required, or
    /// smtp://localhost[:PORT] (no TLS, this host only). Needed when a data owner is a mailbox.
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub(crate) smtp: Option<String>,
    /// The SMTP account; its password comes from $IRM_SMTP_PASSWORD or --smtp-password-file.
    #[arg(long, value_name = "NAME")]
    pub(crate) smtp_user: Option<String>,
    /// Read the SMTP password from the first line of FILE (mode 0600) instead of $IRM_SMTP_PASSWORD.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) smtp_password_file: Option<PathBuf>,
    /// The sender of the mails: an address, or 'Name <address>'.
    #[arg(long, value_name = "ADDR")]
    pub(crate) from: Option<String>,
    /// Sign webhook bodies with the HMAC key in FILE (mode 0600), as the key server signs alerts.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) webhook_secret_file: Option<PathBuf>,
    /// PEM certificates to trust for webhooks and the mail server besides the system's roots.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) ca: Option<PathBuf>,
    /// Tries per delivery before it counts as failed (1 to 10).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub(crate) attempts: u32,
    /// Print what would be sent, and to whom, without sending or recording anything.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `irm admin review`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Lists the active people and devices with no grant in N days (and older than that), everyone with
the admin, auditor or maintainer role, the members of each group and the recipients of each
classification, and when the last review was recorded. Go through it, act on it (suspend,
revoke, remove members), then record that you did:

  irm admin review --dormant-days 60
  irm admin review done --reason 'Q1 access review, ticket SEC-42: suspended bob'

The record (admin.review.done, with you and your reason) is what `irm admin audit report` shows
as the last review."
)]
pub(crate) struct ReviewArgs {
    /// No grant in this many days makes a person or a device dormant.
    #[arg(long, value_name = "N", default_value_t = irm_core::protocol::DEFAULT_DORMANT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(irm_core::protocol::MAX_DORMANT_DAYS)))]
    pub(crate) dormant_days: u32,

    #[command(subcommand)]
    pub(crate) command: Option<ReviewCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReviewCommand {
    /// Record that the review was done, by you, with --reason (required).
    Done,
}

/// `irm admin audit report`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The window's start: a date (2027-01-31), an RFC 3339 time in UTC, or a duration ago (7d).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub(crate) since: u64,
    /// The window's end (excluded) [default: up to the last record].
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub(crate) until: Option<u64>,
    /// Only the records by or about this person.
    #[arg(long, value_name = "NAME")]
    pub(crate) user: Option<String>,
    /// text for a terminal or an email, json for programs, html for a browser.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
    /// Where to write the report [default: standard output].
    #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) output: Option<PathBuf>,
    /// Build the report offline from an audit export (JSON Lines), without the key server.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) from_export: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// How `irm admin audit report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
    Html,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    pub(crate) command: OfflineAuditCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OfflineAuditCommand {
    /// Check an audit export (`irm admin audit export`) against the key server's audit public key.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Every record must chain from the one before (docs/PROTOCOL.md §9), and the last one must be
vouched for by a checkpoint signed with the audit key given here; the key named inside the
export counts for nothing. Checkpoints kept apart from the server (a copy of its
DATA_DIR/audit-checkpoints.jsonl) catch a chain rewritten after they were signed.

Needs no key server, no enrollment and no passphrase:
  irm audit verify --export audit.jsonl --audit-key audit-signing.pub

Exits 0 when the export verifies, 1 with every problem listed when it does not.")]
pub(crate) struct AuditVerifyArgs {
    /// The export (JSON Lines), or `-` for standard input.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) export: PathBuf,

    /// The key server's audit public key (DATA_DIR/audit-signing.pub), obtained from the server's
    /// operator by a channel you trust.
    #[arg(long, value_name = "KEY.pub", value_hint = ValueHint::FilePath)]
    pub(crate) audit_key: PathBuf,

    /// Signed checkpoints kept apart from the export (JSON Lines, as in the server's checkpoint
    /// file); those inside the export's range are checked too.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) checkpoints: Option<PathBuf>,

    /// Print the report as one JSON object on standard output.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (mode 0600); the public key goes to the same path plus `.pub`.
    #[arg(short, long, value_name = "KEY", value_hint = ValueHint::FilePath)]
    pub(crate) output: PathBuf,

    /// Replace KEY and KEY.pub if they exist (the old key can then no longer open its files).
    #[arg(long)]
    pub(crate) force: bool,

    /// Print nothing on success.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("recipients").args(["to", "grant"]).required(true).multiple(true)),
    after_help = "\
Without --kas-public-key the file is sealed online: to the current key of the key server this
device enrolled with (`irm enroll`), and registered there so that administrators can list and
revoke it. With --kas-public-key and --kas-url it is sealed offline, without any server.

Examples:
  irm seal calls.csv --to alice --to @support --allow view,print --expires 2027-01-31T00:00:00Z
  irm seal calls.csv --kas-public-key kas.pub --kas-url https://kas.example:8443 \\
      --to alice --to @support --allow view,print --expires 2027-01-31T00:00:00Z
  irm seal calls.csv -o calls.irm --kas-public-key kas.pub --kas-url https://kas.example:8443 \\
      --grant @agents=view --grant @supervisors=view,print --expires 30d

Rights: view, print, copy, export, program.
Memory: about 8 x threads x chunk size of chunk buffers (1 MiB at 2 threads and 64KiB chunks),
plus 2 MiB of I/O buffers, whatever the file size.

With --json, success prints one object on stdout:
  {\"ok\": true, \"input\": \"calls.csv\" | null, \"output\": \"calls.csv.irm\", \"file_id\": \"<32 hex>\",
   \"plaintext_len\": 1234, \"sealed_len\": 1890}
plus \"registered_with\": \"https://...\" when sealed online (input is null for standard input;
--json needs -o FILE because stdout would carry the sealed file)."
)]
pub(crate) struct SealArgs {
    /// The file to seal, or `-` for standard input.
    #[arg(value_name = "IN", value_hint = ValueHint::FilePath)]
    pub(crate) input: PathBuf,

    /// Where to write the sealed file, or `-` for standard output [default: IN.irm, or standard
    /// output when IN is `-`, refused if that is a terminal].
    #[arg(short, long, value_name = "OUT", value_hint = ValueHint::FilePath)]
    pub(crate) output: Option<PathBuf>,

    /// Seal offline to this key server public key file (KEY.pub from `irm keygen`) [default: online,
    /// to the enrolled key server's current key].
    #[arg(long, value_name = "KEY.pub", value_hint = ValueHint::FilePath, requires = "kas_url")]
    pub(crate) kas_public_key: Option<PathBuf>,

    /// With --kas-public-key: the key server's URL recorded in the header, such as
    /// https://kas.example:8443.
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url, value_parser = parse_kas_url,
          requires = "kas_public_key")]
    pub(crate) kas_url: Option<String>,

    #[command(flatten)]
    pub(crate) passphrase: PassphraseArg,

    /// A recipient of the --allow rights: a user (`alice`) or a group (`@support`). Repeat it or
    /// separate names with commas.
    #[arg(long, value_name = "RECIPIENT", value_delimiter = ',', value_parser = parse_recipient)]
    pub(crate) to: Vec<Recipient>,

    /// The rights every --to recipient gets, comma-separated (view, print, copy, export, program).
    #[arg(long, value_name = "RIGHTS", default_value = "view", requires = "to", value_parser = parse_rights)]
    pub(crate) allow: Rights,

    /// A grant `RECIPIENTS=RIGHTS`, such as `@agents=view` or `alice,@leads=view,print`; repeat for
    /// several grants. May be combined with --to/--allow.
    #[arg(long, value_name = "RECIPIENTS=RIGHTS", value_parser = parse_grant)]
    pub(crate) grant: Vec<PolicyGrant>,

    /// Online: seal even for users or groups the key server does not know yet (people not created
    /// yet). Without it an unknown name is refused with what was probably meant (`@suport`:
    /// did you mean @support?), since a file sealed to a typo opens for no one.
    #[arg(long)]
    pub(crate) allow_unknown_recipients: bool,

    /// When the file stops opening: RFC 3339 in UTC (2027-01-31T00:00:00Z), a date (2027-01-31,
    /// midnight UTC) or a duration from now (30d, 12h; -1h is an hour ago). Without it the file
    /// never expires.
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub(crate) expires: Option<u64>,

    /// When the file starts opening; same forms as --expires.
    #[arg(long, value_name = "TIME", value_parser = parse_time, allow_hyphen_values = true)]
    pub(crate) not_before: Option<u64>,

    /// The longest a viewer may keep the file open offline before asking the key server again.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_lease)]
    pub(crate) max_lease: u32,

    /// Do not require viewers to draw a watermark naming the person (required by default).
    #[arg(long)]
    pub(crate) no_watermark: bool,

    /// The file's classification, shown to recipients, such as `confidential` (`--label` is an
    /// older name for it).
    #[arg(long, value_name = "CLASSIFICATION", alias = "label")]
    pub(crate) classification: Option<String>,

    /// Who is sealing, recorded in the header [default: the enrolled user online, $USER offline].
    #[arg(long, value_name = "NAME")]
    pub(crate) issuer: Option<String>,

    /// Plaintext bytes per chunk: a power of two from 1KiB to 16MiB (bytes, or with a KiB/MiB suffix).
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_chunk_size)]
    pub(crate) chunk_size: u32,

    #[command(flatten)]
    pub(crate) threads: ThreadsArg,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub(crate) force: bool,

    /// Print nothing on stderr on success (no summary, no progress bar).
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Print the result (or the error) as one JSON object on stdout; see below.
    #[arg(long)]
    pub(crate) json: bool,
}

impl SealArgs {
    /// Every grant: the --to/--allow short form plus each --grant.
    pub(crate) fn grants(&self) -> Vec<PolicyGrant> {
        let mut grants = self.grant.clone();
        if !self.to.is_empty() {
            grants.push(PolicyGrant {
                recipients: self.to.iter().cloned().collect(),
                rights: self.allow,
            });
        }
        grants
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
With --json, prints one object on stdout (times are RFC 3339 UTC, or null when absent;
*_unix are the same times in Unix seconds):
  {\"ok\": true, \"path\": \"calls.csv.irm\" | null, \"format_version\": 1, \"file_id\": \"<32 hex>\",
   \"created\": \"2026-01-05T09:30:00Z\", \"created_unix\": 1767605400, \"issuer\": \"alice\" | null,
   \"chunk_len\": 65536, \"header_len\": 612, \"file_len\": 1890 | null,
   \"key_access\": [{\"kas_url\": \"https://kas.example:8443\", \"key_id\": \"<32 hex>\"}],
   \"policy\": {\"grants\": [{\"recipients\": [\"@support\", \"alice\"], \"rights\": [\"view\", \"print\"]}],
              \"not_before\": null, \"not_before_unix\": null,
              \"not_after\": \"2027-01-31T00:00:00Z\", \"not_after_unix\": 1800662400,
              \"max_lease_secs\": 600, \"watermark_required\": true, \"classification\": \"confidential\" | null}}
Rights this version does not know are left out of \"rights\". On failure:
  {\"ok\": false, \"kind\": \"...\", \"exit_code\": N, \"message\": \"...\", \"hint\": \"...\" | null}")]
pub(crate) struct InspectArgs {
    /// The sealed file, or `-` for standard input.
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) input: PathBuf,

    /// Print one JSON object with a stable shape instead of text; see below.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The output appears only after the whole file has been decrypted and every chunk has
verified; on any failure no output file is left behind. With -o -, verified chunks are
streamed as they are decrypted: check the exit status before trusting the output.
The recovered file is created with mode 0600.

With --json, success prints one object on stdout:
  {\"ok\": true, \"input\": \"calls.csv.irm\" | null, \"output\": \"calls.csv\", \"file_id\": \"<32 hex>\",
   \"file_name\": \"calls.csv\" | null, \"media_type\": \"text/csv\" | null, \"plaintext_len\": 1234}")]
pub(crate) struct RecoverArgs {
    /// The sealed file, or `-` for standard input.
    #[arg(value_name = "IN", value_hint = ValueHint::FilePath)]
    pub(crate) input: PathBuf,

    /// Where to write the plaintext, or `-` for standard output.
    #[arg(short, long, value_name = "OUT", value_hint = ValueHint::FilePath)]
    pub(crate) output: PathBuf,

    /// The key server's secret key file (from `irm keygen`). Whoever holds it can read every file
    /// sealed to it: keep it offline and mode 0600.
    #[arg(long, value_name = "KEY", value_hint = ValueHint::FilePath)]
    pub(crate) kas_private_key: PathBuf,

    #[command(flatten)]
    pub(crate) threads: ThreadsArg,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub(crate) force: bool,

    /// Print nothing on stderr on success (no summary, no progress bar); warnings still appear.
    #[arg(short, long)]
    pub(crate) quiet: bool,

    /// Print the result (or the error) as one JSON object on stdout; needs -o FILE.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ThreadsArg {
    /// Threads to encrypt or decrypt with [default: 1; sealing a file is bound by
    /// the disk, and on two cores a second thread measured slower (docs/PERFORMANCE.md)].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: Option<u16>,
}

impl ThreadsArg {
    /// The thread count to use: one unless asked. One core already seals
    /// faster than a disk writes; each extra thread adds a batch of 64 chunks
    /// of buffer and a thread start per batch.
    pub(crate) fn get(&self) -> usize {
        self.threads.map_or(1, usize::from)
    }

    /// Stream options for that many threads (irm-core starts exactly that
    /// many, the calling thread included).
    pub(crate) fn stream_options(&self) -> irm_core::StreamOptions {
        irm_core::StreamOptions {
            threads: self.get(),
            ..Default::default()
        }
    }
}

fn parse_recipient(text: &str) -> Result<Recipient, String> {
    Recipient::parse(text.trim()).map_err(|e| e.to_string())
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(&text.trim().to_ascii_lowercase()).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {text:?}; the roles are {}", names.join(", "))
    })
}

fn parse_rights(text: &str) -> Result<Rights, String> {
    let rights = Rights::parse_list(text).map_err(|e| e.to_string())?;
    if rights.is_empty() {
        return Err("no right given; the rights are view, print, copy, export and program".into());
    }
    Ok(rights)
}

fn parse_grant(text: &str) -> Result<PolicyGrant, String> {
    PolicyGrant::parse(text).map_err(|e| e.to_string())
}

fn parse_invitation(text: &str) -> Result<irm_core::invitation::Invitation, String> {
    text.parse()
        .map_err(|e: irm_core::invitation::InvitationError| e.to_string())
}

fn parse_kas_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("expected an https:// URL, such as https://kas.example:8443")?;
    if rest.is_empty() || rest.starts_with('/') || text.chars().any(|c| c.is_whitespace()) {
        return Err("expected a URL with a host, such as https://kas.example:8443".into());
    }
    Ok(text.to_owned())
}

/// A point in time as Unix seconds: RFC 3339 in UTC, a bare date, or a
/// duration from now.
fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| "the time is before 1970".to_owned())
    };
    if let Ok(t) = humantime::parse_rfc3339(text) {
        return unix(t);
    }
    if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        if let Ok(t) = humantime::parse_rfc3339(&format!("{text}T00:00:00Z")) {
            return unix(t);
        }
    }
    if let Ok(d) = humantime::parse_duration(text) {
        return SystemTime::now()
            .checked_add(d)
            .ok_or_else(|| "the duration is too long".to_owned())
            .and_then(unix);
    }
    // `-1h`: a duration ago.
    if let Some(ago) = text.strip_prefix('-')
        && let Ok(d) = humantime::parse_duration(ago)
    {
        return SystemTime::now()
            .checked_sub(d)
            .ok_or_else(|| "the duration reaches before 1970".to_owned())
            .and_then(unix);
    }
    Err(format!(
        "{text:?} is not a time: use RFC 3339 in UTC (2027-01-31T00:00:00Z), a date (2027-01-31) \
         or a duration from now (30d, or -1h for an hour ago)"
    ))
}

/// A point in the past as Unix milliseconds: a duration ago, a date, or an
/// RFC 3339 time in UTC.
fn parse_since(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(d) = humantime::parse_duration(text) {
        return SystemTime::now()
            .checked_sub(d)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .ok_or_else(|| "the duration reaches before 1970".to_owned());
    }
    parse_time(text)
        .map(|secs| secs.saturating_mul(1000))
        .map_err(|_| {
            format!(
                "{text:?} is not a time: use a duration ago (1h, 2d), a date (2027-01-31) or RFC 3339 in UTC (2027-01-31T09:00:00Z)"
            )
        })
}

fn parse_lease(text: &str) -> Result<u32, String> {
    let d: Duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 10m or 1h: {e}"))?;
    u32::try_from(d.as_secs()).map_err(|_| "the lease is too long".to_owned())
}

fn parse_chunk_size(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (digits, multiplier) = [("KiB", 1024), ("K", 1024), ("MiB", 1 << 20), ("M", 1 << 20)]
        .iter()
        .find_map(|(suffix, m)| t.strip_suffix(suffix).map(|d| (d.trim(), *m)))
        .unwrap_or((t, 1));
    let size = digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is not a size such as 65536, 64KiB or 1MiB"))?;
    if !size.is_power_of_two() || !(MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&size) {
        return Err(format!(
            "the chunk size must be a power of two from 1KiB to 16MiB (default {}KiB)",
            DEFAULT_CHUNK_LEN / 1024
        ));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn grants_parse_several_recipients_and_rights() {
        let g = parse_grant("alice, @leads=view,print").unwrap();
        assert_eq!(g.recipients.len(), 2);
        assert_eq!(g.rights, Rights::VIEW | Rights::PRINT);
        assert!(parse_grant("@agents").is_err());
        assert!(parse_grant("=view").is_err());
        assert!(parse_grant("@agents=").is_err());
        assert!(parse_grant("@agents=fly").is_err());
    }

    #[test]
    fn times_accept_rfc3339_dates_and_durations() {
        assert_eq!(parse_time("2027-01-31T00:00:00Z"), Ok(1_801_353_600));
        assert_eq!(parse_time("2027-01-31"), Ok(1_801_353_600));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let in_a_day = parse_time("1d").unwrap();
        assert!((now + 86_399..=now + 86_401).contains(&in_a_day));
        assert!(parse_time("tomorrow").is_err());
        assert!(parse_time("2027-01-31T00:00:00+02:00").is_err());
    }

    #[test]
    fn chunk_sizes_must_be_powers_of_two_in_range() {
        assert_eq!(parse_chunk_size("64KiB"), Ok(65536));
        assert_eq!(parse_chunk_size("1M"), Ok(1 << 20));
        assert_eq!(parse_chunk_size("4096"), Ok(4096));
        assert!(parse_chunk_size("1000").is_err());
        assert!(parse_chunk_size("32MiB").is_err());
        assert!(parse_chunk_size("512").is_err());
        assert!(parse_chunk_size("99999999999KiB").is_err());
    }
}
