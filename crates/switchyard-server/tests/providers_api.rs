//! `GET /v0/management/providers`: the registry's capability list, with how to start each login.

mod common;

use common::{Options, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_providers::Registry;
use switchyard_testkit::kimi::MockKimi;

const CUSTOM: &str = "oauth-providers:\n  - name: gem\n    client-id: gem-client\n    issuer: https://id.gem.example\n    dialect: gemini\n    models: [gem-pro]\n";

fn provider<'a>(providers: &'a [Value], id: &str) -> &'a Value {
    providers.iter().find(|p| p["id"] == id).unwrap_or_else(|| panic!("{id} is not listed"))
}

#[tokio::test]
async fn lists_every_provider_with_its_logins_how_to_start_them_and_its_endpoints() {
    let server = start_with(Options { extra_yaml: CUSTOM, ..Default::default() }).await;
    let (status, body) = json(server.mgmt(Method::GET, "/providers").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, switchyard_server::capabilities_json(&Registry::new(&server.state.config.get())));
    let providers = body["providers"].as_array().unwrap();

    // Every built-in provider, in registry order, then the configured ones.
    let ids: Vec<&str> = providers.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = switchyard_providers::all().iter().map(|p| p.id()).collect();
    expected.push("gem");
    assert_eq!(ids, expected);

    for entry in providers {
        let id = entry["id"].as_str().unwrap();
        for login in entry["logins"].as_array().unwrap() {
            let (name, method) = (login["login"].as_str().unwrap(), login["method"].as_str().unwrap());
            let start = login["start"].as_str().unwrap();
            let expected = match login["kind"].as_str().unwrap() {
                "browser" | "device" => format!("GET /v0/management/{name}-auth-url?method={method}"),
                "import" => format!("POST /v0/management/{name}/import"),
                "cookie" => format!("POST /v0/management/{name}-auth-url"),
                other => panic!("{id}: unknown kind {other}"),
            };
            assert_eq!(start, expected, "{id}");
            assert_eq!(login["cli"], format!("switchyard login {name} --method {method}"));
            assert!(login["asks"].is_array() && login["label"].is_string(), "{login}");
        }
        // Each login name has exactly one default method (the one used without `?method=`).
        let logins = entry["logins"].as_array().unwrap();
        for name in logins.iter().map(|l| &l["login"]) {
            let defaults = logins.iter().filter(|l| &l["login"] == name && l["default"] == true).count();
            assert_eq!(defaults, 1, "{id}: login {name}");
        }
        if let Some(builtin) = switchyard_providers::by_id(id) {
            assert_eq!(entry["serves"], builtin.executor().is_some(), "{id}");
            let endpoints: Vec<Value> =
                builtin.endpoints().iter().map(|e| json!({"name": e.name, "default": e.default})).collect();
            assert_eq!(entry["endpoints"], Value::Array(endpoints), "{id}");
        }
    }

    let kimi = provider(providers, "kimi");
    assert_eq!(kimi["label"], "Kimi");
    assert_eq!(kimi["serves"], true);
    assert_eq!(kimi["file_types"], json!(["kimi"]));
    let login = &kimi["logins"][0];
    assert_eq!(login["start"], "GET /v0/management/kimi-auth-url?method=device");
    assert_eq!((login["kind"].as_str(), login["default"].as_bool()), (Some("device"), Some(true)));
    assert_eq!(
        kimi["endpoints"],
        json!([
            {"name": "device", "default": "https://auth.kimi.com/api/oauth/device_authorization"},
            {"name": "token", "default": "https://auth.kimi.com/api/oauth/token"},
            {"name": "api", "default": "https://api.kimi.com/coding"},
            {"name": "usage", "default": "https://api.kimi.com/coding/v1/usages"},
        ])
    );
    let gemini = provider(providers, "gemini-cli");
    assert_eq!(gemini["logins"][0]["asks"][0]["name"], "project_id");
    assert_eq!(gemini["logins"][0]["asks"][0]["required"], false);

    let gem = provider(providers, "gem");
    assert_eq!((gem["custom"].as_bool(), gem["serves"].as_bool()), (Some(true), Some(false)));
    assert_eq!(gem["logins"][0]["start"], "GET /v0/management/gem-auth-url?method=browser");
}

#[tokio::test]
async fn an_advertised_start_call_works_and_the_list_needs_the_management_key() {
    let mock = MockKimi::start().await;
    let server = start_with(Options { extra_yaml: &mock.upstream_urls_yaml(), ..Default::default() }).await;
    let (_, body) = json(server.mgmt(Method::GET, "/providers").send().await.unwrap()).await;
    let start = body["providers"].as_array().unwrap().iter().find(|p| p["id"] == "kimi").unwrap()["logins"][0]["start"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = start.strip_prefix("GET /v0/management").unwrap();
    let (status, started) = json(server.mgmt(Method::GET, path).send().await.unwrap()).await;
    assert_eq!((status, started["flow"].as_str()), (200, Some("device")), "{started}");

    let keyless = server.client.get(server.url("/v0/management/providers")).send().await.unwrap();
    assert_eq!(keyless.status(), 401);
}
