//! What the key server's load examples (`loadgen`, `watchers`) do as
//! clients, through the HTTP API: enroll a device, sign a request, and set
//! up two administrators and people created under their approval.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::protocol::{EnrollRequest, EnrollResponse, EnrollmentCode, RequestAnswer};
use irm_core::{DeviceSecretKey, RequestSignature, SigningSecretKey, enrollment_proof_message};
use irm_key_server::clock::{Clock, SystemClock};
use serde_json::json;

/// An enrolled device: its id and signing key.
#[derive(Clone)]
pub(crate) struct Device {
    pub(crate) id: String,
    pub(crate) signing: Arc<SigningSecretKey>,
}

impl Device {
    /// The `Authorization` value of a request signed now.
    pub(crate) fn authorization(&self, method: &str, path: &str, body: &[u8]) -> String {
        RequestSignature::sign(
            &self.signing,
            &self.id,
            method,
            path,
            SystemClock.now_secs(),
            body,
        )
        .expect("sign")
        .to_header_value()
    }
}

/// A signed `POST`; a `null` body sends none (a suspension, say).
pub(crate) async fn signed_post(
    http: &reqwest::Client,
    base: &str,
    device: &Device,
    path: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    let bytes = match body {
        serde_json::Value::Null => Vec::new(),
        body => serde_json::to_vec(body).expect("json"),
    };
    let mut request = http
        .post(format!("{base}{path}"))
        .header("authorization", device.authorization("POST", path, &bytes));
    if !bytes.is_empty() {
        request = request.header("content-type", "application/json");
    }
    request.body(bytes).send().await.expect("send")
}

/// Enrolls a new device of `user` with `code`.
pub(crate) async fn enroll(http: &reqwest::Client, base: &str, user: &str, code: &str) -> Device {
    let signing = SigningSecretKey::generate().expect("key");
    let secret = DeviceSecretKey::generate().expect("key");
    let device_public_key = URL_SAFE_NO_PAD.encode(secret.public_key().to_bytes());
    let proof = signing.sign(&enrollment_proof_message(user, code, &device_public_key));
    let request = EnrollRequest {
        user: user.into(),
        code: code.into(),
        device_name: "bench".into(),
        device_public_key,
        signing_public_key: signing.public_key_b64(),
        proof: URL_SAFE_NO_PAD.encode(proof),
    };
    let response = http
        .post(format!("{base}/v1/enroll"))
        .json(&request)
        .send()
        .await
        .expect("enroll");
    assert!(
        response.status().is_success(),
        "enroll {user}: {}",
        response.status()
    );
    let enrolled: EnrollResponse = response.json().await.expect("enroll body");
    Device {
        id: enrolled.device_id,
        signing: Arc::new(signing),
    }
}

/// A new server's two administrators: the bootstrap one (with its code)
/// and `admin2`, created at once, who approves the first one's requests.
pub(crate) async fn administrators(
    http: &reqwest::Client,
    base: &str,
    code: &str,
) -> (Device, Device) {
    let admin = enroll(http, base, "admin", code).await;
    let body = json!({"name": "admin2", "display_name": "admin2", "roles": ["admin"]});
    let code: EnrollmentCode = signed_post(http, base, &admin, "/v1/admin/users", &body)
        .await
        .json()
        .await
        .expect("the second admin's code");
    let approver = enroll(http, base, "admin2", &code.code).await;
    (admin, approver)
}

/// Creates a person (`body` of `POST /v1/admin/users`) under the
/// approver's approval and enrolls a device of theirs with the joined code.
pub(crate) async fn approved_person(
    http: &reqwest::Client,
    base: &str,
    (admin, approver): (&Device, &Device),
    body: &serde_json::Value,
) -> Device {
    let name = body["name"].as_str().expect("a name").to_owned();
    let filed: RequestAnswer = signed_post(http, base, admin, "/v1/admin/users", body)
        .await
        .json()
        .await
        .expect("a filed request");
    let path = format!("/v1/admin/requests/{}/approve", filed.request.id);
    let hash = json!({"action_hash": filed.request.action_hash});
    let approved: RequestAnswer = signed_post(http, base, approver, &path, &hash)
        .await
        .json()
        .await
        .expect("an approval");
    let code = format!(
        "{}-{}",
        filed.code_half.expect("the requester's half"),
        approved.code_half.expect("the approver's half")
    );
    enroll(http, base, &name, &code).await
}
