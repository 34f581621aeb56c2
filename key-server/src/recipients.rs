//! Checking a policy's recipients before a file is sealed (PROTOCOL.md
//! §6.1): which names are no user or group, and what was probably meant.
//! A pure function of the names and the directory; the endpoint is
//! `api::client::check_recipients`.

use irm_core::protocol::UnknownRecipient;

/// How far (in edits) a name may be from a suggestion.
const CLOSE: usize = 2;

/// The closest of `names` to `wanted`, if one is within [`CLOSE`] edits.
fn closest<'a>(wanted: &str, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .map(|name| (strsim::levenshtein(wanted, name), name))
        .filter(|(distance, _)| *distance <= CLOSE)
        .min()
        .map(|(_, name)| name.as_str())
}

/// The recipients among `recipients` (as policies write them: `alice`,
/// `@support`) that name no user in `users` or group in `groups`.
pub fn unknown(
    recipients: &[String],
    users: &[String],
    groups: &[String],
) -> Vec<UnknownRecipient> {
    let mut out = Vec::new();
    for recipient in recipients {
        let (suggestion, message) = match recipient.strip_prefix('@') {
            Some(group) => {
                if groups.iter().any(|g| g == group) {
                    continue;
                }
                let near = closest(group, groups).map(|g| format!("@{g}"));
                let message = match (&near, users.iter().any(|u| u == group)) {
                    (Some(near), _) => format!("no group {recipient}; did you mean {near}?"),
                    (None, true) => {
                        format!("no group {recipient}; {group} is a user (write it without @)")
                    }
                    (None, false) => format!("no group {recipient}"),
                };
                let near =
                    near.or_else(|| users.iter().any(|u| u == group).then(|| group.to_owned()));
                (near, message)
            }
            None => {
                if users.iter().any(|u| u == recipient) {
                    continue;
                }
                if groups.iter().any(|g| g == recipient) {
                    let group = format!("@{recipient}");
                    let message =
                        format!("no user {recipient}; {group} is a group (write it with @)");
                    (Some(group), message)
                } else {
                    let near = closest(recipient, users).map(str::to_owned);
                    let message = match &near {
                        Some(near) => format!("no user {recipient}; did you mean {near}?"),
                        None => format!("no user {recipient}"),
                    };
                    (near, message)
                }
            }
        };
        out.push(UnknownRecipient {
            recipient: recipient.clone(),
            suggestion,
            message,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_named_with_what_was_probably_meant() {
        let users = vec!["alice".to_owned(), "bob".to_owned()];
        let groups = vec!["support".to_owned(), "sales".to_owned()];
        let names: Vec<String> = [
            "alice", "@support", "@suport", "support", "bobb", "zed", "@alice",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let found = unknown(&names, &users, &groups);
        let got: Vec<(&str, Option<&str>, &str)> = found
            .iter()
            .map(|u| {
                (
                    u.recipient.as_str(),
                    u.suggestion.as_deref(),
                    u.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "@suport",
                    Some("@support"),
                    "no group @suport; did you mean @support?"
                ),
                (
                    "support",
                    Some("@support"),
                    "no user support; @support is a group (write it with @)"
                ),
                ("bobb", Some("bob"), "no user bobb; did you mean bob?"),
                ("zed", None, "no user zed"),
                (
                    "@alice",
                    Some("alice"),
                    "no group @alice; alice is a user (write it without @)"
                ),
            ]
        );
    }
}
