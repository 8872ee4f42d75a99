//! What the login tests share: a login context aimed at a mock, the browser's part of an
//! authorization-code login (authorize → redirect → code), harnesses for the PKCE logins (Claude,
//! Codex) and the Google ones (Gemini CLI, Antigravity), and the checks that no error text leaks a
//! code or token.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::LOCATION;
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, LoginContext, LoginError, LoginOptions, LoginOutcome, Pkce, RefreshError,
    TokenRefresher, new_state,
};
use switchyard_providers::Provider;
use switchyard_testkit::google::MockGoogle;
use switchyard_testkit::oauth::IssuedTokens;
use url::Url;

/// How the Google mock's access tokens, refresh tokens and codes start.
pub const GOOGLE_TOKEN_MARKS: &[&str] = &["ya29.", "1//0g", "4/0A"];

/// A login context whose `upstream-urls` point at a mock.
pub fn context(upstream_urls_yaml: &str) -> LoginContext {
    let config = switchyard_config::parse(upstream_urls_yaml).expect("mock config parses").config;
    LoginContext::new(reqwest::Client::new(), Arc::new(config))
}

/// The provider's browser login and refresher.
pub fn login_and_refresher(provider: &dyn Provider) -> (Arc<dyn BrowserLogin>, Arc<dyn TokenRefresher>) {
    let login = provider.browser_login().unwrap_or_else(|| panic!("{} has a browser login", provider.id()));
    let refresher = provider.refresher().unwrap_or_else(|| panic!("{} has a refresher", provider.id()));
    (login, refresher)
}

/// The redirect URI of a listener on the login's default port.
pub fn default_redirect_uri(login: &dyn BrowserLogin) -> String {
    login.redirect_uri(login.spec().default_callback_port)
}

pub fn query_value(url: &Url, key: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The browser's part: opens an authorize URL like a user who consents (or declines), and returns
/// the `Location` of the redirect back to the app.
pub async fn authorize_redirect(url: &str) -> String {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = browser.get(url).send().await.expect("authorize answers");
    assert_eq!(response.status(), 302, "authorize answers with a redirect");
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// Fails when `message` holds one of `secrets` or anything starting like one of the mock's
/// tokens or codes (`token_marks`).
pub fn assert_no_leak(message: &str, secrets: &[&str], token_marks: &[&str]) {
    for secret in secrets {
        assert!(!message.contains(secret), "message {message:?} leaks {secret:?}");
    }
    for mark in token_marks {
        assert!(!message.contains(mark), "message {message:?} leaks a token or code");
    }
}

/// Neither `secret` nor anything shaped like a Google token may reach an error text.
pub fn assert_clean(message: &str, secret: &str) {
    assert_no_leak(message, &[secret], GOOGLE_TOKEN_MARKS);
}

/// A credential as saved after a login, without going through the login.
pub fn saved_credential(file_type: &str, tokens: &IssuedTokens) -> Credential {
    let mut credential = Credential::new(file_type);
    credential.fields_mut().insert("access_token".into(), tokens.access_token.clone().into());
    credential.fields_mut().insert("refresh_token".into(), tokens.refresh_token.clone().into());
    credential
}

pub fn field<'a>(credential: &'a Credential, key: &str) -> &'a Value {
    credential.fields().get(key).unwrap_or_else(|| panic!("no {key}"))
}

pub fn rfc3339(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a string")).expect("RFC 3339").to_utc()
}

/// A PKCE login (Claude, Codex) against its mock, with one state, PKCE pair and redirect URI.
pub struct PkceHarness<M> {
    pub mock: M,
    pub ctx: LoginContext,
    pub login: Arc<dyn BrowserLogin>,
    pub refresher: Arc<dyn TokenRefresher>,
    pub pkce: Pkce,
    pub state: String,
    pub redirect_uri: String,
    pub options: LoginOptions,
}

impl<M> PkceHarness<M> {
    pub fn new(mock: M, upstream_urls_yaml: &str, provider: &dyn Provider) -> Self {
        let (login, refresher) = login_and_refresher(provider);
        let redirect_uri = default_redirect_uri(&*login);
        PkceHarness {
            mock,
            ctx: context(upstream_urls_yaml),
            login,
            refresher,
            pkce: Pkce::generate(),
            state: new_state(),
            redirect_uri,
            options: LoginOptions::new(),
        }
    }

    pub fn request(&self) -> AuthorizeRequest<'_> {
        AuthorizeRequest {
            state: &self.state,
            pkce: Some(&self.pkce),
            redirect_uri: &self.redirect_uri,
            options: &self.options,
        }
    }

    /// Opens the authorize URL like a browser that consents, and returns the callback URL.
    pub async fn consent(&self) -> Url {
        let url = self.login.authorize_url(&self.ctx, &self.request()).expect("authorize URL");
        let location = authorize_redirect(&url).await;
        assert!(location.starts_with(&self.redirect_uri), "{location}");
        Url::parse(&location).unwrap()
    }

    pub async fn code(&self) -> String {
        query_value(&self.consent().await, "code").expect("callback has a code")
    }

    /// The app's part after the callback: exchanges `code` for this harness's login.
    pub async fn finish(&self, code: &str) -> Result<LoginOutcome, LoginError> {
        self.login.finish(&self.ctx, code, &self.request()).await
    }

    pub async fn login(&self) -> Result<LoginOutcome, LoginError> {
        self.finish(&self.code().await).await
    }

    pub async fn refresh(&self, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        self.refresher.refresh(&self.ctx, credential).await
    }
}

/// Login options with the onboarding polls not slowed down, plus `extra`.
pub fn google_options(extra: &[(&str, &str)]) -> LoginOptions {
    let mut options = LoginOptions::from([("onboard_poll_ms".to_owned(), "0".to_owned())]);
    options.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    options
}

/// A Google login (Gemini CLI, Antigravity) against the Google mock, always with one state.
pub struct GoogleHarness {
    pub google: MockGoogle,
    pub ctx: LoginContext,
    pub login: Arc<dyn BrowserLogin>,
    pub refresher: Arc<dyn TokenRefresher>,
    pub state: &'static str,
}

impl GoogleHarness {
    pub async fn start(provider_id: &str, state: &'static str) -> GoogleHarness {
        let google = MockGoogle::start().await;
        let ctx = context(&google.upstream_urls_yaml());
        let provider = switchyard_providers::by_id(provider_id).expect("a known provider");
        let (login, refresher) = login_and_refresher(provider);
        GoogleHarness { google, ctx, login, refresher, state }
    }

    pub fn redirect_uri(&self) -> String {
        default_redirect_uri(&*self.login)
    }

    pub fn authorize_url(&self, options: &LoginOptions) -> Url {
        let redirect_uri = self.redirect_uri();
        let request = AuthorizeRequest { state: self.state, pkce: None, redirect_uri: &redirect_uri, options };
        Url::parse(&self.login.authorize_url(&self.ctx, &request).expect("authorize URL")).expect("valid URL")
    }

    /// The browser's part: opens the authorize URL and returns where Google redirects to.
    pub async fn consent(&self, options: &LoginOptions) -> Url {
        let location = authorize_redirect(self.authorize_url(options).as_str()).await;
        Url::parse(&location).expect("redirect is a URL")
    }

    pub async fn finish(&self, code: &str, options: &LoginOptions) -> Result<LoginOutcome, LoginError> {
        let redirect_uri = self.redirect_uri();
        let request = AuthorizeRequest { state: self.state, pkce: None, redirect_uri: &redirect_uri, options };
        self.login.finish(&self.ctx, code, &request).await
    }

    /// A whole login; returns the authorization code used and the outcome.
    pub async fn login(&self, options: &LoginOptions) -> (String, Result<LoginOutcome, LoginError>) {
        let code = query_value(&self.consent(options).await, "code").expect("redirect carries a code");
        let outcome = self.finish(&code, options).await;
        (code, outcome)
    }

    pub async fn login_ok(&self, options: &LoginOptions) -> LoginOutcome {
        match self.login(options).await {
            (_, Ok(outcome)) => outcome,
            (_, Err(error)) => panic!("login failed: {error}"),
        }
    }

    /// A failed login's error, checked to carry no code or token.
    pub async fn login_err(&self, options: &LoginOptions) -> LoginError {
        match self.login(options).await {
            (_, Ok(outcome)) => panic!("login succeeded: {}", outcome.file_name),
            (code, Err(error)) => {
                assert_clean(&error.to_string(), &code);
                error
            }
        }
    }
}
