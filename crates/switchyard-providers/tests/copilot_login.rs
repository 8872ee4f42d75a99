//! GitHub Copilot login and refresh through the provider traits and the login engine, against
//! the GitHub mock (device flow answering HTTP 200 with `error`, user endpoint, Copilot token
//! exchange). Waits are bounded; the only timing check is a lower bound the engine guarantees.

mod common;
mod device_engine;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_no_leak, context};
use device_engine::{Engine, device_login, wait_until};
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{DevicePoll, LoginError, LoginOptions, RefreshError, Refresher, TokenRefresher};
use switchyard_providers::github_copilot::GithubCopilot;
use switchyard_providers::{ConfigLookup, Provider};
use switchyard_testkit::github::{
    CLIENT_ID, COPILOT_TOKEN_MARK, COPILOT_TOKEN_PATH, DEVICE_CODE_PATH, DEVICE_GRANT, ExchangeFault,
    GITHUB_TOKEN_MARK, MockGithub, NO_COPILOT_MESSAGE, PollAnswer, Subscription, TOKEN_PATH, USER_PATH, User,
    VERIFICATION_URI,
};

const FILE: &str = "github-copilot-octocat.json";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn header<'a>(request: &'a switchyard_testkit::RecordedRequest, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

/// No error text may carry a GitHub token, a Copilot token or a device code.
fn assert_clean(message: &str) {
    assert_no_leak(message, &[], &[GITHUB_TOKEN_MARK, COPILOT_TOKEN_MARK, "mock-gh-device-"]);
}

async fn engine(github: &MockGithub) -> Engine {
    Engine::start(&github.upstream_urls_yaml()).await
}

/// Starts a device login through the engine; returns its state.
async fn start(engine: &Engine) -> String {
    let started = engine.start_device(device_login(&GithubCopilot), LoginOptions::new()).await.expect("device code");
    assert!(started.state.starts_with("gh-"), "{}", started.state);
    started.state
}

async fn failed_login(github: &MockGithub) -> (Engine, LoginError) {
    let engine = engine(github).await;
    let state = start(&engine).await;
    let error = engine.outcome(&state).await.expect_err("the login fails");
    assert_clean(&error.to_string());
    assert!(engine.files().is_empty(), "nothing is written: {:?}", engine.files());
    (engine, error)
}

#[tokio::test]
async fn device_flow_follows_github_rules_and_the_file_holds_only_the_github_token() {
    let github = MockGithub::start().await;
    let ctx = context(&github.upstream_urls_yaml());
    let login = device_login(&GithubCopilot);

    let device = login.start(&ctx, &LoginOptions::new()).await.expect("device code");
    assert_eq!(device.verification_uri, VERIFICATION_URI);
    assert!(device.user_code.starts_with("MOCK-"), "{}", device.user_code);
    assert_eq!((device.expires_in, device.interval), (Duration::from_secs(900), Duration::from_secs(1)));
    assert!(!format!("{device:?}").contains(&device.device_code), "Debug hides the device code");
    let asked = &github.requests_to(DEVICE_CODE_PATH)[0];
    assert_eq!(asked.form(), pairs(&[("client_id", CLIENT_ID), ("scope", "read:user user:email")]));
    assert_eq!(header(asked, "accept"), "application/json", "without it GitHub answers form-encoded");

    // Pending answers come as HTTP 200 with an `error` member.
    assert!(matches!(login.poll(&ctx, &device).await, Ok(DevicePoll::Pending)));
    github.script_polls(&[PollAnswer::SlowDown]);
    assert!(matches!(login.poll(&ctx, &device).await, Ok(DevicePoll::SlowDown)));
    github.approve();
    let Ok(DevicePoll::Granted(grant)) = login.poll(&ctx, &device).await else { panic!("the approval is granted") };
    let polls = github.requests_to(TOKEN_PATH);
    assert_eq!(polls.len(), 3);
    let expected =
        pairs(&[("client_id", CLIENT_ID), ("device_code", &device.device_code), ("grant_type", DEVICE_GRANT)]);
    assert_eq!(polls[0].form(), expected);
    assert_eq!(header(&polls[0], "accept"), "application/json");
    let github_token = grant["access_token"].as_str().unwrap().to_owned();
    assert!(github_token.starts_with(GITHUB_TOKEN_MARK));

    let outcome = login.finish(&ctx, &device, grant, &LoginOptions::new()).await.expect("login finishes");
    assert_eq!(outcome.file_name, FILE);
    let fields = outcome.credential.fields();
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["type", "username", "email", "name", "access_token", "token_type", "scope", "timestamp"]);
    assert_eq!(fields["type"], "github-copilot");
    assert_eq!(fields["username"], "octocat");
    assert_eq!(fields["email"], "octocat@github.example");
    assert_eq!(fields["name"], "The Octocat");
    assert_eq!(fields["access_token"], github_token.as_str());
    assert_eq!(fields["token_type"], "bearer");
    assert_eq!(fields["scope"], "read:user,user:email", "GitHub's comma-separated list, as granted");
    let age_ms = chrono::Utc::now().timestamp_millis() - fields["timestamp"].as_i64().unwrap();
    assert!((0..60_000).contains(&age_ms), "timestamp is now in ms: {age_ms}");
    let saved = String::from_utf8(outcome.credential.to_json_pretty()).unwrap();
    assert!(!saved.contains(COPILOT_TOKEN_MARK), "the Copilot API token is never written: {saved}");

    let user = &github.requests_to(USER_PATH)[0];
    assert_eq!(header(user, "authorization"), format!("Bearer {github_token}"));
    assert!(user.headers.contains_key("user-agent"));
    // One exchange verified the subscription, with the `token` scheme and the editor headers.
    let exchanges = github.requests_to(COPILOT_TOKEN_PATH);
    assert_eq!(exchanges.len(), 1);
    assert_eq!(header(&exchanges[0], "authorization"), format!("token {github_token}"));
    assert_eq!(header(&exchanges[0], "editor-version"), "vscode/1.107.0");
    assert_eq!(header(&exchanges[0], "editor-plugin-version"), "copilot-chat/0.35.0");
    assert_eq!(header(&exchanges[0], "user-agent"), "GitHubCopilotChat/0.35.0");
}

#[tokio::test]
async fn pending_then_slow_down_then_success_saves_the_file_and_slows_polling_by_five_seconds() {
    let github = MockGithub::start().await;
    github.script_polls(&[PollAnswer::Pending, PollAnswer::SlowDown]);
    github.approve();
    let engine = engine(&github).await;
    let started = engine.start_device(device_login(&GithubCopilot), LoginOptions::new()).await.unwrap();
    assert_eq!(started.interval, Duration::from_secs(1));
    assert_eq!(started.expires_in, Duration::from_secs(900));
    assert_eq!(engine.outcome(&started.state).await, Ok(FILE.to_owned()));

    let polls = github.polls();
    let answers: Vec<PollAnswer> = polls.iter().map(|(_, answer)| *answer).collect();
    assert_eq!(answers, [PollAnswer::Pending, PollAnswer::SlowDown, PollAnswer::Approve]);
    // The engine never polls early: after slow_down the wait is the 1 s interval + 5 s.
    let after_slow_down = polls[2].0 - polls[1].0;
    assert!(after_slow_down >= Duration::from_secs(6), "polled again after {after_slow_down:?}");
    assert!(polls[1].0 - polls[0].0 >= Duration::from_secs(1));

    assert_eq!(engine.files(), [FILE]);
    assert_eq!(engine.mode(FILE), 0o600);
    let saved = engine.read(FILE);
    assert_eq!(saved["type"], "github-copilot");
    assert_eq!(saved["username"], "octocat");
    assert!(saved["access_token"].as_str().unwrap().starts_with(GITHUB_TOKEN_MARK));
}

#[tokio::test]
async fn an_expired_device_code_fails_with_a_clear_error_and_writes_nothing() {
    let github = MockGithub::start().await;
    github.script_polls(&[PollAnswer::Pending, PollAnswer::Expire]);
    let (_, error) = failed_login(&github).await;
    assert_eq!(error, LoginError::DeviceCodeExpired);
    assert!(error.to_string().contains("start the login again"), "{error}");
    assert_eq!(github.polls().len(), 2);
}

#[tokio::test]
async fn a_device_code_running_out_while_pending_ends_the_login() {
    let github = MockGithub::start().await;
    github.set_expires_in(2);
    let (_, error) = failed_login(&github).await;
    assert_eq!(error, LoginError::DeviceCodeExpired);
}

#[tokio::test]
async fn a_denied_login_fails_and_writes_nothing() {
    let github = MockGithub::start().await;
    github.set_fallback(PollAnswer::Deny);
    let (_, error) = failed_login(&github).await;
    assert!(matches!(error, LoginError::Denied(_)), "{error:?}");
    assert_eq!(github.requests_to(USER_PATH).len(), 0, "no token, no user lookup");
}

#[tokio::test]
async fn cancel_mid_poll_stops_polling_and_writes_nothing() {
    let github = MockGithub::start().await;
    let engine = engine(&github).await;
    let state = start(&engine).await;
    wait_until("the first poll", || !github.polls().is_empty()).await;
    assert!(engine.engine.sessions().cancel(&state), "a pending login can be cancelled");
    assert_eq!(engine.outcome(&state).await, Err(LoginError::Cancelled));
    let polls = github.polls().len();
    // Even if the user approves now, nothing more happens: watch for three poll intervals.
    github.approve();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(github.polls().len(), polls, "no poll after the cancel");
    assert!(engine.files().is_empty());
    assert_eq!(github.requests_to(COPILOT_TOKEN_PATH).len(), 0);
}

#[tokio::test]
async fn no_copilot_subscription_aborts_the_login_with_githubs_explanation() {
    for status in [403, 404] {
        let github = MockGithub::start().await;
        github.set_subscription(Subscription::Missing { status });
        github.approve();
        let (_, error) = failed_login(&github).await;
        let text = error.to_string();
        assert!(text.contains("no active Copilot subscription"), "{text}");
        assert!(text.contains(NO_COPILOT_MESSAGE), "{text}");
        assert_eq!(github.requests_to(COPILOT_TOKEN_PATH).len(), 1);
    }
}

#[tokio::test]
async fn a_failing_user_lookup_is_an_identity_error() {
    let github = MockGithub::start().await;
    github.fail_user_lookup(Some(503));
    github.approve();
    let (_, error) = failed_login(&github).await;
    assert_eq!(error, LoginError::Identity("GitHub's user endpoint answered HTTP 503".into()));
    assert_eq!(github.requests_to(COPILOT_TOKEN_PATH).len(), 0);
}

#[tokio::test]
async fn an_account_without_public_name_or_email_still_logs_in() {
    let github = MockGithub::start().await;
    github.set_user(User { login: "mona-lisa".into(), name: None, email: None });
    github.approve();
    let engine = engine(&github).await;
    let state = start(&engine).await;
    assert_eq!(engine.outcome(&state).await, Ok("github-copilot-mona-lisa.json".to_owned()));
    let saved = engine.read("github-copilot-mona-lisa.json");
    assert_eq!((saved["email"].clone(), saved["name"].clone()), (json!(""), json!("")));
}

#[tokio::test]
async fn a_refused_device_code_request_names_githubs_error() {
    let github = MockGithub::start().await;
    github.refuse_device_codes(Some("device_flow_disabled"));
    let engine = engine(&github).await;
    let error = engine.start_device(device_login(&GithubCopilot), LoginOptions::new()).await.expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("HTTP 200: device_flow_disabled"), "{text}");
    assert_eq!(github.polls().len(), 0, "no login was started");
}

#[tokio::test]
async fn relogin_keeps_the_users_settings_and_replaces_the_token() {
    let github = MockGithub::start().await;
    github.approve();
    let engine = engine(&github).await;
    let state = start(&engine).await;
    engine.outcome(&state).await.unwrap();
    let mut edited = engine.read(FILE);
    let first_token = edited["access_token"].clone();
    edited["prefix"] = json!("work");
    edited["priority"] = json!(5);
    engine.write(FILE, &edited);
    engine.store.rescan().await.unwrap();

    let state = start(&engine).await;
    engine.outcome(&state).await.unwrap();
    let saved = engine.read(FILE);
    assert_eq!((saved["prefix"].clone(), saved["priority"].clone()), (json!("work"), json!(5)));
    assert_ne!(saved["access_token"], first_token);
}

// ---------------------------------------------------------------------------------------------
// Refresh: re-validation of the GitHub token
// ---------------------------------------------------------------------------------------------

fn saved(github_token: &str) -> Credential {
    let mut credential = Credential::new("github-copilot");
    for (key, value) in [("username", "octocat"), ("access_token", github_token), ("token_type", "bearer")] {
        credential.fields_mut().insert(key.into(), value.into());
    }
    credential
}

fn refresher() -> Arc<dyn TokenRefresher> {
    GithubCopilot.refresher().expect("Copilot has a refresher")
}

#[tokio::test]
async fn refresh_revalidates_with_one_exchange_and_changes_no_field() {
    let github = MockGithub::start().await;
    let ctx = context(&github.upstream_urls_yaml());
    let token = github.issue_github_token();
    let fields = refresher().refresh(&ctx, &saved(&token)).await.expect("valid token");
    assert!(fields.is_empty(), "nothing to merge: {fields:?}");
    assert_eq!(github.exchanges(), 1);
    assert_eq!(refresher().refresh_lead(), None, "the GitHub token does not expire");
}

#[tokio::test]
async fn refresh_failures_are_classified_without_leaking_tokens() {
    let github = MockGithub::start().await;
    let ctx = context(&github.upstream_urls_yaml());
    let token = github.issue_github_token();

    github.set_subscription(Subscription::Missing { status: 403 });
    let error = refresher().refresh(&ctx, &saved(&token)).await.unwrap_err();
    assert!(matches!(&error, RefreshError::Transient(text) if text.contains(NO_COPILOT_MESSAGE)), "{error:?}");

    github.set_subscription(Subscription::Active);
    github.set_exchange_fault(Some(ExchangeFault::RateLimited { retry_after: 7 }));
    let error = refresher().refresh(&ctx, &saved(&token)).await.unwrap_err();
    assert_eq!(error, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    github.set_exchange_fault(Some(ExchangeFault::ServerError));
    let error = refresher().refresh(&ctx, &saved(&token)).await.unwrap_err();
    assert_eq!(error, RefreshError::Transient("Copilot token exchange failed: HTTP 502".into()));
    github.set_exchange_fault(None);

    let mut no_token = saved(&token);
    no_token.fields_mut().remove("access_token");
    assert_eq!(refresher().refresh(&ctx, &no_token).await, Err(RefreshError::NoRefreshToken));

    github.revoke_github_tokens();
    let error = refresher().refresh(&ctx, &saved(&token)).await.unwrap_err();
    assert!(matches!(error, RefreshError::Revoked(_)), "{error:?}");
    assert_clean(&error.to_string());
}

#[tokio::test]
async fn a_revoked_github_token_marks_the_account_for_relogin_and_leaves_the_file_byte_for_byte() {
    let github = MockGithub::start().await;
    let engine = engine(&github).await;
    let token = github.issue_github_token();
    let document: Value = serde_json::from_slice(&saved(&token).to_json_pretty()).unwrap();
    engine.write(FILE, &document);
    engine.store.rescan().await.unwrap();
    let before = engine.bytes(FILE);
    let refresher = Refresher::new(
        engine.store.clone(),
        Arc::new(ConfigLookup(engine.config.clone())),
        engine.config.clone(),
        Arc::new(switchyard_http::HttpClients::new()),
    );

    refresher.force_refresh(FILE).await.expect("a valid token re-validates");
    assert_eq!(engine.bytes(FILE), before, "an empty merge does not rewrite the file");
    assert_eq!(refresher.state(FILE).unwrap().needs_relogin, None);

    github.revoke_github_tokens();
    let error = refresher.force_refresh(FILE).await.expect_err("revoked");
    assert!(matches!(error, RefreshError::Revoked(_)), "{error:?}");
    let state = refresher.state(FILE).unwrap();
    assert!(state.needs_relogin.as_ref().is_some_and(|why| why.contains("log in again")), "{state:?}");
    assert_eq!(engine.bytes(FILE), before, "the file is left as it was");
}

#[test]
fn the_provider_declares_one_device_login_and_its_endpoints() {
    let methods = GithubCopilot.login_methods();
    assert_eq!(methods.len(), 1);
    assert_eq!((methods[0].id, methods[0].login.name()), ("device", "github-copilot"));
    assert!(methods[0].login.answers_to("copilot") && methods[0].login.answers_to("github"));
    let names: Vec<&str> = GithubCopilot.endpoints().iter().map(|e| e.name).collect();
    assert_eq!(names, ["device", "token", "user", "copilot-token", "api", "quota"]);
    assert!(GithubCopilot.models().iter().any(|m| m.id == "claude-sonnet-4.5" && m.owned_by == "github-copilot"));
}

#[tokio::test]
async fn the_mock_keeps_githubs_quirks() {
    let github = MockGithub::start().await;
    let http = reqwest::Client::new();
    // Without `Accept: application/json` GitHub's OAuth endpoints answer form-encoded.
    let answer = http.post(github.url(DEVICE_CODE_PATH)).form(&[("client_id", CLIENT_ID)]).send().await.unwrap();
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("application/x-www-form-urlencoded"));
    assert!(answer.text().await.unwrap().contains("user_code=MOCK-"));
    // Refusals are HTTP 200 with an `error` member.
    let poll = http.post(github.url(TOKEN_PATH)).header("accept", "application/json");
    let poll = poll.form(&[("client_id", CLIENT_ID), ("device_code", "nope"), ("grant_type", DEVICE_GRANT)]);
    let answer = poll.send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"], "incorrect_device_code");
    // The REST API wants a User-Agent; the exchange wants the `token` scheme.
    let token = github.issue_github_token();
    let user = http.get(github.url(USER_PATH)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(user.status(), 403);
    let exchange = http.get(github.url(COPILOT_TOKEN_PATH)).bearer_auth(&token).header("user-agent", "t");
    assert_eq!(exchange.send().await.unwrap().status(), 401);
    let exchange = http.get(github.url(COPILOT_TOKEN_PATH)).header("authorization", format!("token {token}"));
    let answer: Value = exchange.send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["endpoints"]["api"], github.base());
    assert!(
        answer["expires_at"].as_i64().is_some() && answer["token"].as_str().unwrap().starts_with(COPILOT_TOKEN_MARK)
    );
}
