//! LoginEngine end to end: a test `BrowserLogin` against a loopback "authorization server",
//! callbacks through the local listener or delivered like a pasted URL, and what ends up in the
//! auth dir.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, CallbackParams, DeliverError, LoginContext, LoginEngine, LoginError, LoginOptions,
    LoginOutcome, LoginSpec, SessionStatus, StartOptions, StartedLogin, parse_callback_input, s256_challenge,
};
use switchyard_config::ConfigHandle;
use tempfile::TempDir;
use tokio::sync::watch;

const PROVIDER: &str = "mock";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq)]
enum TokenMode {
    Ok,
    ServerError,
    Malformed,
}

/// The mock authorization server's memory.
struct AuthServer {
    /// code -> (PKCE challenge, account) from `/authorize`.
    codes: Mutex<HashMap<String, (String, String)>>,
    issued: AtomicUsize,
    token_requests: AtomicUsize,
    mode: Mutex<TokenMode>,
    /// While true, `/token` holds its answer.
    hold: watch::Sender<bool>,
}

/// `/authorize` plays the user approving in the browser: it redirects straight back to the
/// redirect URI with a fresh code.
async fn authorize(State(server): State<Arc<AuthServer>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let code = format!("code-{}", server.issued.fetch_add(1, Ordering::SeqCst) + 1);
    let account = q.get("login_hint").cloned().unwrap_or_else(|| "user1".into());
    server.codes.lock().unwrap().insert(code.clone(), (q["code_challenge"].clone(), account));
    let mut location = url::Url::parse(&q["redirect_uri"]).unwrap();
    location.query_pairs_mut().append_pair("code", &code).append_pair("state", &q["state"]);
    (StatusCode::FOUND, [(header::LOCATION, location.to_string())]).into_response()
}

async fn token(State(server): State<Arc<AuthServer>>, Form(form): Form<HashMap<String, String>>) -> Response {
    server.token_requests.fetch_add(1, Ordering::SeqCst);
    let _ = server.hold.subscribe().wait_for(|hold| !*hold).await;
    let mode = *server.mode.lock().unwrap();
    match mode {
        TokenMode::ServerError => return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
        TokenMode::Malformed => return (StatusCode::OK, "{\"access_token\": ").into_response(),
        TokenMode::Ok => {}
    }
    let code = &form["code"];
    let Some((challenge, account)) = server.codes.lock().unwrap().remove(code) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    };
    if s256_challenge(&form["code_verifier"]) != challenge {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    }
    let body = json!({"access_token": format!("at-{code}"), "refresh_token": format!("rt-{code}"), "expires_in": 3600, "account": account});
    axum::Json(body).into_response()
}

struct MockServer {
    base: String,
    state: Arc<AuthServer>,
}

impl MockServer {
    async fn start() -> MockServer {
        let state = Arc::new(AuthServer {
            codes: Mutex::default(),
            issued: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
            mode: Mutex::new(TokenMode::Ok),
            hold: watch::channel(false).0,
        });
        let app = axum::Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MockServer { base, state }
    }

    fn set_mode(&self, mode: TokenMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }
}

/// A PKCE login against [`MockServer`]; the account comes from the `account` option.
struct TestLogin {
    base: String,
}

#[async_trait::async_trait]
impl BrowserLogin for TestLogin {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: PROVIDER,
            aliases: &[],
            callback_route: PROVIDER,
            default_callback_port: 49_999,
            callback_path: "/callback",
            pkce: true,
        }
    }
    fn redirect_uri(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}/callback")
    }

    fn authorize_url(&self, _ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError> {
        let pkce = request.pkce.expect("the engine makes PKCE for a PKCE login");
        let account = request.options.get("account").map_or("user1", String::as_str);
        let url = url::Url::parse_with_params(
            &format!("{}/authorize", self.base),
            [
                ("state", request.state),
                ("redirect_uri", request.redirect_uri),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("login_hint", account),
            ],
        )
        .unwrap();
        Ok(url.into())
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError> {
        let form = [
            ("code", code),
            ("code_verifier", request.pkce.unwrap().verifier.as_str()),
            ("redirect_uri", request.redirect_uri),
        ];
        let exchange = |e: &dyn std::fmt::Display| LoginError::TokenExchange(e.to_string());
        let response =
            ctx.http.post(format!("{}/token", self.base)).form(&form).send().await.map_err(|e| exchange(&e))?;
        if !response.status().is_success() {
            return Err(LoginError::TokenExchange(format!("token endpoint answered {}", response.status())));
        }
        let body: Value = response.json().await.map_err(|_| exchange(&"malformed token response"))?;
        let account = body["account"].as_str().unwrap();
        let mut credential = switchyard_auth::Credential::new(PROVIDER);
        let fields = credential.fields_mut();
        fields.insert("email".into(), json!(format!("{account}@example.com")));
        fields.insert("access_token".into(), body["access_token"].clone());
        fields.insert("refresh_token".into(), body["refresh_token"].clone());
        fields.insert("expired".into(), json!((chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339()));
        Ok(LoginOutcome { file_name: format!("{PROVIDER}-{account}.json"), credential })
    }
}

struct Harness {
    _tmp: TempDir,
    dir: PathBuf,
    engine: Arc<LoginEngine>,
    mock: MockServer,
    login: Arc<TestLogin>,
}

impl Harness {
    async fn new() -> Harness {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("auths");
        let store = CredentialStore::open(dir.clone()).await.unwrap();
        let engine =
            LoginEngine::new(store, Arc::new(ConfigHandle::embedded()), Arc::new(switchyard_http::HttpClients::new()));
        let mock = MockServer::start().await;
        let login = Arc::new(TestLogin { base: mock.base.clone() });
        Harness { _tmp: tmp, dir, engine, mock, login }
    }

    async fn start(&self, listen: bool, timeout: Duration, account: Option<&str>) -> Result<StartedLogin, LoginError> {
        let mut options = LoginOptions::new();
        if let Some(account) = account {
            options.insert("account".into(), account.into());
        }
        let opts = StartOptions { listen, callback_port: listen.then_some(0), timeout, options };
        self.engine.start(self.login.clone(), opts).await
    }

    async fn start_ok(&self, listen: bool, account: Option<&str>) -> StartedLogin {
        self.start(listen, WAIT, account).await.unwrap_or_else(|err| panic!("start failed: {err}"))
    }

    /// The callback URL the browser would be sent to, without following it.
    async fn callback_url(&self, started: &StartedLogin) -> String {
        let no_redirects = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build();
        let response = no_redirects.unwrap().get(&started.url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        response.headers()[header::LOCATION].to_str().unwrap().to_owned()
    }

    /// Delivers `params` the way a pasted URL or `POST /oauth-callback` does.
    fn deliver(&self, state: &str, params: CallbackParams) -> Result<(), DeliverError> {
        self.engine.sessions().deliver(state, Some(PROVIDER), params)
    }

    async fn outcome(&self, state: &str) -> Result<String, LoginError> {
        tokio::time::timeout(WAIT, self.engine.wait(state)).await.expect("login did not settle in time")
    }

    fn status(&self, state: &str) -> SessionStatus {
        self.engine.sessions().status(state)
    }

    fn json_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        names
    }

    fn read(&self, name: &str) -> Value {
        serde_json::from_slice(&fs::read(self.dir.join(name)).unwrap()).unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Bounded wait until nothing accepts connections on `port`: the engine drops a login's
/// listener only when the login's task has ended.
async fn wait_closed(port: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "listener on {port} still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bounded wait for a condition driven by another task.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn login_through_the_local_listener_saves_a_0600_file() {
    let h = Harness::new().await;
    let started = h.start_ok(true, None).await;
    let port = started.listener_port.expect("listener started");
    assert_ne!(port, 0);
    assert_eq!(started.redirect_uri, format!("http://127.0.0.1:{port}/callback"));
    assert_eq!(started.state.len(), 32);
    assert_eq!(h.status(&started.state), SessionStatus::Pending);

    // The browser: authorize page, redirect to the listener, success page.
    let page = client().get(&started.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Authentication successful!"));

    assert_eq!(h.outcome(&started.state).await, Ok("mock-user1.json".into()));
    assert_eq!(h.status(&started.state), SessionStatus::Completed { file_name: "mock-user1.json".into() });
    assert_eq!(h.json_files(), ["mock-user1.json"]);
    assert_eq!(mode(&h.dir.join("mock-user1.json")), 0o600);
    let saved = h.read("mock-user1.json");
    assert_eq!(saved["type"], "mock");
    assert_eq!(saved["access_token"], "at-code-1");
    assert_eq!(saved["refresh_token"], "rt-code-1");
    assert_eq!(h.mock.token_requests(), 1);
    wait_closed(port).await;
}

#[tokio::test]
async fn pasted_callback_url_completes_the_login() {
    let h = Harness::new().await;
    let started = h.start_ok(false, None).await;
    assert_eq!(started.listener_port, None);
    assert_eq!(started.redirect_uri, "http://127.0.0.1:49999/callback");

    let pasted = h.callback_url(&started).await;
    let params = parse_callback_input(&format!("  {pasted}\n")).unwrap();
    assert_eq!(params.state.as_deref(), Some(started.state.as_str()));
    h.deliver(&started.state, params).unwrap();

    assert_eq!(h.outcome(&started.state).await, Ok("mock-user1.json".into()));
    assert_eq!(h.read("mock-user1.json")["access_token"], "at-code-1");
}

#[tokio::test]
async fn access_denied_fails_without_writing() {
    let h = Harness::new().await;
    let started = h.start_ok(false, None).await;
    let params =
        parse_callback_input(&format!("http://127.0.0.1/callback?error=access_denied&state={}", started.state));
    h.deliver(&started.state, params.unwrap()).unwrap();

    let err = h.outcome(&started.state).await.unwrap_err();
    assert_eq!(err, LoginError::Denied("access_denied".into()));
    assert_eq!(err.to_string(), "Authentication failed: access_denied");
    assert_eq!(h.status(&started.state), SessionStatus::Failed(err));
    assert!(h.json_files().is_empty());
    assert_eq!(h.mock.token_requests(), 0);
}

#[tokio::test]
async fn state_mismatch_fails_without_exchanging() {
    let h = Harness::new().await;
    let started = h.start_ok(false, None).await;
    let mut params = parse_callback_input(&h.callback_url(&started).await).unwrap();
    params.state = Some("someone-elses-state".into());
    h.deliver(&started.state, params).unwrap();

    let err = h.outcome(&started.state).await.unwrap_err();
    assert_eq!(err, LoginError::StateMismatch);
    assert_eq!(err.to_string(), "State code error");
    assert_eq!(h.status(&started.state), SessionStatus::Failed(err));
    assert!(h.json_files().is_empty());
    assert_eq!(h.mock.token_requests(), 0);
}

#[tokio::test]
async fn no_callback_in_time_fails_with_timeout() {
    let h = Harness::new().await;
    let started = h.start(true, Duration::from_millis(100), None).await.unwrap();
    let port = started.listener_port.unwrap();

    let err = h.outcome(&started.state).await.unwrap_err();
    assert_eq!(err, LoginError::Timeout, "the original error, not one rebuilt from its text");
    assert_eq!(err.to_string(), "Timeout waiting for OAuth callback");
    assert_eq!(h.status(&started.state), SessionStatus::Failed(LoginError::Timeout));
    let late = parse_callback_input(&h.callback_url(&started).await).unwrap();
    let refused = h.deliver(&started.state, late).unwrap_err();
    assert_eq!(refused, DeliverError::Failed(LoginError::Timeout));
    assert_eq!(refused.message(), "Timeout waiting for OAuth callback");
    wait_closed(port).await;
    assert!(h.json_files().is_empty());
}

#[tokio::test]
async fn cancel_before_the_callback_writes_nothing() {
    let h = Harness::new().await;
    let started = h.start_ok(true, None).await;
    let port = started.listener_port.unwrap();
    let callback = parse_callback_input(&h.callback_url(&started).await).unwrap();

    assert!(h.engine.sessions().cancel(&started.state));
    assert!(!h.engine.sessions().cancel(&started.state));
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::Cancelled));
    assert_eq!(h.deliver(&started.state, callback), Err(DeliverError::UnknownState));
    wait_closed(port).await;
    assert_eq!(h.status(&started.state), SessionStatus::Unknown);
    assert!(h.json_files().is_empty());
    assert_eq!(h.mock.token_requests(), 0);
}

#[tokio::test]
async fn cancel_during_the_token_exchange_writes_nothing() {
    let h = Harness::new().await;
    h.mock.state.hold.send_replace(true);
    let started = h.start_ok(true, None).await;
    let port = started.listener_port.unwrap();
    let callback = parse_callback_input(&h.callback_url(&started).await).unwrap();
    h.deliver(&started.state, callback).unwrap();
    wait_until("the token request", || h.mock.token_requests() == 1).await;

    assert!(h.engine.sessions().cancel(&started.state), "still pending while exchanging");
    h.mock.state.hold.send_replace(false);
    // The listener goes away when the login's task ends, i.e. after it would have saved.
    wait_closed(port).await;
    assert!(h.json_files().is_empty());
    assert_eq!(h.status(&started.state), SessionStatus::Unknown);
}

async fn exchange_failure_keeps_the_existing_file(mode: TokenMode, detail: &str) {
    let h = Harness::new().await;
    let existing = b"{\"type\":\"mock\",   \"access_token\":\"old\", \"note\":\"mine\"}\n";
    fs::write(h.dir.join("mock-user1.json"), existing).unwrap();
    h.mock.set_mode(mode);
    let started = h.start_ok(false, None).await;
    h.deliver(&started.state, parse_callback_input(&h.callback_url(&started).await).unwrap()).unwrap();

    let err = h.outcome(&started.state).await.unwrap_err();
    assert_eq!(err, LoginError::TokenExchange(detail.into()));
    assert_eq!(err.to_string(), format!("Failed to exchange authorization code for tokens: {detail}"));
    assert_eq!(h.status(&started.state), SessionStatus::Failed(err));
    assert_eq!(fs::read(h.dir.join("mock-user1.json")).unwrap(), existing);
    assert_eq!(h.json_files(), ["mock-user1.json"]);
}

#[tokio::test]
async fn token_endpoint_error_fails_and_keeps_the_existing_file() {
    exchange_failure_keeps_the_existing_file(
        TokenMode::ServerError,
        "token endpoint answered 500 Internal Server Error",
    )
    .await;
}

#[tokio::test]
async fn malformed_token_response_fails_and_keeps_the_existing_file() {
    exchange_failure_keeps_the_existing_file(TokenMode::Malformed, "malformed token response").await;
}

#[tokio::test]
async fn taken_callback_port_is_reported() {
    let h = Harness::new().await;
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let opts = StartOptions { listen: true, callback_port: Some(port), timeout: WAIT, options: LoginOptions::new() };
    let err = match h.engine.start(h.login.clone(), opts).await {
        Ok(started) => panic!("started a listener on taken port {:?}", started.listener_port),
        Err(err) => err,
    };
    assert!(matches!(&err, LoginError::PortInUse { port: p, reason } if *p == port && !reason.is_empty()), "{err}");
    assert!(err.to_string().starts_with(&format!("callback port {port} is already in use: ")), "{err}");
    assert!(h.json_files().is_empty());
}

#[tokio::test]
async fn relogin_keeps_user_fields_and_replaces_tokens() {
    let h = Harness::new().await;
    let before = json!({
        "type": "mock",
        "email": "user1@example.com",
        "access_token": "old-at",
        "refresh_token": "old-rt",
        "expired": "2020-01-01T00:00:00Z",
        "last_refresh": "2019-12-31T00:00:00Z",
        "prefix": "team",
        "proxy_url": "socks5://127.0.0.1:1080",
        "priority": 5,
        "weight": 3,
        "note": "work account",
        "headers": {"X-Team": "blue"},
        "disabled": true,
        "excluded_models": ["big-*"],
        "something_custom": {"kept": true}
    });
    fs::write(h.dir.join("mock-user1.json"), serde_json::to_vec_pretty(&before).unwrap()).unwrap();
    fs::set_permissions(h.dir.join("mock-user1.json"), fs::Permissions::from_mode(0o644)).unwrap();

    let started = h.start_ok(true, None).await;
    assert_eq!(client().get(&started.url).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(h.outcome(&started.state).await, Ok("mock-user1.json".into()));

    let after = h.read("mock-user1.json");
    assert_eq!(after["access_token"], "at-code-1");
    assert_eq!(after["refresh_token"], "rt-code-1");
    assert_ne!(after["expired"], before["expired"]);
    assert_eq!(after.get("last_refresh"), None, "token-lifecycle keys are not carried over");
    for key in ["prefix", "proxy_url", "priority", "weight", "note", "headers", "disabled", "excluded_models"] {
        assert_eq!(after[key], before[key], "{key}");
    }
    assert_eq!(after["something_custom"], before["something_custom"]);
    assert_eq!(mode(&h.dir.join("mock-user1.json")), 0o600);
    assert_eq!(h.json_files(), ["mock-user1.json"]);
}

#[tokio::test]
async fn a_second_callback_for_a_completed_login_is_refused() {
    let h = Harness::new().await;
    let started = h.start_ok(false, None).await;
    let callback = parse_callback_input(&h.callback_url(&started).await).unwrap();
    h.deliver(&started.state, callback.clone()).unwrap();
    assert_eq!(h.outcome(&started.state).await, Ok("mock-user1.json".into()));

    let again = h.deliver(&started.state, callback).unwrap_err();
    assert_eq!(again, DeliverError::AlreadyCompleted);
    assert_eq!((again.http_status(), again.message().as_str()), (409, "oauth flow is already completed"));
    assert_eq!(h.mock.token_requests(), 1);
}

#[tokio::test]
async fn concurrent_logins_of_one_provider_complete_independently() {
    let h = Harness::new().await;
    let a = h.start_ok(false, Some("alice")).await;
    let b = h.start_ok(false, Some("bob")).await;
    assert_ne!(a.state, b.state);
    let a_callback = parse_callback_input(&h.callback_url(&a).await).unwrap();
    let b_callback = parse_callback_input(&h.callback_url(&b).await).unwrap();

    h.deliver(&b.state, b_callback).unwrap();
    assert_eq!(h.outcome(&b.state).await, Ok("mock-bob.json".into()));
    assert_eq!(h.status(&a.state), SessionStatus::Pending, "b's completion leaves a pending");

    h.deliver(&a.state, a_callback).unwrap();
    assert_eq!(h.outcome(&a.state).await, Ok("mock-alice.json".into()));
    assert_eq!(h.status(&b.state), SessionStatus::Completed { file_name: "mock-bob.json".into() });
    assert_eq!(h.json_files(), ["mock-alice.json", "mock-bob.json"]);
    assert_eq!(h.read("mock-alice.json")["email"], "alice@example.com");
}

#[tokio::test]
async fn port_zero_without_a_listener_names_a_real_free_port() {
    let h = Harness::new().await;
    let opts = StartOptions { listen: false, callback_port: Some(0), timeout: WAIT, options: LoginOptions::new() };
    let started = h.engine.start(h.login.clone(), opts).await.unwrap();
    assert_eq!(started.listener_port, None);
    let port: u16 = started
        .redirect_uri
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/callback"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected redirect URI {}", started.redirect_uri));
    assert_ne!(port, 0, "a redirect URI must name a port the browser can be sent to");
    // And the pasted callback still completes the login.
    let pasted = h.callback_url(&started).await;
    h.deliver(&started.state, parse_callback_input(&pasted).unwrap()).unwrap();
    assert_eq!(h.outcome(&started.state).await, Ok("mock-user1.json".into()));
}
