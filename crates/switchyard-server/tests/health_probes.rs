//! Probing accounts on request: `POST /test-request` sends one tiny request through the real
//! pipeline pinned to one account (no failover) and is recorded like any request; an
//! inspection probes every account and recommends reauth for a revoked one and keep for a good
//! one, and its recommendations are applied on request.

mod common;
mod health_support;
mod proxy_support;

use common::{Options, json, start_with};
use health_support::{auth_file, bearers, gateway, post};
use proxy_support::claude_file;
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_testkit::kimi::{Fault as KimiFault, MockKimi};
use switchyard_testkit::upstream::{Fault, MockUpstream};

const A: &str = "claude-a@example.com.json";
const B: &str = "claude-b@example.com.json";

async fn index_of(server: &common::TestServer, name: &str) -> String {
    auth_file(server, name).await["auth_index"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_test_request_is_pinned_to_its_account_and_recorded_like_any_request() {
    let upstream = MockUpstream::start().await;
    let files = [claude_file("a", "tok-a", json!({})), claude_file("b", "tok-b", json!({}))];
    let server = gateway(&upstream, &files, "").await;
    let b = index_of(&server, B).await;
    let (_, models) =
        json(server.mgmt(Method::GET, &format!("/auth-files/models?name={B}")).send().await.unwrap()).await;
    let first_model = models["models"][0]["id"].as_str().unwrap().to_owned();

    // Whatever the round-robin cursor says, every test request goes to b.
    for _ in 0..3 {
        let (status, body) = post(&server, "/test-request", json!({"auth_index": b})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["status"].as_u64(), body["model"].as_str()),
            (Some(200), Some(first_model.as_str())),
            "{body}"
        );
        assert!(!body["answer"].as_str().unwrap().is_empty(), "{body}");
        assert!(body["latency_ms"].is_u64() && body.get("error").is_none(), "{body}");
    }
    assert_eq!(bearers(&upstream), ["tok-b"; 3]);
    let sent = upstream.requests_to("/v1/messages")[0].json();
    let max_tokens = sent["max_tokens"].as_u64().unwrap();
    assert!((1..=16).contains(&max_tokens), "{sent}");
    assert!(!sent["stream"].as_bool().unwrap_or(false), "{sent}");
    assert_eq!(sent["model"], first_model);
    // A named model.
    let (status, body) = post(&server, "/test-request", json!({"auth_index": b, "model": "claude-sonnet-4-5"})).await;
    assert_eq!((status, body["model"].as_str()), (200, Some("claude-sonnet-4-5")), "{body}");

    // Recorded like any request: counted for the account, and evidence of its health.
    let entry = auth_file(&server, B).await;
    assert_eq!((entry["success"].as_u64(), entry["health"].as_str()), (Some(4), Some("healthy")), "{entry}");
    assert_eq!(auth_file(&server, A).await["success"], 0);

    // A failure is b's, with no failover to a.
    upstream.push_fault(Fault::status(500));
    let (status, body) = post(&server, "/test-request", json!({"auth_index": b})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 500, "{body}");
    assert!(body.get("answer").is_none() && !body["error"].as_str().unwrap().is_empty(), "{body}");
    assert_eq!(upstream.requests_to("/v1/messages").len(), 5, "one attempt, nothing else tried");
    assert_eq!(auth_file(&server, B).await["failed"], 1);
    assert_eq!(auth_file(&server, A).await["failed"], 0);
    // Its cooldown does not stop the next test request (asked for explicitly).
    let (_, body) = post(&server, "/test-request", json!({"auth_index": b})).await;
    assert_eq!(body["status"], 200, "{body}");
}

#[tokio::test]
async fn test_request_errors_are_precise() {
    const GEM: &str = "oauth-providers:\n  - name: gem\n    client-id: gem-client\n    issuer: https://id.gem.example\n    dialect: gemini\n    models: [gem-pro]\n";
    let upstream = MockUpstream::start().await;
    let files = [
        claude_file("a", "tok-a", json!({})),
        claude_file("off", "tok-off", json!({"disabled": true})),
        ("gem-a.json".to_owned(), json!({"type": "gem", "access_token": "t"})),
    ];
    let server = gateway(&upstream, &files, GEM).await;
    let cases = [
        (json!({}), 400, "auth_index is required"),
        (json!({"auth_index": 7}), 400, "auth_index must be a string"),
        (json!({"auth_index": "nope"}), 404, "auth not found"),
        (json!({"auth_index": index_of(&server, "claude-off@example.com.json").await}), 409, "disabled"),
        (json!({"auth_index": index_of(&server, "gem-a.json").await}), 422, "cannot be served"),
        (json!({"auth_index": index_of(&server, A).await, "model": "gpt-9"}), 400, "does not serve model gpt-9"),
        (json!({"auth_index": index_of(&server, A).await, "model": 5}), 400, "model must be a string"),
    ];
    for (body, status, message) in cases {
        let (got, answer) = post(&server, "/test-request", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert!(answer["error"].as_str().unwrap().contains(message), "{body} → {answer}");
    }
    assert!(upstream.requests_to("/v1/messages").is_empty(), "nothing was sent");
}

fn kimi_file(tokens: &switchyard_testkit::kimi::IssuedTokens, expired: &str, stamp: i64) -> Credential {
    let value = json!({
        "type": "kimi", "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "token_type": "Bearer", "scope": "kimi-code", "device_id": "6f1d2c3b-4a59-4e7d-8c9b-0a1b2c3d4e5f",
        "expired": expired, "timestamp": stamp, "disabled": false,
    });
    Credential::from_json(value.to_string().as_bytes()).unwrap()
}

fn result_for<'r>(run: &'r Value, auth_index: &str) -> &'r Value {
    run["results"].as_array().unwrap().iter().find(|r| r["auth_index"] == auth_index).unwrap_or_else(|| panic!("{run}"))
}

#[tokio::test]
async fn an_inspection_recommends_reauth_for_a_revoked_account_and_keep_for_a_good_one() {
    let mock = MockKimi::start().await;
    let server = start_with(Options { extra_yaml: &mock.upstream_urls_yaml(), ..Default::default() }).await;
    let (revoked, good) = ("kimi-1.json", "kimi-2.json");
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let store = &server.state.store;
    store.save(revoked, &kimi_file(&mock.issue_tokens(), "2020-01-01T00:00:00Z", 1)).await.unwrap();
    store.save(good, &kimi_file(&mock.issue_tokens(), &in_an_hour, 2)).await.unwrap();
    server.state.sync_accounts();
    let (revoked_index, good_index) = (index_of(&server, revoked).await, index_of(&server, good).await);

    // Nothing to show or apply before a run.
    let (status, body) = json(server.mgmt(Method::GET, "/inspection").send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"state": "none", "results": []})));
    let (status, body) = post(&server, "/inspection/apply", json!({"auth_index": good_index})).await;
    assert_eq!(status, 409, "{body}");

    mock.set_fault(KimiFault::RevokeRefreshTokens { status: 401 });
    let (status, started) = post(&server, "/inspection", json!({})).await;
    assert_eq!(status, 202, "{started}");
    let run = loop {
        let (status, run) = json(server.mgmt(Method::GET, "/inspection").send().await.unwrap()).await;
        assert_eq!(status, 200, "{run}");
        if run["state"] == "completed" {
            break run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!((run["id"].clone(), run["trigger"].as_str()), (started["id"].clone(), Some("manual")));
    assert_eq!(
        run["counts"],
        json!({"total": 2, "probed": 2, "keep": 1, "delete": 0, "disable": 0, "enable": 0, "reauth": 1}),
        "{run}"
    );

    let dead = result_for(&run, &revoked_index);
    assert_eq!((dead["action"].as_str(), dead["priority"].as_str()), (Some("reauth"), Some("critical")), "{dead}");
    assert!(dead["reason"].as_str().unwrap().contains("refresh token refused"), "{dead}");
    assert_eq!((dead["probe"]["kind"].as_str(), dead["health"].as_str()), (Some("request"), Some("needs_relogin")));
    assert!(dead["evidence"].as_array().unwrap().iter().any(|e| e["source"] == "refresh"), "{dead}");
    let fine = result_for(&run, &good_index);
    assert_eq!((fine["action"].as_str(), fine["probe"]["status"].as_u64()), (Some("keep"), Some(200)), "{fine}");
    assert_eq!(fine["health"], "healthy");
    // The results are sorted most urgent first.
    assert_eq!(run["results"][0]["auth_index"], revoked_index.as_str());
    // The probes went through the pipeline to the coding API for the good account only.
    assert_eq!(mock.api().requests().len(), 1);

    // Applying: the reauth is a mark, the keep does nothing; a bad action is refused.
    let (status, body) =
        post(&server, "/inspection/apply", json!({"items": [{"auth_index": revoked_index, "action": "explode"}]}))
            .await;
    assert_eq!((status, body["error"].as_str().map(|e| e.contains("items[0].action"))), (400, Some(true)), "{body}");
    let items = json!({"items": [{"auth_index": revoked_index}, {"auth_index": good_index}, {"auth_index": "nope"}]});
    let (status, applied) = post(&server, "/inspection/apply", items).await;
    assert_eq!(status, 200, "{applied}");
    let statuses: Vec<&str> =
        applied["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["executed", "skipped", "failed"], "{applied}");
    assert!(store.get(revoked).is_some(), "a reauth never deletes");
    let (_, run) = json(server.mgmt(Method::GET, "/inspection").send().await.unwrap()).await;
    assert_eq!(result_for(&run, &revoked_index)["applied"]["status"], "executed");

    // A run can be narrowed to one account, and waited for.
    let (status, run) = post(&server, &format!("/inspection?wait=1&auth_index={good_index}"), json!({})).await;
    assert_eq!((status, run["counts"]["total"].as_u64()), (200, Some(1)), "{run}");
    let (status, run) = post(&server, "/inspection?wait=true&provider=claude", json!({})).await;
    assert_eq!((status, run["counts"]["total"].as_u64()), (200, Some(0)), "{run}");
}
