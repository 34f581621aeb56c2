//! Alerts (PROTOCOL.md §12.1): a detection rule's firing as administrators
//! list, read and acknowledge it, and as the key server's webhook delivers
//! it. An alert is the audit record `detect.RULE` the firing wrote; its id
//! is that record's sequence number, so an alert can always be checked
//! against the verifiable log.

use serde::{Deserialize, Serialize};

/// The audit action prefix of a detection firing: `detect.bulk_files`.
pub const ALERT_ACTION_PREFIX: &str = "detect.";

/// The version of the webhook body ([`AlertDelivery::version`]).
pub const ALERT_DELIVERY_VERSION: u32 = 1;

/// What the rule did to the person when it fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertResponse {
    /// An alert and nothing else.
    Alert,
    /// The person's grants were held until two administrators release them.
    StepUp,
    /// The person was suspended until two administrators restore them.
    Suspend,
}

impl AlertResponse {
    /// The word in the audit detail (`action=step_up`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::StepUp => "step_up",
            Self::Suspend => "suspend",
        }
    }

    /// Reads the `action=` word of a firing's audit detail; `alert` when
    /// there is none (a firing without a hold says none).
    pub fn from_detail(detail: Option<&str>) -> Self {
        detail
            .unwrap_or("")
            .split_whitespace()
            .find_map(|word| match word.strip_prefix("action=")? {
                "step_up" => Some(Self::StepUp),
                "suspend" => Some(Self::Suspend),
                _ => Some(Self::Alert),
            })
            .unwrap_or(Self::Alert)
    }

    /// The command that lifts what it did to `user` (filed for a second
    /// administrator's approval), if it did anything.
    pub fn lift_command(self, user: &str) -> Option<String> {
        match self {
            Self::Alert => None,
            Self::StepUp => Some(format!("irm admin user release {user}")),
            Self::Suspend => Some(format!("irm admin user restore {user}")),
        }
    }
}

/// Who acknowledged an alert, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertAck {
    /// The administrator.
    pub by: String,
    /// When (Unix seconds).
    pub at: u64,
    /// Why, in their words (a ticket id).
    pub reason: String,
}

/// One alert as administrators (and auditors) see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// The `seq` of the `detect.RULE` audit record.
    pub id: u64,
    /// When it fired (Unix milliseconds).
    pub at_ms: u64,
    /// The rule (`bulk_files`, `denials`, `take_out_refused`).
    pub rule: String,
    /// The person whose requests set it off.
    pub user: Option<String>,
    /// The file that crossed the line (hex), if any.
    pub file_id: Option<String>,
    /// What the rule saw (`files=31 window_secs=300 limit=30 action=step_up`).
    pub detail: Option<String>,
    /// What the rule did to the person.
    pub response: AlertResponse,
    /// Whether the hold or suspension it set is still in force now.
    pub in_force: bool,
    /// The command that lifts it (after a second administrator's
    /// approval), while it is in force: acknowledging does not.
    pub lift_with: Option<String>,
    /// The acknowledgement, once there is one.
    pub ack: Option<AlertAck>,
}

impl Alert {
    /// Not yet acknowledged.
    pub fn is_open(&self) -> bool {
        self.ack.is_none()
    }
}

/// `POST /v1/admin/alerts/{id}/ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckAlertRequest {
    /// Why (1 to `MAX_REASON_LEN` characters, no control characters).
    pub reason: String,
}

/// The body of the key server's webhook POST (PROTOCOL.md §12.1): one alert
/// as it stood when delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertDelivery {
    /// The body's version: 1.
    pub version: u32,
    /// The key server's public URL.
    pub server: String,
    /// The alert.
    pub alert: Alert,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_comes_from_the_detail_and_names_its_lifting_command() {
        let detail = "files=31 window_secs=300 limit=30 action=step_up ledger: x";
        let response = AlertResponse::from_detail(Some(detail));
        assert_eq!(response, AlertResponse::StepUp);
        assert_eq!(
            response.lift_command("alice").as_deref(),
            Some("irm admin user release alice")
        );
        assert_eq!(
            AlertResponse::from_detail(Some("files=9 action=suspend")).lift_command("bob"),
            Some("irm admin user restore bob".into())
        );
        assert_eq!(AlertResponse::from_detail(None), AlertResponse::Alert);
        assert_eq!(
            AlertResponse::from_detail(Some("how=export action=alert")).lift_command("c"),
            None
        );
        assert_eq!(
            serde_json::to_string(&AlertResponse::StepUp).unwrap(),
            "\"step_up\""
        );
    }
}
