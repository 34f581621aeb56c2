//! Delivering alerts to a webhook (PROTOCOL.md §12.1): the `[alerts]`
//! settings, the signature (`X-IRM-Signature`, computed by
//! `irm_core::webhook`), and the background task
//! that POSTs every alert after the delivery cursor, retrying with
//! exponential backoff. What an alert is and the cursor are the store's
//! (`store/alerts.rs`); the writer only wakes this task after a commit that
//! appended one, so a grant never waits for the webhook.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use irm_core::protocol::{ALERT_DELIVERY_VERSION, Alert, AlertDelivery};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::store::{AlertDeliveryEvent, Store};

/// A setting of `[alerts]` that cannot work, said in words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

/// The first retry waits this long; each next one twice as long as the last.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// ... up to this.
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// How long one POST may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The task looks at the store this often even unwoken (a wake-up lost to a
/// failed read, alerts another writer appended).
const IDLE_POLL: Duration = Duration::from_secs(60);
/// Alerts read per look.
const BATCH: u32 = 100;
/// The shortest HMAC key accepted.
pub const MIN_SECRET_BYTES: usize = 16;

/// The header naming the alert (its id, for the receiver to drop repeats).
pub const ID_HEADER: &str = "X-IRM-Alert-Id";
/// The header carrying `t=UNIX_SECONDS,v1=HEX`.
pub const SIGNATURE_HEADER: &str = irm_core::webhook::SIGNATURE_HEADER;

/// The webhook's HMAC key: zeroized on drop, never printed.
pub struct WebhookSecret(zeroize::Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// The key from its bytes; at least [`MIN_SECRET_BYTES`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, SettingsError> {
        let bytes = zeroize::Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SettingsError(format!(
                "the webhook secret must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            )));
        }
        Ok(Self(bytes))
    }

    /// Reads the key from a file only the server's user may read; trailing
    /// white space (the newline an editor or `echo` adds) is not part of it.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let bytes = crate::secret_file::read_secret_file(path).map_err(|e| {
            SettingsError(format!(
                "alerts.webhook_secret_file {}: {e}",
                path.display()
            ))
        })?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Self::new(bytes[..end].to_vec())
    }

    /// `t=T,v1=HEX(HMAC-SHA256(secret, "{t}.{body}"))` ([`irm_core::webhook`],
    /// which the CLI's digest signs with too).
    pub fn sign(&self, t: u64, body: &[u8]) -> String {
        irm_core::webhook::sign(&self.0, t, body)
    }

    /// What a receiver does ([`irm_core::webhook::verify`]).
    pub fn verify(&self, header: &str, body: &[u8], now: u64, max_age_secs: u64) -> bool {
        irm_core::webhook::verify(&self.0, header, body, now, max_age_secs)
    }
}

/// `[alerts]`: where and how alerts are delivered.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// The receiver (https only).
    pub webhook_url: reqwest::Url,
    /// The HMAC key.
    pub secret: Arc<WebhookSecret>,
    /// PEM certificates to trust besides the system's roots.
    pub ca_pem: Option<String>,
    /// The first retry's wait (doubling up to [`MAX_RETRY`]).
    pub first_retry: Duration,
}

impl AlertSettings {
    /// Settings for `url`, checked: https only, since an alert names people
    /// and files and the signature proves its origin but hides nothing.
    pub fn new(
        url: &str,
        secret: WebhookSecret,
        ca_pem: Option<String>,
    ) -> Result<Self, SettingsError> {
        let webhook_url = reqwest::Url::parse(url)
            .map_err(|e| SettingsError(format!("alerts.webhook_url {url:?} is not a URL: {e}")))?;
        if webhook_url.scheme() != "https" {
            return Err(SettingsError(format!(
                "alerts.webhook_url must be https:// (not {}://): alerts name people and files",
                webhook_url.scheme()
            )));
        }
        if let Some(pem) = &ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                SettingsError(format!(
                    "alerts.webhook_ca holds no usable PEM certificate: {e}"
                ))
            })?;
            if certs.is_empty() {
                return Err(SettingsError(
                    "alerts.webhook_ca holds no PEM certificate".into(),
                ));
            }
        }
        Ok(Self {
            webhook_url,
            secret: Arc::new(secret),
            ca_pem,
            first_retry: FIRST_RETRY,
        })
    }

    fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &self.ca_pem {
            builder =
                builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem.as_bytes())?);
        }
        builder.build()
    }
}

/// The kind of a failed delivery, for the audit record and the log: never
/// the URL or the receiver's answer.
fn error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_redirect() {
        "redirect"
    } else {
        "request"
    }
}

/// What the delivery task works with: the store, the clock that dates
/// each signature, and the server's public URL (named in each body).
#[derive(Clone)]
pub struct Deliverer {
    /// Where alerts and the cursor are.
    pub store: Arc<dyn Store>,
    /// Server time.
    pub clock: Arc<dyn Clock>,
    /// The key server's public URL.
    pub server: String,
}

/// Runs until `stop`: delivers every alert after the cursor, oldest first,
/// each until the receiver takes it (at least once: the receiver drops
/// repeats by `X-IRM-Alert-Id`), then waits for the writer's wake-up.
pub async fn delivery_loop(
    state: Deliverer,
    settings: AlertSettings,
    mut stop: watch::Receiver<bool>,
) {
    let client = match settings.client() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(target: "irm::alert", error = %e, "alert webhook: cannot build its HTTPS client; alerts are not delivered");
            return;
        }
    };
    let signal = state.store.alert_signal();
    // The host only: a URL may carry a token of the receiver's in its path.
    tracing::info!(
        target: "irm::alert",
        host = settings.webhook_url.host_str().unwrap_or(""),
        "alert webhook configured"
    );
    loop {
        let store = Arc::clone(&state.store);
        let pending = match tokio::task::spawn_blocking(move || store.undelivered_alerts(BATCH))
            .await
        {
            Ok(Ok(pending)) => pending,
            Ok(Err(e)) => {
                tracing::error!(target: "irm::alert", error = %e, "alert webhook: reading alerts failed");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(target: "irm::alert", error = %e, "alert webhook: the read task failed");
                Vec::new()
            }
        };
        if pending.is_empty() {
            tokio::select! {
                () = signal.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            continue;
        }
        for alert in pending {
            if !deliver(&state, &client, &settings, alert, &mut stop).await {
                return;
            }
        }
    }
}

/// POSTs one alert until the receiver answers 2xx; `false` if stopped first.
async fn deliver(
    state: &Deliverer,
    client: &reqwest::Client,
    settings: &AlertSettings,
    alert: Alert,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let id = alert.id;
    let body = match serde_json::to_vec(&AlertDelivery {
        version: ALERT_DELIVERY_VERSION,
        server: state.server.clone(),
        alert,
    }) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(target: "irm::alert", alert = id, error = %e, "alert webhook: the body does not serialise");
            return true;
        }
    };
    let mut delay = settings.first_retry;
    let mut attempts = 0u32;
    loop {
        attempts = attempts.saturating_add(1);
        let signature = settings.secret.sign(state.clock.now_secs(), &body);
        let request = client
            .post(settings.webhook_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, id.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.clone())
            .send();
        // A slow receiver does not hold shutdown open: the alert stays
        // after the cursor and goes again at the next start.
        let sent = tokio::select! {
            sent = request => sent,
            _ = stop.wait_for(|stopped| *stopped) => return false,
        };
        let failure = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("status_{}", response.status().as_u16())),
            Err(e) => Some(error_kind(&e).to_owned()),
        };
        let Some(kind) = failure else {
            tracing::info!(target: "irm::alert", alert = id, attempts, "alert delivered");
            record(state, AlertDeliveryEvent::Delivered { id, attempts }).await;
            return true;
        };
        tracing::warn!(
            target: "irm::alert",
            alert = id,
            attempts,
            error = %kind,
            retry_in_secs = delay.as_secs_f64(),
            "alert delivery failed; retrying"
        );
        if attempts == 1 {
            record(state, AlertDeliveryEvent::Failed { id, kind }).await;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stopped| *stopped) => return false,
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// Writes a delivery's outcome; a failure to write is logged (the alert is
/// then delivered again later: at least once).
async fn record(state: &Deliverer, event: AlertDeliveryEvent) {
    let store = Arc::clone(&state.store);
    let now_ms = state.clock.now_ms();
    match tokio::task::spawn_blocking(move || store.alert_delivery(event, now_ms)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(target: "irm::alert", error = %e, "alert webhook: recording a delivery failed")
        }
        Err(e) => {
            tracing::error!(target: "irm::alert", error = %e, "alert webhook: the record task failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        WebhookSecret::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn a_signature_verifies_only_for_its_body_its_key_and_a_recent_time() {
        let s = secret();
        let header = s.sign(1_800_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1800000000,v1="), "{header}");
        assert!(s.verify(&header, b"{\"a\":1}", 1_800_000_100, 300));
        assert!(
            !s.verify(&header, b"{\"a\":2}", 1_800_000_100, 300),
            "other body"
        );
        assert!(
            !s.verify(&header, b"{\"a\":1}", 1_800_001_000, 300),
            "too old"
        );
        let other = WebhookSecret::new(b"another key of sixteen+".to_vec()).unwrap();
        assert!(
            !other.verify(&header, b"{\"a\":1}", 1_800_000_100, 300),
            "other key"
        );
        assert!(!s.verify("t=1800000000", b"{\"a\":1}", 1_800_000_000, 300));
        assert_eq!(format!("{s:?}"), "WebhookSecret(..)");
    }

    #[test]
    fn only_https_and_a_long_enough_key_are_accepted() {
        let err = AlertSettings::new("http://siem.example/hook", secret(), None).unwrap_err();
        assert!(err.to_string().contains("must be https://"), "{err}");
        assert!(AlertSettings::new("https://siem.example/hook", secret(), None).is_ok());
        assert!(AlertSettings::new("not a url", secret(), None).is_err());
        assert!(WebhookSecret::new(b"short".to_vec()).is_err());
        let err =
            AlertSettings::new("https://x.example/", secret(), Some("junk".into())).unwrap_err();
        assert!(err.to_string().contains("webhook_ca"), "{err}");
    }

    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhook.key");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = WebhookSecret::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = WebhookSecret::from_file(&path).unwrap();
        // The newline is not part of the key.
        let plain = WebhookSecret::new(b"0123456789abcdef0123".to_vec()).unwrap();
        assert!(plain.verify(&s.sign(5, b"x"), b"x", 5, 0));
    }
}
