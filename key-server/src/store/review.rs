//! The account review (PROTOCOL.md §7.6), computed from the rows the
//! server keeps anyway: last use is the newest grant or renewal per device
//! (the `grants` table), so no new column and nothing more to write on the
//! grant path; roles, groups and devices as stored; the recipients of each
//! classification from the files' policies; the last review from the audit
//! log, where `admin.review.done` is the only record of it. The data
//! owners' view of their groups (members, and the files whose policy names
//! the group: PROTOCOL.md §7.7) is read from the same rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use irm_core::protocol::{
    AccountReview, AuditQuery, ClassificationRecipients, DormantDevice, DormantUser, GroupMembers,
    PrivilegedUser, ReviewDone, Role,
};

use super::contract::GroupCover;
use super::tables::Tables;
use crate::error::StoreError;

/// The audit action that records a review.
pub(super) const REVIEW_DONE: &str = "admin.review.done";

/// The review as of `now_ms`, with `dormant_days` for dormancy.
pub(super) fn review(
    conn: &mut impl Tables,
    dormant_days: u32,
    now_ms: u64,
) -> Result<AccountReview, StoreError> {
    let now = now_ms / 1000;
    let cutoff = now.saturating_sub(u64::from(dormant_days) * 86_400);
    let mut device_last: HashMap<String, u64> = HashMap::new();
    let mut user_last: HashMap<String, u64> = HashMap::new();
    for (user, device, at) in conn.last_grants()? {
        device_last.insert(device, at);
        let newest = user_last.entry(user).or_default();
        *newest = (*newest).max(at);
    }
    let created: HashMap<String, u64> = conn.user_created()?.into_iter().collect();

    let mut dormant_users = Vec::new();
    let mut privileged = Vec::new();
    let mut groups: BTreeMap<String, BTreeSet<String>> = conn
        .group_names()?
        .into_iter()
        .map(|g| (g, BTreeSet::new()))
        .collect();
    for name in conn.user_names()? {
        let Some(user) = conn.user(&name)? else {
            continue;
        };
        for group in &user.groups {
            groups
                .entry(group.clone())
                .or_default()
                .insert(user.name.clone());
        }
        if user.roles.iter().any(|r| *r != Role::User) {
            privileged.push(PrivilegedUser {
                name: user.name.clone(),
                display_name: user.display_name.clone(),
                roles: user.roles.clone(),
                suspended: !user.active,
            });
        }
        let created_at = created.get(&name).copied().unwrap_or(0);
        let last_used_at = user_last.get(&name).copied();
        if user.active && created_at < cutoff && last_used_at.is_none_or(|at| at < cutoff) {
            dormant_users.push(DormantUser {
                name: user.name,
                display_name: user.display_name,
                roles: user.roles,
                created_at,
                last_used_at,
            });
        }
    }
    dormant_users.sort_by_key(|u| (u.last_used_at, u.name.clone()));

    let mut dormant_devices: Vec<DormantDevice> = conn
        .devices()?
        .into_iter()
        .filter(|d| d.active && d.enrolled_at < cutoff)
        .filter_map(|d| {
            let last_used_at = device_last.get(&d.id).copied();
            last_used_at
                .is_none_or(|at| at < cutoff)
                .then_some(DormantDevice {
                    device_id: d.id,
                    user: d.user,
                    name: d.name,
                    enrolled_at: d.enrolled_at,
                    last_used_at,
                })
        })
        .collect();
    dormant_devices.sort_by_key(|d| (d.last_used_at, d.user.clone(), d.device_id.clone()));

    let mut classes: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for file in conn.files()? {
        let Some(policy) = file.info(now).policy else {
            continue;
        };
        let class = classes
            .entry(
                policy
                    .classification
                    .clone()
                    .unwrap_or_else(|| "unclassified".to_owned()),
            )
            .or_default();
        class.0 += 1;
        for grant in &policy.grants {
            class
                .1
                .extend(grant.recipients.iter().map(|r| r.to_string()));
        }
    }

    Ok(AccountReview {
        at: now,
        dormant_days,
        dormant_users,
        dormant_devices,
        privileged,
        groups: groups
            .into_iter()
            .map(|(group, members)| GroupMembers {
                group,
                members: members.into_iter().collect(),
            })
            .collect(),
        classifications: classes
            .into_iter()
            .map(
                |(classification, (files, recipients))| ClassificationRecipients {
                    classification,
                    files,
                    recipients: recipients.into_iter().collect(),
                },
            )
            .collect(),
        last_review: last_review(conn)?,
    })
}

/// The newest `admin.review.done` record that was not refused.
/// For each of `groups`: its members now and the files whose policy names
/// `@group` (sorted), in one pass over the files.
pub(super) fn group_files(
    conn: &mut impl Tables,
    groups: &[String],
    now: u64,
) -> Result<Vec<GroupCover>, StoreError> {
    let mut members: BTreeMap<&str, BTreeSet<String>> = groups
        .iter()
        .map(|g| (g.as_str(), BTreeSet::new()))
        .collect();
    for name in conn.user_names()? {
        let Some(user) = conn.user(&name)? else {
            continue;
        };
        for group in &user.groups {
            if let Some(set) = members.get_mut(group.as_str()) {
                set.insert(user.name.clone());
            }
        }
    }
    let mut files: BTreeMap<&str, BTreeSet<String>> = groups
        .iter()
        .map(|g| (g.as_str(), BTreeSet::new()))
        .collect();
    for file in conn.files()? {
        let info = file.info(now);
        let Some(policy) = &info.policy else {
            continue;
        };
        for grant in &policy.grants {
            for recipient in &grant.recipients {
                if let irm_core::Recipient::Group(group) = recipient
                    && let Some(set) = files.get_mut(group.as_str())
                {
                    set.insert(info.file_id.clone());
                }
            }
        }
    }
    Ok(groups
        .iter()
        .map(|g| GroupCover {
            group: g.clone(),
            members: members
                .remove(g.as_str())
                .unwrap_or_default()
                .into_iter()
                .collect(),
            files: files
                .remove(g.as_str())
                .unwrap_or_default()
                .into_iter()
                .collect(),
        })
        .collect())
}

fn last_review(conn: &mut impl Tables) -> Result<Option<ReviewDone>, StoreError> {
    let records = conn.audit_query(&AuditQuery {
        limit: 100,
        newest: true,
        action: Some(REVIEW_DONE.to_owned()),
        ..AuditQuery::default()
    })?;
    Ok(records
        .into_iter()
        .rev()
        .find(|r| r.action == REVIEW_DONE && r.result == "ok")
        .map(|r| ReviewDone {
            seq: r.seq,
            at_ms: r.at_ms,
            by: r.actor_user.unwrap_or_default(),
            reason: r
                .detail
                .as_deref()
                .and_then(|d| d.split_once("reason=").map(|(_, reason)| reason.to_owned()))
                .unwrap_or_default(),
        }))
}
