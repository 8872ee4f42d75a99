//! `GET /v0/management/providers`: every provider this server offers (built in, and the
//! `oauth-providers` of its config) with each way to add an account and how to start it, the
//! upstream URLs it calls, and whether Switchyard can serve its accounts. Panels use it to show
//! only the logins the server can do, with the inputs each one asks for.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use switchyard_providers::{LoginCapability, LoginKind, Registry};

use crate::AppState;

/// `{"providers": [{id, label, file_types, custom, serves, logins: [{login, method, aliases,
/// label, kind, asks, default, start, cli}], endpoints: [{name, default}]}]}`.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(capabilities_json(&Registry::new(&state.config.get())))
}

/// The capability list as `GET /v0/management/providers` and `switchyard providers --json`
/// show it: [`Registry::capabilities`] with, for every login method, the management call
/// (`start`) and the command (`cli`) that start it.
pub fn capabilities_json(registry: &Registry) -> Value {
    let providers: Vec<Value> = registry
        .capabilities()
        .into_iter()
        .map(|capability| {
            let mut value = serde_json::to_value(&capability).unwrap_or(Value::Null);
            if let Some(logins) = value.get_mut("logins").and_then(Value::as_array_mut) {
                for (entry, login) in logins.iter_mut().zip(&capability.logins) {
                    entry["start"] = json!(start(login));
                    entry["cli"] = json!(format!("switchyard login {} --method {}", login.login, login.method));
                }
            }
            value
        })
        .collect();
    json!({ "providers": providers })
}

/// The management call that starts this login: a URL to open (browser and device logins, with
/// the asks as query parameters), an upload (imports), or a JSON body (cookies).
fn start(login: &LoginCapability) -> String {
    match login.kind {
        LoginKind::Browser | LoginKind::Device => {
            format!("GET /v0/management/{}-auth-url?method={}", login.login, login.method)
        }
        LoginKind::Import => format!("POST /v0/management/{}/import", login.login),
        LoginKind::Cookie => format!("POST /v0/management/{}-auth-url", login.login),
    }
}
