//! Vertex AI with a Google service account (CPA §1.6): the account is added by importing the
//! service-account JSON key; requests authenticate with access tokens minted from that key
//! (kept in memory only, see [`token_cache`]); the upstream speaks Gemini.
//!
//! The auth file is CPA's `vertex-<project>.json` (`vertex-<prefix>-<project>.json` with a
//! prefix): `{"service_account": {…the whole key…}, "project_id", "email", "location",
//! "type": "vertex", "label": "<project> (<email>)"[, "prefix"]}`.

pub(crate) mod service_account;
pub(crate) mod token_cache;

use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{ImportInput, ImportLogin, ImportSpec, Login, LoginContext, LoginError, LoginOutcome};

use self::service_account::ServiceAccount;
use crate::{Ask, AskKind, Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

/// Region used when the import names none (CPA's default).
pub const DEFAULT_LOCATION: &str = "us-central1";
/// `upstream-urls.vertex.api`: `{location}` is filled per account (see `exec/mod.rs`).
pub const API_BASE_TEMPLATE: &str = "https://{location}-aiplatform.googleapis.com";
/// `upstream-urls.vertex.token`.
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Longest location or prefix accepted (a DNS label).
const MAX_NAME_LEN: usize = 63;

const ASKS: &[Ask] = &[
    Ask { name: "file", label: "Service-account key (JSON)", kind: AskKind::File, required: true, default: None },
    Ask {
        name: "location",
        label: "Region (e.g. us-central1, europe-west4, global)",
        kind: AskKind::Text,
        required: false,
        default: Some(DEFAULT_LOCATION),
    },
    Ask { name: "prefix", label: "Model prefix", kind: AskKind::Text, required: false, default: None },
];

pub struct Vertex;

impl Provider for Vertex {
    fn id(&self) -> &'static str {
        "vertex"
    }

    fn label(&self) -> &'static str {
        "Vertex AI"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["vertex"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn login_methods(&self) -> Vec<LoginMethod> {
        vec![LoginMethod {
            id: "service-account",
            aliases: &["import"],
            label: "Import a service-account key",
            kind: LoginKind::Import,
            asks: ASKS,
            login: Login::Import(Arc::new(Vertex)),
        }]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        &[Endpoint { name: "api", default: API_BASE_TEMPLATE }, Endpoint { name: "token", default: TOKEN_URL }]
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::VertexExecutor))
    }

    /// The executor signs with the stored key: `service_account.client_email` and `.private_key`.
    fn required_fields(&self) -> &'static [crate::RequiredField] {
        &[crate::RequiredField {
            name: "service_account (with client_email and private_key)",
            present: |c| {
                c.fields().get("service_account").and_then(serde_json::Value::as_object).is_some_and(|key| {
                    ["client_email", "private_key"]
                        .iter()
                        .all(|k| key.get(*k).and_then(serde_json::Value::as_str).is_some_and(|v| !v.trim().is_empty()))
                })
            },
        }]
    }
}

#[async_trait::async_trait]
impl ImportLogin for Vertex {
    fn spec(&self) -> ImportSpec<'_> {
        ImportSpec { name: "vertex", aliases: &[] }
    }

    async fn import(&self, _ctx: &LoginContext, input: ImportInput<'_>) -> Result<LoginOutcome, LoginError> {
        let bytes = input
            .file
            .ok_or_else(|| LoginError::InvalidInput("file required: upload the service-account key (JSON)".into()))?;
        let option = |name: &str| input.options.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let location = option("location").unwrap_or(DEFAULT_LOCATION);
        check_location(location).map_err(LoginError::InvalidInput)?;
        let prefix = option("prefix");
        if let Some(prefix) = prefix {
            check_prefix(prefix).map_err(LoginError::InvalidInput)?;
        }
        let (account, key) =
            ServiceAccount::from_bytes(bytes).map_err(|problem| LoginError::InvalidInput(problem.to_string()))?;
        let credential = vertex_credential(&account, key, location, prefix);
        Ok(LoginOutcome { file_name: vertex_file_name(&account.project_id, prefix), credential })
    }

    /// A raw service-account key uploaded to `POST /auth-files` would be a file no provider owns;
    /// it is imported instead (default location).
    fn recognises_upload(&self, document: &Map<String, Value>) -> bool {
        document.get("type").and_then(Value::as_str).is_some_and(|t| t.trim() == "service_account")
    }
}

/// The auth file's content, in CPA's field order.
fn vertex_credential(
    account: &ServiceAccount,
    key: Map<String, Value>,
    location: &str,
    prefix: Option<&str>,
) -> Credential {
    let mut fields = Map::new();
    fields.insert("service_account".into(), Value::Object(key));
    fields.insert("project_id".into(), account.project_id.clone().into());
    fields.insert("email".into(), account.client_email.clone().into());
    fields.insert("location".into(), location.into());
    fields.insert("type".into(), "vertex".into());
    fields.insert("label".into(), format!("{} ({})", account.project_id, account.client_email).into());
    if let Some(prefix) = prefix {
        fields.insert("prefix".into(), prefix.into());
    }
    Credential::from_map(fields).expect("only strings and an object: always a valid credential")
}

/// `vertex-<project>.json` or `vertex-<prefix>-<project>.json`, the project sanitised as CPA
/// does: `/`, `\` and `:` become `_`, spaces become `-`.
pub fn vertex_file_name(project_id: &str, prefix: Option<&str>) -> String {
    let project: String = project_id
        .trim()
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' => '_',
            ' ' => '-',
            other => other,
        })
        .collect();
    match prefix.map(str::trim).filter(|p| !p.is_empty()) {
        Some(prefix) => format!("vertex-{prefix}-{project}.json"),
        None => format!("vertex-{project}.json"),
    }
}

/// A Vertex location is a plain region name (`us-central1`, `europe-west4`, `global`): it ends
/// up in a host name, so nothing else is let through.
pub(crate) fn check_location(location: &str) -> Result<(), String> {
    let plain = location.len() <= MAX_NAME_LEN
        && location.starts_with(|c: char| c.is_ascii_lowercase())
        && !location.ends_with('-')
        && location.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if plain {
        return Ok(());
    }
    let shown: String = location.chars().take(MAX_NAME_LEN).collect();
    Err(format!(
        "invalid location: {shown:?} is not a region name (lower-case letters, digits and '-', e.g. us-central1, \
         europe-west4, global)"
    ))
}

/// A prefix becomes part of the file name and of model names (`<prefix>/<model>`).
fn check_prefix(prefix: &str) -> Result<(), String> {
    let plain = prefix.len() <= MAX_NAME_LEN
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !prefix.starts_with('.');
    if plain {
        return Ok(());
    }
    let shown: String = prefix.chars().take(MAX_NAME_LEN).collect();
    Err(format!("invalid prefix: {shown:?} may only hold letters, digits, '-', '_' and '.' (not first)"))
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gemini-2.5-pro", "Gemini 2.5 Pro"),
    model("gemini-2.5-flash", "Gemini 2.5 Flash"),
    model("gemini-2.5-flash-lite", "Gemini 2.5 Flash Lite"),
    model("gemini-3-pro-preview", "Gemini 3 Pro Preview"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "google", dialect::GEMINI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sanitise_the_project_as_cpa_does() {
        assert_eq!(vertex_file_name("acme-prod-42", None), "vertex-acme-prod-42.json");
        assert_eq!(vertex_file_name("org/a\\b:c d", None), "vertex-org_a_b_c-d.json");
        assert_eq!(vertex_file_name("acme", Some("vx")), "vertex-vx-acme.json");
        assert_eq!(vertex_file_name(" acme ", Some("  ")), "vertex-acme.json");
    }

    #[test]
    fn locations_are_plain_region_names() {
        for good in ["us-central1", "europe-west4", "global", "asia-northeast1", "me-central2"] {
            assert_eq!(check_location(good), Ok(()), "{good}");
        }
        for bad in ["", "US-CENTRAL1", "us-central1.evil.example", "us central1", "-us", "us-", "1us", "us/central"] {
            let error = check_location(bad).unwrap_err();
            assert!(error.starts_with("invalid location: "), "{error}");
        }
        assert!(check_location(&"a".repeat(64)).is_err());
    }

    #[test]
    fn prefixes_stay_inside_a_file_name() {
        for good in ["vx", "team_a", "a.b-c", "X1"] {
            assert_eq!(check_prefix(good), Ok(()), "{good}");
        }
        for bad in ["a/b", "..", ".hidden", "a b", "ä"] {
            assert!(check_prefix(bad).unwrap_err().starts_with("invalid prefix: "), "{bad}");
        }
    }
}
