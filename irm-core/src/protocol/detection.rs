//! Detection rules as server state (PROTOCOL.md §12.2): each rule's limit,
//! window and action as they travel and as the audit log and the approval
//! of a loosening name them, and the one comparison that says whether a
//! change loosens a rule (and so needs other administrators' approval).

use serde::{Deserialize, Serialize};

/// What a rule does when it fires, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DetectionAction {
    /// An audit record (`detect.RULE`) and an alert, nothing else.
    Alert,
    /// The person's grants are held (`step_up_required`) until two
    /// administrators release them.
    StepUp,
    /// The person is suspended (`user_suspended`); restoring them needs
    /// two administrators as always.
    Suspend,
}

impl DetectionAction {
    /// The word in audit details, the config file and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::StepUp => "step_up",
            Self::Suspend => "suspend",
        }
    }

    /// The action `word` names.
    pub fn parse(word: &str) -> Option<Self> {
        [Self::Alert, Self::StepUp, Self::Suspend]
            .into_iter()
            .find(|a| a.as_str() == word)
    }
}

/// The rules a server has, by name, in the order listings show them.
pub const DETECTION_RULES: [&str; 9] = [
    "bulk_files",
    "denials",
    "records_taken",
    "devices",
    "networks",
    "baseline",
    "off_hours",
    "first_access",
    "peers",
];

/// The longest window a rule may look back over (90 days).
pub const MAX_DETECTION_WINDOW_SECS: u64 = 90 * 86_400;

/// A rule switched on: more than `limit` distinct files (`bulk_files`),
/// `limit` refusals or more (`denials`), more than `limit` rows taken out
/// (`records_taken`), more than `limit` devices (`devices`) or client
/// networks (`networks`) in use, within `window_secs`; or an hour's new
/// grants above `limit` times the person's median hour over `window_secs`
/// (`baseline`); or `limit` grants or more outside the person's groups'
/// working hours within `window_secs` (`off_hours`): fires `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DetectionLimit {
    /// The count the rule compares with (at least 1).
    pub limit: u32,
    /// The sliding window, in seconds (1 to [`MAX_DETECTION_WINDOW_SECS`]).
    pub window_secs: u64,
    /// What happens when it fires.
    pub action: DetectionAction,
}

/// A rule's setting in its canonical text: `off`, or
/// `limit=N window_secs=N action=WORD` (the audit detail, the state the
/// ledger covers, and the line an approval signs).
pub fn detection_setting_text(setting: Option<&DetectionLimit>) -> String {
    match setting {
        None => "off".into(),
        Some(l) => format!(
            "limit={} window_secs={} action={}",
            l.limit,
            l.window_secs,
            l.action.as_str()
        ),
    }
}

/// The setting [`detection_setting_text`] wrote, if `text` is one.
pub fn parse_detection_setting(text: &str) -> Option<Option<DetectionLimit>> {
    if text == "off" {
        return Some(None);
    }
    let mut words = text.split(' ');
    let mut field = |name: &str| words.next()?.strip_prefix(name)?.strip_prefix('=');
    let limit = field("limit")?.parse().ok()?;
    let window_secs = field("window_secs")?.parse().ok()?;
    let action = DetectionAction::parse(field("action")?)?;
    if words.next().is_some() {
        return None;
    }
    let setting = DetectionLimit {
        limit,
        window_secs,
        action,
    };
    (detection_setting_text(Some(&setting)) == text).then_some(Some(setting))
}

/// What is wrong with `setting` for `rule`, if anything.
pub fn check_detection_setting(rule: &str, setting: Option<&DetectionLimit>) -> Result<(), String> {
    if !DETECTION_RULES.contains(&rule) {
        return Err(format!(
            "no detection rule {rule:?}; the rules are {}",
            DETECTION_RULES.join(", ")
        ));
    }
    if let Some(l) = setting {
        if l.limit == 0 {
            return Err("the limit must be at least 1 (switch a rule off with `off`)".into());
        }
        if rule == "denials" && l.action != DetectionAction::Alert {
            // Refusals are as often a person's own mistakes as probing:
            // they are for reviewers to weigh, not a reason to stop work.
            return Err("the denials rule only alerts (action alert)".into());
        }
        if !(1..=MAX_DETECTION_WINDOW_SECS).contains(&l.window_secs) {
            return Err(format!(
                "the window must be 1 to {MAX_DETECTION_WINDOW_SECS} seconds (90 days)"
            ));
        }
    }
    Ok(())
}

/// Whether changing `rule` from `from` to `to` lets anything through that
/// `from` caught, or acts more weakly on it: switching it off, a higher
/// limit, a shorter window, or a weaker action. Such a change needs other
/// administrators' approval; one that only tightens takes effect at once.
pub fn detection_loosens(from: Option<&DetectionLimit>, to: Option<&DetectionLimit>) -> bool {
    match (from, to) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(from), Some(to)) => {
            to.limit > from.limit || to.window_secs < from.window_secs || to.action < from.action
        }
    }
}

/// One rule as `GET /v1/admin/detection` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DetectionRuleInfo {
    /// `bulk_files` or `denials`.
    pub rule: String,
    /// Its setting; `null` when switched off.
    pub setting: Option<DetectionLimit>,
    /// The same in its canonical text ([`detection_setting_text`]).
    pub text: String,
}

/// `PUT /v1/admin/detection/{rule}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetDetectionRuleRequest {
    /// The new setting; `null` switches the rule off (which loosens it).
    pub setting: Option<DetectionLimit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(limit: u32, window_secs: u64, action: DetectionAction) -> Option<DetectionLimit> {
        Some(DetectionLimit {
            limit,
            window_secs,
            action,
        })
    }

    #[test]
    fn the_canonical_text_round_trips_and_nothing_else_parses() {
        for setting in [None, on(30, 300, DetectionAction::StepUp)] {
            let text = detection_setting_text(setting.as_ref());
            assert_eq!(parse_detection_setting(&text), Some(setting), "{text}");
        }
        assert_eq!(
            detection_setting_text(on(30, 300, DetectionAction::StepUp).as_ref()),
            "limit=30 window_secs=300 action=step_up"
        );
        for bad in [
            "",
            "on",
            "limit=30 window_secs=300",
            "limit=30 window_secs=300 action=ignore",
            "limit=+30 window_secs=300 action=alert",
            "limit=30  window_secs=300 action=alert",
            "limit=30 window_secs=300 action=alert x=1",
            "window_secs=300 limit=30 action=alert",
        ] {
            assert_eq!(parse_detection_setting(bad), None, "{bad:?}");
        }
    }

    /// The decision table of a change: loosening needs approval.
    #[test]
    fn loosening_is_off_a_higher_limit_a_shorter_window_or_a_weaker_action() {
        use DetectionAction::{Alert, StepUp, Suspend};
        let base = on(30, 300, StepUp);
        let cases = [
            (None, None, false),
            (None, base, false),
            (base, None, true),
            (base, base, false),
            (base, on(31, 300, StepUp), true),
            (base, on(29, 300, StepUp), false),
            (base, on(30, 299, StepUp), true),
            (base, on(30, 600, StepUp), false),
            (base, on(30, 300, Alert), true),
            (base, on(30, 300, Suspend), false),
            // Tighter in one way, looser in another: looser.
            (base, on(10, 60, Suspend), true),
        ];
        for (from, to, loosens) in cases {
            assert_eq!(
                detection_loosens(from.as_ref(), to.as_ref()),
                loosens,
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(
            check_detection_setting("bulk_files", on(1, 1, DetectionAction::Alert).as_ref())
                .is_ok()
        );
        assert!(check_detection_setting("denials", None).is_ok());
        assert!(
            check_detection_setting("denials", on(10, 600, DetectionAction::Alert).as_ref())
                .is_ok()
        );
        assert!(
            check_detection_setting("denials", on(10, 600, DetectionAction::Suspend).as_ref())
                .is_err()
        );
        assert!(check_detection_setting("bulk", None).is_err());
        assert!(
            check_detection_setting("bulk_files", on(0, 300, DetectionAction::Alert).as_ref())
                .is_err()
        );
        assert!(
            check_detection_setting("bulk_files", on(5, 0, DetectionAction::Alert).as_ref())
                .is_err()
        );
        assert!(
            check_detection_setting(
                "bulk_files",
                on(5, MAX_DETECTION_WINDOW_SECS + 1, DetectionAction::Alert).as_ref()
            )
            .is_err()
        );
    }
}
