//! `IFLOW_CLIENT_SECRET` overrides the built-in client secret. A binary of its own: the
//! environment is process-wide, so no other test may run beside this one.

mod common;

use common::{authorize_redirect, context, query_value};
use switchyard_auth::login::{AuthorizeRequest, LoginError, LoginOptions};
use switchyard_providers::Provider;
use switchyard_providers::iflow::Iflow;
use switchyard_testkit::iflow::{CLIENT_ID, MockIflow, TOKEN_PATH};

#[tokio::test]
async fn the_environment_overrides_the_client_secret_in_form_and_basic_auth() {
    const OVERRIDE: &str = "secret-from-the-environment";
    // SAFETY: this binary runs this one test; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("IFLOW_CLIENT_SECRET", format!("  {OVERRIDE} ")) };

    let mock = MockIflow::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    let login = Iflow.browser_login().unwrap();
    let redirect_uri = login.redirect_uri(11451);
    let options = LoginOptions::new();
    let request = AuthorizeRequest { state: "state-1", pkce: None, redirect_uri: &redirect_uri, options: &options };
    let callback = authorize_redirect(&login.authorize_url(&ctx, &request).unwrap()).await;
    let code = query_value(&url::Url::parse(&callback).unwrap(), "code").unwrap();

    // The mock knows only the public secret, so the overridden one is refused.
    let error = login.finish(&ctx, &code, &request).await.err().expect("the mock refuses another secret");
    assert!(matches!(&error, LoginError::TokenExchange(r) if r.contains("401: invalid_client")), "{error:?}");
    assert!(!error.to_string().contains(OVERRIDE));
    let sent = &mock.requests_to(TOKEN_PATH)[0];
    assert_eq!(sent.form_value("client_secret").as_deref(), Some(OVERRIDE));
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{CLIENT_ID}:{OVERRIDE}"));
    assert_eq!(sent.headers["authorization"], format!("Basic {basic}").as_str());
}
