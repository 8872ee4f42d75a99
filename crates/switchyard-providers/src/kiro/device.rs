//! AWS Builder ID and IAM Identity Center logins: the SSO-OIDC device flow with a client
//! registered per login (spec §2.1). RegisterClient, StartDeviceAuthorization and CreateToken
//! take JSON with camelCase members; CreateToken answers pending / slow_down / expired / denied
//! with HTTP 400 and an `error` member, which `device_http` reads whatever the status.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header;
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, DeviceSpec, LoginContext, LoginError, LoginOptions, LoginOutcome,
};

use super::{BUILDER_ID_START_URL, DEFAULT_REGION, ID, email_from_token, expiry_from, kiro_file_name, put};
use crate::device_http::{self, AWS};
use crate::oauth_http::{self, Standard, Wording, str_at};

/// What the Kiro IDE registers its public client for.
const SCOPES: &[&str] = &[
    "codewhisperer:completions",
    "codewhisperer:analysis",
    "codewhisperer:conversations",
    "codewhisperer:transformations",
    "codewhisperer:taskassist",
];
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// AWS device codes live 10 minutes; used when an answer has no `expiresIn`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Longest the engine waits for the user, whatever `expiresIn` says.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// Which directory the device flow signs in to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// AWS Builder ID: `https://view.awsapps.com/start` in `us-east-1`.
    BuilderId,
    /// IAM Identity Center: the organisation's start URL (`start_url`) and region (`region`).
    Idc,
}

impl DeviceKind {
    /// `auth_method` in the file.
    fn auth_method(self) -> &'static str {
        match self {
            DeviceKind::BuilderId => "builder-id",
            DeviceKind::Idc => "idc",
        }
    }

    /// The `<kind>` of `kiro-<kind>-<id>.json`.
    fn file_kind(self) -> &'static str {
        match self {
            DeviceKind::BuilderId => "aws",
            DeviceKind::Idc => "idc",
        }
    }
}

pub struct KiroDeviceLogin {
    kind: DeviceKind,
}

impl KiroDeviceLogin {
    pub fn new(kind: DeviceKind) -> Self {
        Self { kind }
    }

    /// Region and start URL: fixed for Builder ID, the user's (checked) for IdC.
    fn directory(&self, options: &LoginOptions) -> Result<(String, String), LoginError> {
        match self.kind {
            DeviceKind::BuilderId => Ok((DEFAULT_REGION.to_owned(), BUILDER_ID_START_URL.to_owned())),
            DeviceKind::Idc => {
                let option = |key: &str| options.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
                let start_url = option("start_url").ok_or_else(|| {
                    LoginError::InvalidInput(
                        "start_url is required for an IAM Identity Center login (https://<org>.awsapps.com/start)"
                            .into(),
                    )
                })?;
                let parsed = url::Url::parse(start_url).ok().filter(|u| u.scheme() == "https" && u.has_host());
                if parsed.is_none() {
                    return Err(LoginError::InvalidInput(format!(
                        "start_url {start_url:?} is not an https URL like https://<org>.awsapps.com/start"
                    )));
                }
                let region = option("region").unwrap_or(DEFAULT_REGION);
                if !super::valid_region(region) {
                    return Err(LoginError::InvalidInput(format!(
                        "region {region:?} is not an AWS region name like us-east-1"
                    )));
                }
                Ok((region.to_owned(), start_url.to_owned()))
            }
        }
    }
}

/// The device's client and directory, carried from `start` to `poll` and `finish`.
struct Carried<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    region: &'a str,
    start_url: &'a str,
}

impl<'a> Carried<'a> {
    fn of(device: &'a DeviceAuthorization) -> Result<Self, LoginError> {
        let text = |key: &str| {
            device
                .extra
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| LoginError::Provider(format!("device login lost its {key}; start the login again")))
        };
        Ok(Carried {
            client_id: text("client_id")?,
            client_secret: text("client_secret")?,
            region: text("region")?,
            start_url: text("start_url")?,
        })
    }
}

fn json_post(ctx: &LoginContext, url: String, body: &Value) -> reqwest::RequestBuilder {
    ctx.http.post(url).header(header::ACCEPT, "application/json").json(body)
}

#[async_trait::async_trait]
impl DeviceLogin for KiroDeviceLogin {
    fn spec(&self) -> DeviceSpec<'_> {
        DeviceSpec { name: ID, aliases: &[], state_prefix: "kiro-", max_wait: MAX_WAIT }
    }

    async fn start(&self, ctx: &LoginContext, options: &LoginOptions) -> Result<DeviceAuthorization, LoginError> {
        let (region, start_url) = self.directory(options)?;
        let base = super::oidc_base(ctx, &region);

        // A fresh public client per login: accounts never share a registration.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let register = json!({
            "clientName": format!("Switchyard-{nanos}"),
            "clientType": "public",
            "scopes": SCOPES,
            "grantTypes": [DEVICE_GRANT, "refresh_token"],
        });
        let reply = oauth_http::send(json_post(ctx, format!("{base}/client/register"), &register))
            .await
            .map_err(|e| LoginError::Provider(format!("Failed to register client: {e}")))?;
        if !reply.status.is_success() {
            return Err(LoginError::Provider(format!(
                "Failed to register client: SSO-OIDC answered {}",
                Standard.error_answer(&reply)
            )));
        }
        let registered = reply.json().unwrap_or(Value::Null);
        let (Some(client_id), Some(client_secret)) =
            (str_at(&registered, &["clientId"]), str_at(&registered, &["clientSecret"]))
        else {
            return Err(LoginError::Provider(
                "Failed to register client: the answer has no clientId/clientSecret".into(),
            ));
        };

        let authorize = json!({"clientId": client_id, "clientSecret": client_secret, "startUrl": start_url});
        let request = json_post(ctx, format!("{base}/device_authorization"), &authorize);
        let mut device = device_http::request_device_code(request, AWS, DEFAULT_LIFETIME).await?;
        let extra = &mut device.extra;
        extra.insert("client_id".into(), client_id.into());
        extra.insert("client_secret".into(), client_secret.into());
        extra.insert("region".into(), region.into());
        extra.insert("start_url".into(), start_url.into());
        Ok(device)
    }

    async fn poll(&self, ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError> {
        let carried = Carried::of(device)?;
        let body = json!({
            "clientId": carried.client_id,
            "clientSecret": carried.client_secret,
            "deviceCode": device.device_code,
            "grantType": DEVICE_GRANT,
        });
        let url = format!("{}/token", super::oidc_base(ctx, carried.region));
        device_http::poll_token(json_post(ctx, url, &body)).await
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        device: &DeviceAuthorization,
        grant: Map<String, Value>,
        _options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError> {
        let carried = Carried::of(device)?;
        let grant = Value::Object(grant);
        let access_token = oauth_http::access_token_of(&grant)
            .ok_or_else(|| LoginError::TokenExchange("token answer has no accessToken".into()))?;
        let email = email_from_token(access_token);

        let mut credential = Credential::new(ID);
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), access_token.into());
        put(fields, "refresh_token", super::refresh_token_of(&grant));
        fields.insert("expires_at".into(), expiry_from(&grant).into());
        fields.insert("auth_method".into(), self.kind.auth_method().into());
        fields.insert("provider".into(), "AWS".into());
        fields.insert("client_id".into(), carried.client_id.into());
        fields.insert("client_secret".into(), carried.client_secret.into());
        fields.insert("region".into(), carried.region.into());
        if self.kind == DeviceKind::Idc {
            fields.insert("start_url".into(), carried.start_url.into());
        }
        put(fields, "email", email.as_deref());
        fields.insert("last_refresh".into(), oauth_http::now().into());
        let file_name = kiro_file_name(self.kind.file_kind(), email.as_deref(), None);
        Ok(LoginOutcome { file_name, credential })
    }
}
