//! iFlow's cookie login (an import of a `platform.iflow.cn` session's `BXAuth` cookie) through
//! the login engine, against the mock platform: the key read and renewed with browser headers
//! and gzip, the file as CPA names and fills it, the duplicate check, and every refusal.

mod login_engine_support;

use login_engine_support::EngineEnv;
use serde_json::Value;
use switchyard_auth::login::{Login, LoginError, LoginOptions};
use switchyard_providers::iflow::{IflowCookie, normalise_cookie};
use switchyard_providers::{AskKind, LoginKind, Provider};
use switchyard_testkit::iflow::{API_KEY_PATH, Fault, MockIflow, PLATFORM_ORIGIN};

/// The platform shows phone-number accounts masked.
const NAME: &str = "138****8000";

fn cookie_options(cookie: &str) -> LoginOptions {
    LoginOptions::from([("cookie".to_owned(), cookie.to_owned())])
}

/// What a user copies from the browser: other cookies around `BXAuth`, stray whitespace.
fn pasted_cookie(bxauth: &str) -> String {
    format!("  _ga=GA1.2.3; \n\t BXAuth={bxauth}  ;  tfstk=abc  ")
}

struct Env {
    mock: MockIflow,
    env: EngineEnv,
}

impl Env {
    async fn start() -> Env {
        let mock = MockIflow::start().await;
        let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
        Env { mock, env }
    }

    async fn import(&self, cookie: &str) -> Result<switchyard_auth::login::Imported, LoginError> {
        self.env.engine.import(&IflowCookie, None, &cookie_options(cookie)).await
    }
}

fn header<'a>(request: &'a switchyard_testkit::RecordedRequest, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn the_provider_offers_the_cookie_login_as_its_second_method() {
    let methods = switchyard_providers::iflow::Iflow.login_methods();
    let ids: Vec<&str> = methods.iter().map(|m| m.id).collect();
    assert_eq!(ids, ["browser", "cookie"]);
    let cookie = &methods[1];
    assert_eq!(cookie.kind, LoginKind::Cookie);
    assert_eq!(cookie.asks.len(), 1);
    assert_eq!((cookie.asks[0].name, cookie.asks[0].kind, cookie.asks[0].required), ("cookie", AskKind::Secret, true));
    let Login::Import(import) = &cookie.login else { panic!("the cookie login is an import") };
    assert_eq!(import.spec().name, "iflow");
    assert!(!import.recognises_upload(&serde_json::Map::new()));
}

#[tokio::test]
async fn a_good_cookie_saves_the_renewed_key_and_only_the_bxauth_pair() {
    let e = Env::start().await;
    let bxauth = e.mock.add_cookie_account(NAME);
    let shown_key = e.mock.cookie_api_key(&bxauth).unwrap();
    let before = chrono::Utc::now().timestamp();

    let imported = e.import(&pasted_cookie(&bxauth)).await.expect("the cookie login succeeds");

    let unix: i64 = imported
        .file_name
        .strip_prefix("iflow-138xxxx8000-")
        .and_then(|rest| rest.strip_suffix(".json"))
        .unwrap_or_else(|| panic!("file name {}", imported.file_name))
        .parse()
        .unwrap();
    assert!(unix >= before && unix <= chrono::Utc::now().timestamp());
    assert_eq!(e.env.files(), std::slice::from_ref(&imported.file_name));
    assert_eq!(e.env.mode(&imported.file_name), 0o600);

    let saved = e.env.credential(&imported.file_name);
    let keys: Vec<&str> = saved.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "access_token",
            "refresh_token",
            "last_refresh",
            "expired",
            "api_key",
            "email",
            "token_type",
            "scope",
            "cookie"
        ]
    );
    let field = |key: &str| saved.fields()[key].as_str().unwrap().to_owned();
    assert_eq!(field("type"), "iflow");
    assert_eq!(field("cookie"), format!("BXAuth={bxauth};"), "only the BXAuth pair is stored");
    assert_eq!(field("email"), NAME);
    let renewed_key = e.mock.cookie_api_key(&bxauth).unwrap();
    assert_ne!(renewed_key, shown_key, "the key is renewed at login");
    assert_eq!(field("api_key"), renewed_key);
    assert!(e.mock.key_is_live(&renewed_key) && !e.mock.key_is_live(&shown_key));
    assert_eq!(field("expired"), e.mock.cookie_expire_time(&bxauth).unwrap());
    chrono::NaiveDateTime::parse_from_str(&field("expired"), "%Y-%m-%d %H:%M").expect("iFlow's expireTime format");
    for empty in ["access_token", "refresh_token", "token_type", "scope"] {
        assert_eq!(field(empty), "", "{empty}");
    }
    assert_eq!(imported.credential, saved);

    // GET then POST, both with the whole (normalised) cookie and a browser's headers.
    let calls = e.mock.requests_to(API_KEY_PATH);
    assert_eq!(calls.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["GET", "POST"]);
    for call in &calls {
        assert_eq!(header(call, "cookie"), normalise_cookie(&pasted_cookie(&bxauth)));
        assert_eq!(header(call, "accept"), "application/json, text/plain, */*");
        assert!(header(call, "user-agent").contains("Chrome/"), "{}", header(call, "user-agent"));
        assert_eq!(header(call, "accept-language"), "zh-CN,zh;q=0.9,en;q=0.8");
        assert!(header(call, "accept-encoding").contains("gzip"));
        assert_eq!(header(call, "sec-fetch-mode"), "cors");
    }
    assert_eq!(header(&calls[1], "origin"), PLATFORM_ORIGIN);
    assert_eq!(header(&calls[1], "referer"), "https://platform.iflow.cn/");
    assert_eq!(calls[1].json(), serde_json::json!({"name": NAME}));
}

#[tokio::test]
async fn the_platform_gzips_its_answers_as_the_real_one_does() {
    let e = Env::start().await;
    let bxauth = e.mock.add_cookie_account(NAME);
    let raw = reqwest::Client::builder().no_gzip().no_deflate().build().unwrap();
    let response = raw
        .get(e.mock.url(API_KEY_PATH))
        .header("cookie", format!("BXAuth={bxauth};"))
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let body = response.bytes().await.unwrap();
    assert_eq!(&body[..2], [0x1f, 0x8b], "a gzip stream");
    // The login above decoded exactly such answers.
    e.import(&format!("BXAuth={bxauth}")).await.expect("gzipped answers are read");
}

#[tokio::test]
async fn a_cookie_without_bxauth_or_no_cookie_is_refused_before_any_call() {
    let e = Env::start().await;
    for (cookie, expected) in [
        ("", "cookie is required"),
        (" \n ", "cookie is required"),
        ("_ga=1; tfstk=2", "cookie missing BXAuth field"),
        ("BXAuth=; _ga=1", "cookie missing BXAuth field"),
    ] {
        let error = e.import(cookie).await.expect_err(cookie);
        assert_eq!(error, LoginError::InvalidInput(expected.into()), "{cookie:?}");
    }
    let error = e.env.engine.import(&IflowCookie, None, &LoginOptions::new()).await.unwrap_err();
    assert_eq!(error, LoginError::InvalidInput("cookie is required".into()));
    assert!(e.mock.requests().is_empty());
    assert!(e.env.files().is_empty());
}

#[tokio::test]
async fn the_same_bxauth_again_is_a_duplicate_naming_the_stored_file() {
    let e = Env::start().await;
    let bxauth = e.mock.add_cookie_account(NAME);
    let first = e.import(&pasted_cookie(&bxauth)).await.unwrap();
    let calls = e.mock.requests().len();
    let stored = e.env.read(&first.file_name);

    // Other cookies around it change nothing: the BXAuth value decides.
    let error = e.import(&format!("other=1; BXAuth={bxauth}")).await.unwrap_err();
    assert_eq!(error, LoginError::Duplicate { existing_file: first.file_name.clone() });
    assert_eq!(e.mock.requests().len(), calls, "a duplicate calls nothing");
    assert_eq!(e.env.files(), std::slice::from_ref(&first.file_name));
    assert_eq!(e.env.read(&first.file_name), stored);

    // Another account's cookie is no duplicate.
    let other = e.mock.add_cookie_account("jane@example.com");
    let second = e.import(&format!("BXAuth={other}")).await.unwrap();
    assert!(second.file_name.starts_with("iflow-jane@example.com-"), "{}", second.file_name);
    assert_eq!(e.env.files().len(), 2);
}

#[tokio::test]
async fn a_refused_cookie_reports_the_platform_text_and_saves_nothing() {
    let e = Env::start().await;
    let bxauth = e.mock.add_cookie_account(NAME);
    e.mock.kill_cookie(&bxauth);
    let error = e.import(&pasted_cookie(&bxauth)).await.unwrap_err();
    let LoginError::InvalidInput(message) = &error else { panic!("{error:?}") };
    assert!(message.starts_with("iFlow platform refused the cookie: "), "{message}");
    assert!(message.contains("登录已失效"), "the platform's own text: {message}");
    assert!(!message.contains(&bxauth), "{message}");

    let unknown = e.import("BXAuth=never-issued-0123456789abcdef").await.unwrap_err();
    assert!(matches!(unknown, LoginError::InvalidInput(_)), "{unknown:?}");

    e.mock.set_fault(Fault::PlatformServerError);
    let live = e.mock.add_cookie_account("x@example.com");
    let error = e.import(&format!("BXAuth={live}")).await.unwrap_err();
    assert_eq!(error, LoginError::Provider("iFlow platform answered HTTP 502".into()));
    assert!(e.env.files().is_empty());
}

#[tokio::test]
async fn mock_refuses_a_renewal_without_the_platform_origin() {
    let e = Env::start().await;
    let bxauth = e.mock.add_cookie_account(NAME);
    let http = reqwest::Client::new();
    let post = |origin: Option<&'static str>| {
        let mut request = http
            .post(e.mock.url(API_KEY_PATH))
            .header("cookie", format!("BXAuth={bxauth};"))
            .json(&serde_json::json!({"name": NAME}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 403);
    assert_eq!(post(Some("https://evil.example")).await.unwrap().status(), 403);
    let body: Value = post(Some(PLATFORM_ORIGIN)).await.unwrap().json().await.unwrap();
    assert_eq!(body["success"], true, "{body}");
}
