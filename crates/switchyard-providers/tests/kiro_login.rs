//! Kiro logins through the provider traits and the login engine, against the Kiro mock (AWS
//! SSO-OIDC per region, the Kiro auth service): Builder ID and IdC device flows, Google / GitHub
//! social login with the pasted `kiro://` callback, and the IDE token import.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{assert_no_leak, authorize_redirect, context, query_value};
use serde_json::{Value, json};
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, CallbackParams, DeviceLogin, DevicePoll, ImportLogin, Login, LoginContext,
    LoginEngine, LoginError, LoginOptions, Pkce, SessionStatus, StartOptions, new_state, parse_callback_input,
};
use switchyard_config::ConfigHandle;
use switchyard_providers::kiro::{Kiro, REDIRECT_URI};
use switchyard_providers::{Provider, Registry};
use switchyard_testkit::kiro::{MockKiro, PROFILE_ARN, PollAnswer, TOKEN_MARK, oidc_path};
use url::Url;

const WAIT: Duration = Duration::from_secs(30);
const EMAIL: &str = "dev@example.com";

fn method(id: &str) -> Login {
    Kiro.login_methods().into_iter().find(|m| m.id == id).unwrap_or_else(|| panic!("no method {id}")).login
}

fn device(id: &str) -> Arc<dyn DeviceLogin> {
    match method(id) {
        Login::Device(login) => login,
        _ => panic!("{id} is not a device login"),
    }
}

fn browser(id: &str) -> Arc<dyn BrowserLogin> {
    match method(id) {
        Login::Browser(login) => login,
        _ => panic!("{id} is not a browser login"),
    }
}

fn import() -> Arc<dyn ImportLogin> {
    match method("import") {
        Login::Import(login) => login,
        _ => panic!("import is not an import"),
    }
}

fn options(pairs: &[(&str, &str)]) -> LoginOptions {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn keys(value: &serde_json::Map<String, Value>) -> Vec<&str> {
    value.keys().map(String::as_str).collect()
}

fn no_leak(message: &str) {
    assert_no_leak(message, &[], &[TOKEN_MARK]);
}

/// An auth dir (removed at the end), a config file pointing at the mock, and an engine on them.
struct EngineEnv {
    dir: PathBuf,
    engine: Arc<LoginEngine>,
    store: Arc<CredentialStore>,
}

impl Drop for EngineEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl EngineEnv {
    async fn start(mock: &MockKiro) -> EngineEnv {
        let dir = std::env::temp_dir().join(format!("switchyard-kiro-{}", new_state()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yaml");
        std::fs::write(&config, mock.upstream_urls_yaml()).unwrap();
        let (handle, _) = ConfigHandle::from_file(&config).unwrap();
        let store = CredentialStore::open(dir.join("auths")).await.unwrap();
        let engine = LoginEngine::new(store.clone(), Arc::new(handle), Arc::new(switchyard_http::HttpClients::new()));
        EngineEnv { dir, engine, store }
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("auths"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read(&self, name: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("auths").join(name)).unwrap()).unwrap()
    }

    async fn wait(&self, state: &str) -> Result<String, LoginError> {
        tokio::time::timeout(WAIT, self.engine.wait(state)).await.expect("the login ends in time")
    }
}

/// Polls `check` until it holds (bounded).
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Builder ID / IdC

#[tokio::test]
async fn builder_id_registers_a_fresh_client_per_login_and_saves_the_aws_file() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some(EMAIL));
    let ctx = context(&mock.upstream_urls_yaml());
    let login = device("builder-id");
    assert_eq!(login.spec().state_prefix, "kiro-");

    let authorization = login.start(&ctx, &LoginOptions::new()).await.expect("device code");
    assert!(authorization.user_code.starts_with("MOCK-"));
    assert_eq!(authorization.verification_uri, "https://device.sso.us-east-1.amazonaws.com/");
    assert_eq!(
        authorization.display_uri(),
        format!("https://device.sso.us-east-1.amazonaws.com/?user_code={}", authorization.user_code)
    );
    assert_eq!((authorization.expires_in.as_secs(), authorization.interval.as_secs()), (600, 1));
    let debug = format!("{authorization:?}");
    assert!(!debug.contains("client-secret") && !debug.contains("device-code"), "{debug}");

    let register = mock.requests_to(&oidc_path("us-east-1", "client/register"));
    assert_eq!(register.len(), 1);
    let body = register[0].json();
    assert_eq!(body["clientType"], "public");
    assert_eq!(
        body["scopes"],
        json!([
            "codewhisperer:completions",
            "codewhisperer:analysis",
            "codewhisperer:conversations",
            "codewhisperer:transformations",
            "codewhisperer:taskassist"
        ])
    );
    assert_eq!(body["grantTypes"], json!(["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]));
    let authorize = mock.requests_to(&oidc_path("us-east-1", "device_authorization"));
    let authorize = authorize[0].json();
    assert_eq!(authorize["startUrl"], "https://view.awsapps.com/start");
    assert!(authorize["clientId"].as_str().unwrap().starts_with("mock-kiro-client-"));

    // Before the user confirms: pending (HTTP 400 authorization_pending).
    assert!(matches!(login.poll(&ctx, &authorization).await, Ok(DevicePoll::Pending)));
    assert!(mock.approve(&authorization.user_code));
    tokio::time::sleep(Duration::from_millis(600)).await; // the mock's slow_down threshold, not an assertion
    let DevicePoll::Granted(grant) = login.poll(&ctx, &authorization).await.expect("granted") else {
        panic!("not granted")
    };
    let poll = mock.requests_to(&oidc_path("us-east-1", "token"));
    let poll = poll.last().unwrap().json();
    assert_eq!(poll["grantType"], "urn:ietf:params:oauth:grant-type:device_code");
    assert_eq!(poll["clientId"], authorize["clientId"]);
    assert!(poll["deviceCode"].as_str().unwrap().starts_with("mock-kiro-device-code-"));

    let outcome = login.finish(&ctx, &authorization, grant, &LoginOptions::new()).await.expect("finished");
    assert_eq!(outcome.file_name, "kiro-aws-dev@example.com.json");
    let fields = outcome.credential.fields();
    assert_eq!(
        keys(fields),
        [
            "type",
            "access_token",
            "refresh_token",
            "expires_at",
            "auth_method",
            "provider",
            "client_id",
            "client_secret",
            "region",
            "email",
            "last_refresh"
        ]
    );
    assert_eq!(fields["type"], "kiro");
    assert_eq!(fields["auth_method"], "builder-id");
    assert_eq!(fields["provider"], "AWS");
    assert_eq!(fields["region"], "us-east-1");
    assert_eq!(fields["email"], EMAIL);
    assert_eq!(fields["client_id"], authorize["clientId"]);
    assert!(fields["client_secret"].as_str().unwrap().starts_with("mock-kiro-client-secret-"));
    assert!(fields["refresh_token"].as_str().unwrap().starts_with("mock-kiro-rt-"));
    let lifetime = outcome.credential.expiry().unwrap() - Utc::now();
    assert!(lifetime > chrono::Duration::minutes(59) && lifetime <= chrono::Duration::hours(1), "{lifetime}");

    // A second login registers a second client.
    login.start(&ctx, &LoginOptions::new()).await.unwrap();
    let clients: Vec<Value> = mock
        .requests_to(&oidc_path("us-east-1", "device_authorization"))
        .iter()
        .map(|r| r.json()["clientId"].clone())
        .collect();
    assert_ne!(clients[0], clients[1]);
}

#[tokio::test]
async fn opaque_tokens_fall_back_to_a_numeric_id() {
    let mock = MockKiro::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    let login = device("builder-id");
    mock.script_polls(&[PollAnswer::Approve]);
    let authorization = login.start(&ctx, &LoginOptions::new()).await.unwrap();
    let DevicePoll::Granted(grant) = login.poll(&ctx, &authorization).await.unwrap() else { panic!("not granted") };
    let outcome = login.finish(&ctx, &authorization, grant, &LoginOptions::new()).await.unwrap();
    let id = outcome.file_name.strip_prefix("kiro-aws-").and_then(|n| n.strip_suffix(".json")).unwrap();
    assert!(id.len() == 5 && id.chars().all(|c| c.is_ascii_digit()), "{}", outcome.file_name);
    assert!(!outcome.credential.fields().contains_key("email"), "no email is invented");
}

#[tokio::test]
async fn pending_then_slow_down_then_approval_through_the_engine_writes_a_0600_file() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some(EMAIL));
    let env = EngineEnv::start(&mock).await;
    mock.script_polls(&[PollAnswer::Pending, PollAnswer::SlowDown, PollAnswer::Approve]);
    let started = env.engine.start_device(device("builder-id"), LoginOptions::new()).await.unwrap();
    assert!(started.state.starts_with("kiro-"), "{}", started.state);
    assert!(matches!(env.engine.sessions().status(&started.state), SessionStatus::Pending));

    let file = env.wait(&started.state).await.expect("login succeeds");
    assert_eq!(file, "kiro-aws-dev@example.com.json");
    assert_eq!(mock.count(&oidc_path("us-east-1", "token")), 3, "pending, slow_down, then the grant");
    let path = env.dir.join("auths").join(&file);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let saved = env.read(&file);
    assert_eq!(saved["type"], "kiro");
    assert_eq!(saved["auth_method"], "builder-id");
    assert!(env.store.get(&file).is_some());
}

#[tokio::test]
async fn expired_and_denied_device_codes_fail_precisely_and_write_nothing() {
    let mock = MockKiro::start().await;
    let env = EngineEnv::start(&mock).await;

    mock.script_polls(&[PollAnswer::Pending, PollAnswer::Expire]);
    let started = env.engine.start_device(device("builder-id"), LoginOptions::new()).await.unwrap();
    let error = env.wait(&started.state).await.unwrap_err();
    assert_eq!(error, LoginError::DeviceCodeExpired);
    assert_eq!(error.to_string(), "device code expired before the login was confirmed; start the login again");

    mock.script_polls(&[PollAnswer::Deny]);
    let started = env.engine.start_device(device("builder-id"), LoginOptions::new()).await.unwrap();
    let error = env.wait(&started.state).await.unwrap_err();
    assert_eq!(error, LoginError::Denied("the user denied the device login".into()));
    no_leak(&error.to_string());
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[tokio::test]
async fn a_device_code_past_its_lifetime_expires() {
    let mock = MockKiro::start().await;
    mock.set_device_lifetime(1);
    let env = EngineEnv::start(&mock).await;
    let started = env.engine.start_device(device("builder-id"), LoginOptions::new()).await.unwrap();
    assert_eq!(started.expires_in, Duration::from_secs(1));
    assert_eq!(env.wait(&started.state).await.unwrap_err(), LoginError::DeviceCodeExpired);
    assert!(env.files().is_empty());
}

#[tokio::test]
async fn cancelling_mid_poll_stops_polling_and_writes_nothing() {
    let mock = MockKiro::start().await;
    let env = EngineEnv::start(&mock).await;
    let started = env.engine.start_device(device("builder-id"), LoginOptions::new()).await.unwrap();
    let token_path = oidc_path("us-east-1", "token");
    eventually("the first poll", || mock.count(&token_path) >= 1).await;
    assert!(env.engine.sessions().cancel(&started.state));
    assert_eq!(env.wait(&started.state).await.unwrap_err(), LoginError::Cancelled);
    let polls = mock.count(&token_path);
    assert!(mock.approve(&started.user_code));
    // Several poll intervals: a loop that kept running would poll and save by now.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(mock.count(&token_path), polls, "no poll after the cancel");
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[tokio::test]
async fn idc_uses_the_start_url_and_the_region_host() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some("ops@acme.example"));
    let ctx = context(&mock.upstream_urls_yaml());
    let login = device("idc");
    let opts = options(&[("start_url", "https://acme.awsapps.com/start"), ("region", "eu-west-1")]);
    mock.script_polls(&[PollAnswer::Approve]);
    let authorization = login.start(&ctx, &opts).await.expect("device code");
    assert_eq!(authorization.verification_uri, "https://device.sso.eu-west-1.amazonaws.com/");
    assert_eq!(mock.count(&oidc_path("eu-west-1", "client/register")), 1);
    assert_eq!(mock.count(&oidc_path("us-east-1", "client/register")), 0);
    let sent = mock.requests_to(&oidc_path("eu-west-1", "device_authorization"))[0].json();
    assert_eq!(sent["startUrl"], "https://acme.awsapps.com/start");
    let DevicePoll::Granted(grant) = login.poll(&ctx, &authorization).await.unwrap() else { panic!("not granted") };
    let outcome = login.finish(&ctx, &authorization, grant, &opts).await.unwrap();
    assert_eq!(outcome.file_name, "kiro-idc-ops@acme.example.json");
    let fields = outcome.credential.fields();
    assert_eq!(fields["auth_method"], "idc");
    assert_eq!(fields["region"], "eu-west-1");
    assert_eq!(fields["start_url"], "https://acme.awsapps.com/start");
    assert!(fields["client_id"].is_string() && fields["client_secret"].is_string());
}

#[tokio::test]
async fn idc_input_is_checked_before_any_call() {
    let mock = MockKiro::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    let login = device("idc");
    let cases = [
        (options(&[]), "start_url is required for an IAM Identity Center login (https://<org>.awsapps.com/start)"),
        (
            options(&[("start_url", "http://acme.awsapps.com/start")]),
            "start_url \"http://acme.awsapps.com/start\" is not an https URL like https://<org>.awsapps.com/start",
        ),
        (
            options(&[("start_url", "https://acme.awsapps.com/start"), ("region", "eu-west-1/../x")]),
            "region \"eu-west-1/../x\" is not an AWS region name like us-east-1",
        ),
    ];
    for (opts, want) in cases {
        let error = login.start(&ctx, &opts).await.unwrap_err();
        assert_eq!(error, LoginError::InvalidInput(want.into()));
    }
    assert!(mock.requests().is_empty(), "nothing reached SSO-OIDC");

    // A start URL the directory does not know is the server's refusal, named.
    let opts = options(&[("start_url", "https://acme.example.com/start")]);
    let error = login.start(&ctx, &opts).await.unwrap_err().to_string();
    assert!(error.contains("HTTP 400: invalid_request (Invalid start URL)"), "{error}");
    no_leak(&error);
}

// ---------------------------------------------------------------------------------------------
// Social

struct Social {
    mock: MockKiro,
    ctx: LoginContext,
    login: Arc<dyn BrowserLogin>,
    pkce: Pkce,
    state: String,
    options: LoginOptions,
}

impl Social {
    async fn start(idp: &str) -> Social {
        let mock = MockKiro::start().await;
        let ctx = context(&mock.upstream_urls_yaml());
        Social {
            mock,
            ctx,
            login: browser(idp),
            pkce: Pkce::generate(),
            state: new_state(),
            options: LoginOptions::new(),
        }
    }

    fn request(&self) -> AuthorizeRequest<'_> {
        AuthorizeRequest {
            state: &self.state,
            pkce: Some(&self.pkce),
            redirect_uri: REDIRECT_URI,
            options: &self.options,
        }
    }

    /// The browser's part: the `kiro://` URL it ends on, which the user pastes.
    async fn pasted(&self) -> String {
        let url = self.login.authorize_url(&self.ctx, &self.request()).unwrap();
        authorize_redirect(&url).await
    }
}

#[tokio::test]
async fn google_login_builds_the_kiro_url_and_exchanges_the_pasted_code() {
    let h = Social::start("google").await;
    assert!(!h.login.local_callback(), "a kiro:// redirect has no local listener");
    assert_eq!(h.login.redirect_uri(9876), REDIRECT_URI);
    assert_eq!(h.login.spec().callback_route, "kiro");

    let url = Url::parse(&h.login.authorize_url(&h.ctx, &h.request()).unwrap()).unwrap();
    assert_eq!(url.as_str().split('?').next().unwrap(), h.mock.url("/social/login"));
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let want: Vec<(String, String)> = [
        ("idp", "Google"),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", h.pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", h.state.as_str()),
        ("prompt", "select_account"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(params, want);

    let pasted = h.pasted().await;
    assert!(pasted.starts_with("kiro://kiro.kiroAgent/authenticate-success?code="), "{pasted}");
    let callback = parse_callback_input(&pasted).expect("the paste parser takes kiro:// URLs");
    assert_eq!(callback.state.as_deref(), Some(h.state.as_str()));
    let code = callback.code.unwrap();
    let outcome = h.login.finish(&h.ctx, &code, &h.request()).await.expect("exchange");

    let exchange = h.mock.requests_to("/social/oauth/token");
    assert_eq!(exchange.len(), 1);
    assert_eq!(
        exchange[0].json(),
        json!({"code": code, "code_verifier": h.pkce.verifier, "redirect_uri": REDIRECT_URI})
    );
    assert_eq!(exchange[0].headers["user-agent"], "cli-proxy-api/1.0.0");
    // Opaque token, no email: the profile ARN's last segment names the file.
    assert_eq!(outcome.file_name, "kiro-google-MOCKPROFILE01.json");
    let fields = outcome.credential.fields();
    assert_eq!(
        keys(fields),
        [
            "type",
            "access_token",
            "refresh_token",
            "profile_arn",
            "expires_at",
            "auth_method",
            "provider",
            "last_refresh"
        ]
    );
    assert_eq!(fields["auth_method"], "social");
    assert_eq!(fields["provider"], "Google");
    assert_eq!(fields["profile_arn"], PROFILE_ARN);
}

#[tokio::test]
async fn github_login_names_its_idp_and_file_and_uses_the_email_when_there_is_one() {
    let h = Social::start("github").await;
    h.mock.set_jwt_email(Some("octo@example.com"));
    let url = h.login.authorize_url(&h.ctx, &h.request()).unwrap();
    assert_eq!(query_value(&Url::parse(&url).unwrap(), "idp").as_deref(), Some("Github"));
    let code = parse_callback_input(&h.pasted().await).unwrap().code.unwrap();
    let outcome = h.login.finish(&h.ctx, &code, &h.request()).await.unwrap();
    assert_eq!(outcome.file_name, "kiro-github-octo@example.com.json");
    assert_eq!(outcome.credential.fields()["provider"], "Github");
    assert_eq!(outcome.credential.email(), Some("octo@example.com"));
}

#[tokio::test]
async fn a_reused_code_or_a_wrong_verifier_is_refused_without_echoing_it() {
    let mut h = Social::start("google").await;
    let code = parse_callback_input(&h.pasted().await).unwrap().code.unwrap();
    h.login.finish(&h.ctx, &code, &h.request()).await.unwrap();
    let error = h.login.finish(&h.ctx, &code, &h.request()).await.err().expect("refused");
    assert!(matches!(error, LoginError::TokenExchange(_)), "{error:?}");
    assert!(error.to_string().contains("HTTP 400: invalid_grant"), "{error}");
    no_leak(&error.to_string());

    let code = parse_callback_input(&h.pasted().await).unwrap().code.unwrap();
    h.pkce = Pkce::generate();
    let error = h.login.finish(&h.ctx, &code, &h.request()).await.err().expect("refused");
    assert!(error.to_string().contains("invalid_grant"), "{error}");
    no_leak(&error.to_string());
}

#[tokio::test]
async fn social_login_through_the_engine_takes_the_pasted_url_and_refuses_a_wrong_state() {
    let mock = MockKiro::start().await;
    let env = EngineEnv::start(&mock).await;
    let start = |env: &EngineEnv| {
        let engine = env.engine.clone();
        async move {
            let options =
                StartOptions { listen: true, callback_port: None, timeout: WAIT, options: LoginOptions::new() };
            engine.start(browser("google"), options).await.expect("started")
        }
    };

    let started = start(&env).await;
    assert_eq!(started.listener_port, None, "no listener for a kiro:// redirect");
    assert_eq!(started.redirect_uri, REDIRECT_URI);
    let pasted = authorize_redirect(&started.url).await;
    let mut callback = parse_callback_input(&pasted).unwrap();
    callback.state = Some("someone-elses-state".into());
    env.engine.sessions().deliver(&started.state, Some("kiro"), callback).unwrap();
    assert_eq!(env.wait(&started.state).await.unwrap_err(), LoginError::StateMismatch);
    assert_eq!(mock.count("/social/oauth/token"), 0, "a wrong state never reaches the exchange");

    let started = start(&env).await;
    let pasted = authorize_redirect(&started.url).await;
    let callback: CallbackParams = parse_callback_input(&pasted).unwrap();
    env.engine.sessions().deliver(&started.state, Some("kiro"), callback).unwrap();
    let file = env.wait(&started.state).await.expect("login succeeds");
    assert_eq!(file, "kiro-google-MOCKPROFILE01.json");
    assert_eq!(env.files(), [file]);
}

#[tokio::test]
async fn a_declined_social_login_arrives_as_an_error_callback() {
    let h = Social::start("google").await;
    h.mock.deny_social_login(true);
    let pasted = h.pasted().await;
    let callback = parse_callback_input(&pasted).unwrap();
    assert_eq!(callback.error.as_deref(), Some("access_denied"));
    assert_eq!(callback.code, None);
}

// ---------------------------------------------------------------------------------------------
// Import

fn ide_file(extra: Value) -> Vec<u8> {
    let mut doc = json!({
        "accessToken": "mock-kiro-ide-access",
        "refreshToken": "mock-kiro-ide-refresh",
        "expiresAt": "2030-01-02T03:04:05.000Z",
        "authMethod": "social",
        "provider": "Google",
        "profileArn": PROFILE_ARN,
    });
    for (key, value) in extra.as_object().unwrap() {
        if value.is_null() {
            doc.as_object_mut().unwrap().remove(key);
        } else {
            doc[key] = value.clone();
        }
    }
    serde_json::to_vec(&doc).unwrap()
}

#[tokio::test]
async fn importing_the_ide_file_converts_it_to_our_fields() {
    let mock = MockKiro::start().await;
    let env = EngineEnv::start(&mock).await;
    let imported = env.engine.import(&*import(), Some(&ide_file(json!({}))), &LoginOptions::new()).await.unwrap();
    assert_eq!(imported.file_name, "kiro-google-MOCKPROFILE01.json");
    let saved = env.read(&imported.file_name);
    let saved = saved.as_object().unwrap();
    assert_eq!(
        keys(saved),
        ["type", "access_token", "refresh_token", "profile_arn", "expires_at", "auth_method", "provider", "region"]
    );
    assert_eq!(saved["access_token"], "mock-kiro-ide-access");
    assert_eq!(saved["auth_method"], "social");
    assert_eq!(saved["region"], "us-east-1");
    let expiry = chrono::DateTime::parse_from_rfc3339(saved["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expiry.to_utc().to_rfc3339(), "2030-01-02T03:04:05+00:00");

    // A Builder ID login from the IDE keeps its client, so it can refresh at SSO-OIDC.
    let builder = ide_file(json!({
        "authMethod": "IdC", "provider": "BuilderId", "profileArn": null,
        "clientId": "cid-1", "clientSecret": "csecret-1", "region": "us-east-1",
        "startUrl": "https://view.awsapps.com/start", "refreshToken": "mock-kiro-ide-refresh-2",
    }));
    let imported = env.engine.import(&*import(), Some(&builder), &LoginOptions::new()).await.unwrap();
    let name = &imported.file_name;
    assert!(name.starts_with("kiro-builderid-") && name.ends_with(".json"), "{name}");
    let fields = imported.credential.fields();
    assert_eq!(fields["auth_method"], "builder-id");
    assert_eq!((fields["client_id"].as_str(), fields["client_secret"].as_str()), (Some("cid-1"), Some("csecret-1")));
    assert_eq!(fields["start_url"], "https://view.awsapps.com/start");

    // Without a provider the file is named `imported`.
    let anonymous = ide_file(json!({"provider": null, "profileArn": null, "refreshToken": "mock-kiro-ide-refresh-3"}));
    let imported = env.engine.import(&*import(), Some(&anonymous), &LoginOptions::new()).await.unwrap();
    assert!(imported.file_name.starts_with("kiro-imported-"), "{}", imported.file_name);

    // The same refresh token again is a duplicate of the first file.
    let error = env.engine.import(&*import(), Some(&ide_file(json!({}))), &LoginOptions::new()).await.unwrap_err();
    assert_eq!(error, LoginError::Duplicate { existing_file: "kiro-google-MOCKPROFILE01.json".into() });
}

#[tokio::test]
async fn bad_ide_files_are_refused_precisely_and_nothing_is_written() {
    let mock = MockKiro::start().await;
    let env = EngineEnv::start(&mock).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"   ".to_vec(), "no file given: choose the Kiro IDE token file (~/.aws/sso/cache/kiro-auth-token.json)"),
        (b"{\"accessToken\": \"mock-kiro-x\",".to_vec(), "the Kiro token file is not valid JSON (line 1, column 30)"),
        (b"[1, 2]".to_vec(), "the Kiro token file is not a JSON object"),
        (ide_file(json!({"accessToken": null})), "the Kiro token file has no accessToken"),
        (ide_file(json!({"accessToken": "  "})), "the Kiro token file has no accessToken"),
        (ide_file(json!({"accessToken": 42})), "the Kiro token file's accessToken must be a string"),
        (
            ide_file(json!({"expiresAt": "tomorrow"})),
            "the Kiro token file's expiresAt \"tomorrow\" is not an RFC 3339 time",
        ),
        (
            ide_file(json!({"authMethod": "password"})),
            "the Kiro token file's authMethod \"password\" is not one of social, IdC",
        ),
        (ide_file(json!({"region": "mars"})), "the Kiro token file's region \"mars\" is not an AWS region name"),
        (
            serde_json::to_vec(&json!({"type": "kiro", "access_token": "mock-kiro-x"})).unwrap(),
            "this is already a Switchyard/CLIProxyAPI auth file, not the Kiro IDE's token file; add it as an auth file",
        ),
    ];
    for (bytes, want) in cases {
        let error = env.engine.import(&*import(), Some(&bytes), &LoginOptions::new()).await.unwrap_err();
        assert_eq!(error, LoginError::InvalidInput(want.into()), "{}", String::from_utf8_lossy(&bytes));
        no_leak(&error.to_string());
    }
    let error = env.engine.import(&*import(), None, &LoginOptions::new()).await.unwrap_err();
    assert!(matches!(error, LoginError::InvalidInput(_)));
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[test]
fn uploads_of_the_ide_file_are_recognised_and_ours_are_not() {
    let login = import();
    let doc = |value: Value| value.as_object().unwrap().clone();
    assert!(login.recognises_upload(&doc(json!({"accessToken": "a", "refreshToken": "r", "authMethod": "social"}))));
    assert!(login.recognises_upload(&doc(json!({"accessToken": "a", "expiresAt": "2030-01-01T00:00:00Z"}))));
    assert!(!login.recognises_upload(&doc(json!({"type": "kiro", "accessToken": "a", "refreshToken": "r"}))));
    assert!(!login.recognises_upload(&doc(json!({"accessToken": "a"}))), "an access token alone is anyone's");
    assert!(!login.recognises_upload(&doc(json!({"access_token": "a", "refresh_token": "r"}))));
    let registry = Registry::new(&switchyard_config::Config::default());
    let found = registry.import_for_upload(&doc(json!({"accessToken": "a", "refreshToken": "r"})));
    assert_eq!(found.map(|i| i.spec().name.to_owned()).as_deref(), Some("kiro"));
}

// ---------------------------------------------------------------------------------------------
// Registry

#[tokio::test]
async fn every_method_is_found_by_name_and_alias() {
    let registry = Registry::new(&switchyard_config::Config::default());
    let http = reqwest::Client::new();
    let kind = |login: Option<Login>| match login {
        Some(Login::Device(_)) => "device",
        Some(Login::Browser(_)) => "browser",
        Some(Login::Import(_)) => "import",
        None => "none",
    };
    for (method, want) in [
        (None, "device"),
        (Some("builder-id"), "device"),
        (Some("aws"), "device"),
        (Some("idc"), "device"),
        (Some("google"), "browser"),
        (Some("github"), "browser"),
        (Some("import"), "import"),
    ] {
        assert_eq!(kind(registry.login("kiro", method, &http).await.unwrap()), want, "{method:?}");
    }
    let error = registry.login("kiro", Some("password"), &http).await.err().unwrap();
    assert_eq!(
        error,
        LoginError::InvalidInput(
            "unknown login method `password` for kiro; use: builder-id (aws), idc, google, github, import".into()
        )
    );
    assert_eq!(registry.login_for_callback_route("kiro").as_deref(), Some("kiro"));
    let capability = registry.capabilities().into_iter().find(|c| c.id == "kiro").unwrap();
    assert!(capability.serves);
    assert_eq!(capability.endpoints.len(), 5);
    let idc = capability.logins.iter().find(|l| l.method == "idc").unwrap();
    assert_eq!(
        idc.asks.iter().map(|a| (a.name, a.required)).collect::<Vec<_>>(),
        [("start_url", true), ("region", false)]
    );
    let file = capability.logins.iter().find(|l| l.method == "import").unwrap();
    assert_eq!(file.asks[0].default, Some("~/.aws/sso/cache/kiro-auth-token.json"));
}
