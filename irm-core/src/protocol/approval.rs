//! Two-person approval (PROTOCOL.md §7.2): the actions that widen who can
//! read, which one administrator files as a request and others approve; the
//! request as it travels; and the action's canonical text and hash, which
//! an approver signs so that an approved request cannot be changed after.
//!
//! The canonical text is written here once and used by the server (which
//! stores and re-checks the hash) and the client (which computes it from
//! what it shows the approver, and sends it).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::role::Role;

/// The first line of every canonical action text: the version of the form.
pub const APPROVAL_DOMAIN: &str = "irm-approval-v1";

/// The longest reason (a ticket id, a sentence) an administrator may give.
pub const MAX_REASON_LEN: usize = 200;

/// How long an approved take-out may be used (PROTOCOL.md §7.3).
pub const EXPORT_WINDOW_SECS: u64 = 3600;

/// The most rows a copy or a print may take out without an approved
/// take-out, unless the server is set otherwise (PROTOCOL.md §7.3).
pub const DEFAULT_TAKE_OUT_ROWS: u64 = 100;

/// A way plaintext leaves in bulk, each approved on its own (PROTOCOL.md §7.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TakeOut {
    /// The whole plaintext written to a file (`irm open -o`, the viewer's
    /// save, libirm's export).
    #[default]
    Export,
    /// More rows than the server's threshold to the clipboard.
    Copy,
    /// More rows than the server's threshold to a printer.
    Print,
    /// A program's reads through libirm (`program_read`): not gated unless
    /// administrators raise its rule above 0, since call-centre
    /// applications read their lists that way.
    Program,
}

impl TakeOut {
    /// Every way, in a fixed order.
    pub const ALL: [Self; 4] = [Self::Export, Self::Copy, Self::Print, Self::Program];

    /// The audit action of an approved take-out, and its rule's key.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Export => "file.export",
            Self::Copy => "file.copy",
            Self::Print => "file.print",
            Self::Program => "file.program",
        }
    }

    /// The word people type (`irm export request --for copy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Copy => "copy",
            Self::Print => "print",
            Self::Program => "program",
        }
    }
}

/// The most approvals any rule can require.
pub const MAX_REQUIRED_APPROVALS: u8 = 9;

/// Whether `reason` is acceptable as an administrator's reason: at most
/// [`MAX_REASON_LEN`] bytes, no control characters (it is written into
/// one-line audit details and shown to other people).
pub fn valid_reason(reason: &str) -> bool {
    reason.len() <= MAX_REASON_LEN && !reason.chars().any(char::is_control)
}

/// An action that widens who can read, and so takes effect only once other
/// administrators approve it. The server names each by the audit action it
/// becomes ([`ApprovalAction::kind`]); approval rules are keyed by that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApprovalAction {
    /// A new person, with roles and groups, and their first enrollment code.
    CreateUser {
        /// Login name.
        name: String,
        /// Full name.
        display_name: String,
        /// Roles, sorted.
        roles: Vec<Role>,
        /// Groups to join, sorted, without `@`.
        groups: Vec<String>,
    },
    /// A fresh enrollment code for an existing person (a new device for them).
    IssueCode {
        /// Who.
        user: String,
    },
    /// A user joins a group (and reads what the group reads).
    AddMember {
        /// The group, without `@`.
        group: String,
        /// The user.
        user: String,
    },
    /// A suspended user is restored.
    RestoreUser {
        /// Who.
        user: String,
    },
    /// A person whose grants a detection rule holds is released
    /// (PROTOCOL.md §12).
    ReleaseHold {
        /// Who.
        user: String,
    },
    /// A file's revocation, expiry and restrictions are lifted.
    RestoreFile {
        /// The file id (32 lower-case hex digits).
        file_id: String,
    },
    /// A person's device takes one file's plaintext out, once, within the
    /// take-out window, in one way (PROTOCOL.md §7.3).
    TakeOut {
        /// How: export, copy or print.
        how: TakeOut,
        /// The file id (32 lower-case hex digits).
        file_id: String,
        /// Who asked (the only person who may use it).
        user: String,
        /// The device that asked (the only device that may use it, hex).
        device_id: String,
    },
    /// The server's root key is split anew into shares, `threshold` of
    /// which unseal it, one for each holder, encrypted to their devices
    /// (PROTOCOL.md §11.2).
    ReissueShares {
        /// Shares needed to unseal (at least 2).
        threshold: u8,
        /// The holders, one share each, sorted.
        holders: Vec<String>,
    },
    /// A break-glass code is issued (PROTOCOL.md §7.4): delivered in two
    /// halves, which the two administrators seal in an envelope together.
    /// It replaces any earlier one.
    IssueBreakGlass,
    /// A detection rule is loosened or switched off (PROTOCOL.md §12.2);
    /// tightening one needs no approval.
    SetDetectionRule {
        /// `bulk_files` or `denials`.
        rule: String,
        /// The new setting in its canonical text (`off`, or
        /// `limit=N window_secs=N action=WORD`).
        setting: String,
    },
    /// A group's working hours widen or are removed (PROTOCOL.md §12.3);
    /// narrowing them needs no approval.
    SetWorkingHours {
        /// The group (`*`: everyone whose groups have none).
        group: String,
        /// The schedule's canonical text, or `off`.
        schedule: String,
    },
    /// An approval rule changes.
    SetApprovalRule {
        /// The action the rule is for (an [`ApprovalAction::kind`]).
        action: String,
        /// Approvals it will need.
        required: u8,
    },
}

impl ApprovalAction {
    /// Every action name, the rule keys.
    pub const KINDS: [&'static str; 15] = [
        "admin.user.create",
        "admin.user.code",
        "admin.group.add_member",
        "admin.user.restore",
        "admin.user.release",
        "admin.file.restore",
        "admin.rule.set",
        "admin.detection.set",
        "admin.hours.set",
        "admin.shares.reissue",
        "admin.breakglass.issue",
        "file.export",
        "file.copy",
        "file.print",
        "file.program",
    ];

    /// The audit action this becomes, and the key of its approval rule.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateUser { .. } => "admin.user.create",
            Self::IssueCode { .. } => "admin.user.code",
            Self::AddMember { .. } => "admin.group.add_member",
            Self::RestoreUser { .. } => "admin.user.restore",
            Self::ReleaseHold { .. } => "admin.user.release",
            Self::RestoreFile { .. } => "admin.file.restore",
            Self::SetApprovalRule { .. } => "admin.rule.set",
            Self::SetDetectionRule { .. } => "admin.detection.set",
            Self::SetWorkingHours { .. } => "admin.hours.set",
            Self::ReissueShares { .. } => "admin.shares.reissue",
            Self::IssueBreakGlass => "admin.breakglass.issue",
            Self::TakeOut { how, .. } => how.kind(),
        }
    }

    /// Whether the action, once done, hands out an enrollment code (which
    /// is then delivered in two halves).
    pub fn issues_code(&self) -> bool {
        matches!(
            self,
            Self::CreateUser { .. } | Self::IssueCode { .. } | Self::IssueBreakGlass
        )
    }

    /// The canonical text an approval signs: [`APPROVAL_DOMAIN`], then
    /// `action=KIND`, then each parameter as `name=value` in the order
    /// PROTOCOL.md §7.2 lists them (lists joined by `,`), each line ended by
    /// `\n`. Names are restricted to `a-z A-Z 0-9 . _ -` and display names
    /// carry no control characters, so no line can forge another.
    pub fn canonical(&self) -> String {
        let mut lines = vec![
            APPROVAL_DOMAIN.to_owned(),
            format!("action={}", self.kind()),
        ];
        match self {
            Self::CreateUser {
                name,
                display_name,
                roles,
                groups,
            } => {
                let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                lines.push(format!("name={name}"));
                lines.push(format!("display_name={display_name}"));
                lines.push(format!("roles={}", roles.join(",")));
                lines.push(format!("groups={}", groups.join(",")));
            }
            Self::IssueCode { user } | Self::RestoreUser { user } | Self::ReleaseHold { user } => {
                lines.push(format!("user={user}"));
            }
            Self::AddMember { group, user } => {
                lines.push(format!("group={group}"));
                lines.push(format!("user={user}"));
            }
            Self::RestoreFile { file_id } => lines.push(format!("file_id={file_id}")),
            Self::TakeOut {
                how: _,
                file_id,
                user,
                device_id,
            } => {
                lines.push(format!("file_id={file_id}"));
                lines.push(format!("user={user}"));
                lines.push(format!("device_id={device_id}"));
            }
            Self::ReissueShares { threshold, holders } => {
                lines.push(format!("threshold={threshold}"));
                lines.push(format!("holders={}", holders.join(",")));
            }
            Self::IssueBreakGlass => {}
            Self::SetDetectionRule { rule, setting } => {
                lines.push(format!("rule={rule}"));
                lines.push(format!("setting={setting}"));
            }
            Self::SetWorkingHours { group, schedule } => {
                lines.push(format!("group={group}"));
                lines.push(format!("schedule={schedule}"));
            }
            Self::SetApprovalRule { action, required } => {
                lines.push(format!("rule_action={action}"));
                lines.push(format!("required={required}"));
            }
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    /// SHA-256 of [`ApprovalAction::canonical`], in lower-case hex: what an
    /// approver sends and what the server checks before the action runs.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }

    /// The parameters on one line, for people and audit details.
    pub fn summary(&self) -> String {
        let canonical = self.canonical();
        canonical.lines().skip(2).collect::<Vec<_>>().join(" ")
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Approved and carried out.
    Done,
    /// Approved, but the action was refused when it ran (for example the
    /// user was created meanwhile); `outcome` says why.
    Failed,
    /// An administrator denied it.
    Denied,
    /// Its time ran out before enough approvals came.
    Expired,
}

/// One administrator's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalInfo {
    /// The approving administrator.
    pub approver: String,
    /// Their device (hex), which signed the approval.
    pub device: String,
    /// When (Unix seconds).
    pub at: u64,
}

/// A request as administrators see it (`GET /v1/admin/requests/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalRequestInfo {
    /// Request id (32 lower-case hex digits).
    pub id: String,
    /// What would be done.
    pub action: ApprovalAction,
    /// [`ApprovalAction::hash`] of `action`, as stored when it was filed.
    pub action_hash: String,
    /// Who asked.
    pub requester: String,
    /// The requester's reason (a ticket id), empty if none was given.
    pub reason: String,
    /// Approvals it needs (from administrators other than the requester).
    pub required: u8,
    /// The approvals so far.
    pub approvals: Vec<ApprovalInfo>,
    /// Where it stands.
    pub state: RequestState,
    /// When it was filed (Unix seconds).
    pub created_at: u64,
    /// When it lapses if still pending (Unix seconds).
    pub expires_at: u64,
    /// What happened when it ended: who denied it, or why the action was
    /// refused. Empty while pending and when done.
    pub outcome: String,
}

/// The answer to filing a request (202) and to approving one (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestAnswer {
    /// The request as it now stands.
    pub request: ApprovalRequestInfo,
    /// For an action that issues an enrollment code: this caller's half of
    /// it, shown once (the requester's when filing, the last approver's
    /// when the approval completes it). The person enrolling types both
    /// halves, requester's first; neither administrator holds a working code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_half: Option<String>,
    /// When that code expires (Unix seconds), once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_expires_at: Option<u64>,
}

/// `POST /v1/admin/requests/{id}/approve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApproveRequest {
    /// [`ApprovalAction::hash`] of the action the approver was shown; the
    /// server refuses the approval if the stored action hashes otherwise.
    pub action_hash: String,
    /// The break-glass code (PROTOCOL.md §7.4): this approval then stands
    /// for every approval the request still lacks, once, loudly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
}

/// How long a break-glass code stays usable after it is issued (a year): the
/// envelope is renewed at least that often.
pub const BREAK_GLASS_LIFETIME_SECS: u64 = 365 * 24 * 60 * 60;

/// An approval rule (`GET /v1/admin/approval-rules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalRule {
    /// The action (an [`ApprovalAction::kind`]).
    pub action: String,
    /// Approvals from administrators other than the requester (1 to 9;
    /// for `file.export`, 0 to 9, 0 meaning exports need no approval).
    pub required: u8,
}

/// `PUT /v1/admin/approval-rules/{action}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetApprovalRuleRequest {
    /// Approvals the action will need (1 to 9).
    pub required: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_text_is_frozen() {
        let action = ApprovalAction::AddMember {
            group: "support".into(),
            user: "admin".into(),
        };
        assert_eq!(
            action.canonical(),
            "irm-approval-v1\naction=admin.group.add_member\ngroup=support\nuser=admin\n"
        );
        // PROTOCOL.md §7.2 quotes this hash: a second implementation checks
        // its own canonical form against it.
        assert_eq!(
            action.hash(),
            "83e49c055c7383ad9ed3489cf81da293cab92ab9e53d888e2623ebccdd327a40"
        );
        let create = ApprovalAction::CreateUser {
            name: "bob".into(),
            display_name: "Bob Example".into(),
            roles: vec![Role::Admin, Role::User],
            groups: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            create.canonical(),
            "irm-approval-v1\naction=admin.user.create\nname=bob\ndisplay_name=Bob Example\nroles=admin,user\ngroups=a,b\n"
        );
        assert_eq!(
            create.summary(),
            "name=bob display_name=Bob Example roles=admin,user groups=a,b"
        );
    }

    #[test]
    fn changed_parameters_change_the_hash() {
        let a = ApprovalAction::AddMember {
            group: "support".into(),
            user: "alice".into(),
        };
        let b = ApprovalAction::AddMember {
            group: "support".into(),
            user: "admin".into(),
        };
        let c = ApprovalAction::RestoreUser {
            user: "alice".into(),
        };
        assert_ne!(a.hash(), b.hash());
        assert_ne!(
            c.hash(),
            ApprovalAction::IssueCode {
                user: "alice".into()
            }
            .hash()
        );
        for kind in ApprovalAction::KINDS {
            assert!(
                kind.starts_with("admin.") || TakeOut::ALL.iter().any(|t| t.kind() == kind),
                "{kind}"
            );
        }
        // The same file, person and device taken out two ways are two
        // different approvals: one cannot be spent as the other.
        let take_out = |how| ApprovalAction::TakeOut {
            how,
            file_id: "00".repeat(16),
            user: "alice".into(),
            device_id: "11".repeat(16),
        };
        let hashes: std::collections::BTreeSet<String> = TakeOut::ALL
            .into_iter()
            .map(|how| take_out(how).hash())
            .collect();
        assert_eq!(hashes.len(), TakeOut::ALL.len());
        assert!(
            take_out(TakeOut::Print)
                .canonical()
                .contains("action=file.print\n")
        );
    }

    #[test]
    fn actions_travel_tagged_by_kind() {
        let json = serde_json::to_value(ApprovalAction::RestoreFile {
            file_id: "00".repeat(16),
        })
        .unwrap();
        assert_eq!(json["kind"], "restore_file");
        assert!(valid_reason("TICKET-123 onboarding"));
        assert!(!valid_reason("two\nlines"));
        assert!(!valid_reason(&"x".repeat(201)));
    }
}
