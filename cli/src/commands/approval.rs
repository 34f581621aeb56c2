//! `irm admin request ...` and `irm admin rule ...`, and how every command
//! whose action waits for approval reports the request it filed
//! (docs/PROTOCOL.md §7.2). Halves of enrollment codes print alone on
//! stdout, as whole codes do, so that scripts can capture them.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use irm_client::Session;
use irm_core::invitation::CodePart;
use irm_core::protocol::{ApprovalAction, ApprovalRequestInfo, RequestAnswer, RequestState};

use zeroize::Zeroizing;

use crate::cli::{BreakGlassCommand, RequestCommand, RuleCommand};
use crate::report::Out;
use crate::text::{self, printable};

pub(super) fn request(session: &Session, cmd: &RequestCommand, out: &Out) -> Result<()> {
    match cmd {
        RequestCommand::List { pending, quiet } => {
            let mut requests = session.list_requests().context("listing requests")?;
            if *pending {
                requests.retain(|r| r.state == RequestState::Pending);
            }
            out.show(&requests, || {
                if *quiet {
                    requests.iter().map(|r| format!("{}\n", r.id)).collect()
                } else {
                    requests_table(&requests)
                }
            })
        }
        RequestCommand::Show { id } => {
            let request = session
                .show_request(id)
                .with_context(|| format!("showing request {id}"))?;
            out.show(&request, || describe(&request))
        }
        RequestCommand::Approve {
            id,
            hash,
            break_glass,
        } => {
            let code = if *break_glass {
                Some(break_glass_code()?)
            } else {
                None
            };
            let (shown, answer) = session
                .approve_request(id, hash.as_deref(), code.as_ref().map(|c| c.as_str()))
                .with_context(|| format!("approving request {id}"))?;
            if code.is_some() && !out.json {
                eprintln!(
                    "BREAK-GLASS: the emergency code is spent; every administrator is told, and two of them seal a new one (irm admin break-glass issue)"
                );
            }
            let request = &answer.request;
            if out.json {
                return match &answer.code_half {
                    Some(half) if !matches!(request.action, ApprovalAction::IssueBreakGlass) => {
                        super::invite::show(session, half, CodePart::Second, &answer, out)
                    }
                    _ => out.show(&answer, String::new),
                };
            }
            eprintln!(
                "approved request {}: {} {}",
                request.id,
                shown.action.kind(),
                printable(&shown.action.summary())
            );
            match request.state {
                RequestState::Pending => eprintln!(
                    "it has {} of the {} approvals it needs",
                    request.approvals.len(),
                    request.required
                ),
                RequestState::Done => eprintln!("it had enough approvals and is done"),
                state => eprintln!("it ended {state}: {}", printable(&request.outcome)),
            }
            match &answer.code_half {
                Some(half) if matches!(request.action, ApprovalAction::IssueBreakGlass) => {
                    eprintln!(
                        "the SECOND half of the break-glass code (valid until {}); the requester, {}, holds the first. Write both, the requester's first, on one sheet, seal it in an envelope together and hand it to its keeper; the old code no longer works:",
                        text::time(answer.code_expires_at.unwrap_or(0)),
                        printable(&request.requester)
                    );
                    out.show(&answer, || format!("{half}\n"))
                }
                Some(half) => {
                    eprintln!(
                        "the SECOND half of the enrollment code (valid until {}); the requester, {}, holds the first: give this invitation to the person yourself, who gives both:",
                        text::time(answer.code_expires_at.unwrap_or(0)),
                        printable(&request.requester)
                    );
                    super::invite::show(session, half, CodePart::Second, &answer, out)
                }
                None => Ok(()),
            }
        }
        RequestCommand::Deny { id } => {
            let request = session
                .deny_request(id)
                .with_context(|| format!("denying request {id}"))?;
            out.show(&request, || {
                format!("request {} {}\n", request.id, printable(&request.outcome))
            })
        }
    }
}

/// The break-glass code, from `IRM_BREAK_GLASS_CODE` (scripts, drills) or
/// typed at the terminal without echo.
fn break_glass_code() -> Result<Zeroizing<String>> {
    if let Ok(code) = std::env::var("IRM_BREAK_GLASS_CODE") {
        return Ok(Zeroizing::new(code));
    }
    rpassword::prompt_password("Break-glass code from the envelope: ")
        .map(Zeroizing::new)
        .context("reading the break-glass code from the terminal")
}

pub(super) fn break_glass(session: &Session, cmd: &BreakGlassCommand, out: &Out) -> Result<()> {
    match cmd {
        BreakGlassCommand::Issue => {
            let answer = session
                .issue_break_glass()
                .context("filing a request for a new break-glass code")?;
            show_filed(session, &answer, out)
        }
    }
}

pub(super) fn rule(session: &Session, cmd: &RuleCommand, out: &Out) -> Result<()> {
    match cmd {
        RuleCommand::List => {
            let rules = session.approval_rules().context("listing approval rules")?;
            out.show(&rules, || {
                let mut text = format!("{:<26} {}\n", "ACTION", "APPROVALS");
                for rule in &rules {
                    let _ = writeln!(text, "{:<26} {}", printable(&rule.action), rule.required);
                }
                text
            })
        }
        RuleCommand::Set { action, required } => {
            let answer = session
                .set_approval_rule(action, *required)
                .with_context(|| format!("changing the approval rule for {action}"))?;
            show_filed(session, &answer, out)
        }
    }
}

/// What a command whose action waits for approval prints: the request on
/// stderr, and the requester's half of a code alone on stdout.
pub(super) fn show_filed(session: &Session, answer: &RequestAnswer, out: &Out) -> Result<()> {
    let request = &answer.request;
    let enrollment_half = answer
        .code_half
        .as_deref()
        .filter(|_| !matches!(request.action, ApprovalAction::IssueBreakGlass));
    if out.json {
        return match enrollment_half {
            Some(half) => super::invite::show(session, half, CodePart::First, answer, out),
            None => out.show(answer, String::new),
        };
    }
    eprintln!(
        "filed request {}: {} {}\nit takes effect when {} other administrator{} approve{} it (irm admin request approve {}); it lapses at {}",
        request.id,
        request.action.kind(),
        printable(&request.action.summary()),
        request.required,
        if request.required == 1 { "" } else { "s" },
        if request.required == 1 { "s" } else { "" },
        request.id,
        text::time(request.expires_at)
    );
    match &answer.code_half {
        Some(half) if matches!(request.action, ApprovalAction::IssueBreakGlass) => {
            eprintln!(
                "the FIRST half of the break-glass code; the approver receives the second. Together, write both on one sheet (yours first) and seal it in an envelope:"
            );
            out.show(answer, || format!("{half}\n"))
        }
        Some(half) => {
            eprintln!(
                "the FIRST half of the enrollment code; the approver receives the second. Give this invitation to the person yourself, who gives both:"
            );
            super::invite::show(session, half, CodePart::First, answer, out)
        }
        None => Ok(()),
    }
}

fn requests_table(requests: &[ApprovalRequestInfo]) -> String {
    let mut text = format!(
        "{:<32} {:<8} {:<9} {:<12} {:<22} {}\n",
        "REQUEST", "STATE", "APPROVALS", "REQUESTER", "ACTION", "PARAMETERS"
    );
    for r in requests {
        let _ = writeln!(
            text,
            "{:<32} {:<8} {:<9} {:<12} {:<22} {}",
            r.id,
            r.state.as_str(),
            format!("{}/{}", r.approvals.len(), r.required),
            printable(&r.requester),
            r.action.kind(),
            printable(&r.action.summary())
        );
    }
    text
}

/// One request in full: what an approver reads before approving.
fn describe(r: &ApprovalRequestInfo) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "request     {}", r.id);
    let _ = writeln!(text, "state       {}", r.state);
    let _ = writeln!(text, "action      {}", r.action.kind());
    for line in r.action.canonical().lines().skip(2) {
        let _ = writeln!(text, "            {}", printable(line));
    }
    let _ = writeln!(text, "hash        {}", r.action_hash);
    let _ = writeln!(text, "requester   {}", printable(&r.requester));
    let _ = writeln!(
        text,
        "reason      {}",
        if r.reason.is_empty() {
            "-".to_owned()
        } else {
            printable(&r.reason).to_string()
        }
    );
    let _ = writeln!(text, "filed       {}", text::time(r.created_at));
    let _ = writeln!(text, "lapses      {}", text::time(r.expires_at));
    let _ = writeln!(
        text,
        "approvals   {} of {}{}",
        r.approvals.len(),
        r.required,
        r.approvals
            .iter()
            .map(|a| format!(" {} ({})", printable(&a.approver), text::time(a.at)))
            .collect::<String>()
    );
    if !r.outcome.is_empty() {
        let _ = writeln!(text, "outcome     {}", printable(&r.outcome));
    }
    text
}
