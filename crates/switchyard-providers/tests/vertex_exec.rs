//! The Vertex executor against the mock token endpoint (which verifies each assertion's RS256
//! signature) and the mock upstream: one mint for many requests, concurrent requests sharing one
//! mint, renewal near expiry, a 401 dropping the cached token, mint failures, URLs for regional,
//! `global` and configured bases (with and without `{location}`), streams and token counts.

mod exec_support;

use std::sync::Arc;
use std::time::Duration;

use exec_support::*;
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{ImportInput, ImportLogin, LoginContext, LoginOptions};
use switchyard_providers::by_id;
use switchyard_providers::exec::api_key_executor;
use switchyard_providers::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth};
use switchyard_providers::vertex::Vertex;
use switchyard_testkit::fixtures;
use switchyard_testkit::google_sa::{
    self, CLOUD_PLATFORM_SCOPE, Fault, JWT_BEARER_GRANT, MockGoogleSa, OTHER_PUBLIC_KEY, PRIVATE_KEY_ID, TOKEN_PATH,
    access_token, assertion_claims, assertion_header,
};
use switchyard_testkit::upstream::{Api, MockUpstream, RequiredAuth, sse_events};

const PROJECT: &str = "acme-prod-42";
const MODEL: &str = "gemini-2.5-pro";

fn executor() -> Arc<dyn Executor> {
    by_id("vertex").and_then(|p| p.executor()).expect("Vertex has an executor")
}

fn body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
}

/// Both mocks, and a context whose `upstream-urls.vertex` points at them (`api` as given).
struct VertexEnv {
    upstream: MockUpstream,
    google: MockGoogleSa,
    ctx: ExecContext,
}

impl VertexEnv {
    async fn start() -> VertexEnv {
        VertexEnv::with_api(None).await
    }

    /// `api`: the configured `upstream-urls.vertex.api`, `{base}` standing for the upstream's base.
    async fn with_api(api: Option<&str>) -> VertexEnv {
        let upstream = MockUpstream::start().await;
        let google = MockGoogleSa::start().await;
        let api = api.unwrap_or("{base}").replace("{base}", upstream.base());
        let yaml = format!("upstream-urls:\n  vertex:\n    api: {api}\n    token: {}\n", google.token_url());
        VertexEnv { ctx: context(&yaml), upstream, google }
    }

    /// An imported account of a service account known to the token mock. Every test uses its
    /// own email, so the process-wide token cache never mixes tests.
    async fn account(&self, email: &str, location: &str) -> Credential {
        let key = self.google.service_account(PROJECT, email);
        import(&key, location).await
    }

    async fn generate(&self, credential: &Credential, stream: bool) -> Result<UpstreamResponseParts, ExecError> {
        let request = request(Operation::Generate, MODEL, stream, &body());
        let response = executor().execute(&self.ctx, &UpstreamAuth::Stored { credential }, request).await?;
        let status = response.status;
        Ok(UpstreamResponseParts { status, body: body_ok(response).await })
    }

    /// The `Authorization` header of every upstream request, oldest first.
    fn bearers(&self) -> Vec<String> {
        self.upstream.requests().iter().map(|r| header(r, "authorization").to_owned()).collect()
    }
}

struct UpstreamResponseParts {
    status: u16,
    body: Vec<u8>,
}

/// The credential the import writes for `key`.
async fn import(key: &Map<String, Value>, location: &str) -> Credential {
    let options = LoginOptions::from([("location".to_owned(), location.to_owned())]);
    let ctx = LoginContext::new(reqwest::Client::new(), Arc::new(Default::default()));
    let file = serde_json::to_vec(key).unwrap();
    let input = ImportInput { file: Some(&file), options: &options, existing: &[] };
    Vertex.import(&ctx, input).await.expect("the key imports").credential
}

fn bearer(n: usize) -> String {
    format!("Bearer {}", access_token(n))
}

#[tokio::test]
async fn a_request_mints_a_signed_assertion_and_sends_the_token() {
    let env = VertexEnv::start().await;
    let email = "mint@acme-prod-42.iam.gserviceaccount.com";
    let credential = env.account(email, "us-central1").await;
    env.upstream.require_auth(Some(RequiredAuth::Bearer(access_token(1))));
    let answer = env.generate(&credential, false).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, fixtures::read("gemini/google-text.json"));

    let seen = env.upstream.last_request();
    assert_eq!(
        seen.path,
        format!("/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/{MODEL}:generateContent")
    );
    assert_eq!(seen.query, None);
    assert_eq!(header(&seen, "accept"), "application/json");
    assert_eq!(seen.body.as_ref(), body().to_string().as_bytes());

    // The mock verified the signature with the account's public key; these are the claims.
    assert_eq!(env.google.mints(), 1);
    let grant = &env.google.requests_to(TOKEN_PATH)[0];
    assert_eq!(grant.form_value("grant_type").as_deref(), Some(JWT_BEARER_GRANT));
    let assertion = grant.form_value("assertion").unwrap();
    let claims = assertion_claims(&assertion);
    assert_eq!(claims["iss"], email);
    assert_eq!(claims["scope"], CLOUD_PLATFORM_SCOPE);
    assert_eq!(claims["aud"], env.google.token_url(), "the audience is the token URL used");
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 3600);
    let head = assertion_header(&assertion);
    assert_eq!((head["alg"].as_str(), head["kid"].as_str()), (Some("RS256"), Some(PRIVATE_KEY_ID)));
}

#[tokio::test]
async fn many_requests_share_one_mint() {
    let env = VertexEnv::start().await;
    let credential = env.account("reuse@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    let before = credential.clone();
    for _ in 0..5 {
        assert_eq!(env.generate(&credential, false).await.unwrap().status, 200);
    }
    assert_eq!(env.google.mints(), 1);
    assert_eq!(env.bearers(), vec![bearer(1); 5]);
    assert!(credential == before, "nothing is written into the credential");
    assert!(credential.access_token().is_none());
}

#[tokio::test]
async fn concurrent_requests_share_one_mint() {
    let env = VertexEnv::start().await;
    let credential = env.account("burst@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    // A slow token endpoint, so every request arrives while the first mint is under way.
    env.google.set_delay(Duration::from_millis(300));
    let requests = (0..8).map(|_| env.generate(&credential, false));
    for answer in futures::future::join_all(requests).await {
        assert_eq!(answer.unwrap().status, 200);
    }
    assert_eq!(env.google.mints(), 1, "one mint for the whole burst");
    assert_eq!(env.google.requests_to(TOKEN_PATH).len(), 1);
    assert_eq!(env.bearers(), vec![bearer(1); 8]);
}

#[tokio::test]
async fn tokens_near_expiry_are_renewed() {
    let env = VertexEnv::start().await;
    let credential = env.account("renew@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    // Inside the five-minute renewal margin from the start: every request needs a new token.
    env.google.set_expires_in(Some(120));
    for _ in 0..3 {
        assert_eq!(env.generate(&credential, false).await.unwrap().status, 200);
    }
    assert_eq!(env.google.mints(), 3);
    assert_eq!(env.bearers(), vec![bearer(1), bearer(2), bearer(3)]);

    // A token with an hour left is kept again.
    env.google.set_expires_in(None);
    for _ in 0..2 {
        env.generate(&credential, false).await.unwrap();
    }
    assert_eq!(env.google.mints(), 4);
    assert_eq!(env.bearers()[3..], [bearer(4), bearer(4)]);
}

#[tokio::test]
async fn a_401_drops_the_cached_token_and_retries_once_with_a_new_one() {
    let env = VertexEnv::start().await;
    let credential = env.account("revoked@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    env.upstream.require_auth(Some(RequiredAuth::Bearer(access_token(1))));
    assert_eq!(env.generate(&credential, false).await.unwrap().status, 200);

    // The cached token stops working upstream (revoked early); the next mint's token works.
    env.upstream.require_auth(Some(RequiredAuth::Bearer(access_token(2))));
    let answer = env.generate(&credential, false).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(env.google.mints(), 2);
    assert_eq!(env.bearers(), vec![bearer(1), bearer(1), bearer(2)]);
}

#[tokio::test]
async fn a_401_for_a_fresh_token_is_the_answer_and_the_token_is_dropped() {
    let env = VertexEnv::start().await;
    let credential = env.account("denied@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    env.upstream.require_auth(Some(RequiredAuth::Bearer("a-token-nobody-has".into())));
    let answer = env.generate(&credential, false).await.unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(json(&answer.body)["error"]["status"], "UNAUTHENTICATED");
    assert_eq!((env.google.mints(), env.upstream.requests().len()), (1, 1), "no retry loop");

    // The rejected token is not reused.
    env.generate(&credential, false).await.unwrap();
    assert_eq!(env.google.mints(), 2);
    assert_eq!(env.bearers(), vec![bearer(1), bearer(2)]);
}

#[tokio::test]
async fn streams_pass_through_as_sse_and_token_counts_use_count_tokens() {
    let env = VertexEnv::start().await;
    let credential = env.account("stream@acme-prod-42.iam.gserviceaccount.com", "europe-west4").await;
    let file = "gemini/google-stream-no-args-tool-call.chunks.txt";
    env.upstream.replay(Api::Gemini, file);
    let answer = env.generate(&credential, true).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, sse_events(Api::Gemini, file).concat(), "the recorded events, byte for byte");
    let seen = env.upstream.last_request();
    let prefix = format!("/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/{MODEL}");
    assert_eq!(
        (seen.path.clone(), seen.query.as_deref()),
        (format!("{prefix}:streamGenerateContent"), Some("alt=sse"))
    );
    assert_eq!(header(&seen, "accept"), "text/event-stream");

    let count = request(Operation::CountTokens, &format!("models/{MODEL}"), false, &body());
    let response =
        executor().execute(&env.ctx, &UpstreamAuth::Stored { credential: &credential }, count).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(json(&body_ok(response).await)["totalTokens"].as_u64().unwrap() > 0);
    assert_eq!(env.upstream.last_request().path, format!("{prefix}:countTokens"));
    assert_eq!(env.google.mints(), 1);
}

#[tokio::test]
async fn a_stream_cut_off_ends_with_interrupted() {
    let env = VertexEnv::start().await;
    let credential = env.account("cut@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    env.upstream.drop_streams_after(Some(1));
    let request = request(Operation::Generate, MODEL, true, &body());
    let response =
        executor().execute(&env.ctx, &UpstreamAuth::Stored { credential: &credential }, request).await.unwrap();
    let (bytes, error) = drain(response).await;
    assert_eq!(bytes, sse_events(Api::Gemini, Api::Gemini.default_fixtures().1)[0]);
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");
}

#[tokio::test]
async fn a_configured_api_with_location_is_filled_per_account() {
    let env = VertexEnv::with_api(Some("{base}/{location}-aiplatform")).await;
    let regional = env.account("regional@acme-prod-42.iam.gserviceaccount.com", "asia-northeast1").await;
    let global = env.account("global@acme-prod-42.iam.gserviceaccount.com", "global").await;
    env.generate(&regional, false).await.unwrap();
    let tail = format!("/publishers/google/models/{MODEL}:generateContent");
    assert_eq!(
        env.upstream.last_request().path,
        format!("/asia-northeast1-aiplatform/v1/projects/{PROJECT}/locations/asia-northeast1{tail}")
    );
    env.generate(&global, false).await.unwrap();
    assert_eq!(
        env.upstream.last_request().path,
        format!("/aiplatform/v1/projects/{PROJECT}/locations/global{tail}"),
        "`global` drops `{{location}}-`, as the default host does"
    );

    // The same `vertex.api` value serves API keys (express mode), read for `global`.
    let key_executor = api_key_executor("vertex-api-key").unwrap();
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let response =
        key_executor.execute(&env.ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(env.upstream.last_request().path, format!("/aiplatform/v1{tail}"));
}

#[tokio::test]
async fn a_configured_api_without_location_is_used_as_is() {
    let env = VertexEnv::with_api(Some("{base}/proxy")).await;
    let credential = env.account("fixed@acme-prod-42.iam.gserviceaccount.com", "me-central2").await;
    env.generate(&credential, false).await.unwrap();
    assert_eq!(
        env.upstream.last_request().path,
        format!("/proxy/v1/projects/{PROJECT}/locations/me-central2/publishers/google/models/{MODEL}:generateContent")
    );
}

#[tokio::test]
async fn a_refused_service_account_is_a_credential_error_without_secrets() {
    let env = VertexEnv::start().await;
    let credential = env.account("deleted@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    env.google.set_fault(Fault::InvalidGrant);
    let error = env.generate(&credential, false).await.err().unwrap();
    let ExecError::Credential(text) = &error else { panic!("{error:?}") };
    assert!(text.contains("deleted@acme-prod-42.iam.gserviceaccount.com"), "{text}");
    assert!(text.contains("HTTP 400: invalid_grant (Invalid grant: account not found)"), "{text}");
    assert_no_key_material(&error);
    assert!(env.upstream.requests().is_empty(), "no request goes upstream without a token");
}

#[tokio::test]
async fn a_signature_from_another_key_is_refused() {
    let env = VertexEnv::start().await;
    let email = "rotated@acme-prod-42.iam.gserviceaccount.com";
    let credential = env.account(email, "us-central1").await;
    // Google now holds another public key for this account (the file's key was deleted).
    env.google.register(email, Some(PRIVATE_KEY_ID), OTHER_PUBLIC_KEY);
    let error = env.generate(&credential, false).await.err().unwrap();
    let ExecError::Credential(text) = &error else { panic!("{error:?}") };
    assert!(text.contains("invalid_grant (Invalid JWT Signature.)"), "{text}");
    assert_eq!(env.google.mints(), 0);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_a_connect_error_and_is_tried_again_next_time() {
    let env = VertexEnv::start().await;
    let credential = env.account("flaky@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    env.google.set_fault(Fault::ServerError);
    let error = env.generate(&credential, false).await.err().unwrap();
    assert!(matches!(&error, ExecError::Connect(text) if text.contains("HTTP 500")), "{error:?}");
    assert_no_key_material(&error);
    env.google.set_fault(Fault::None);
    assert_eq!(env.generate(&credential, false).await.unwrap().status, 200);
    assert_eq!(env.google.mints(), 1);
}

#[tokio::test]
async fn files_the_executor_cannot_use_are_refused_before_any_call() {
    let env = VertexEnv::start().await;
    let good = env.account("edited@acme-prod-42.iam.gserviceaccount.com", "us-central1").await;
    let mut bad_location = good.clone();
    bad_location.fields_mut().insert("location".into(), json!("us-central1.evil.example"));
    let mut no_key = good.clone();
    no_key.fields_mut().remove("service_account");
    let mut broken_key = good.clone();
    broken_key.fields_mut()["service_account"]["private_key"] = json!(google_sa::EC_PRIVATE_KEY);
    for (credential, says) in [
        (&bad_location, "invalid location"),
        (&no_key, "has no service_account object"),
        (&broken_key, "private_key is not an RSA private key"),
    ] {
        let error = env.generate(credential, false).await.err().unwrap();
        assert!(matches!(&error, ExecError::Credential(text) if text.contains(says)), "{error:?}");
        assert_no_key_material(&error);
    }
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &good };
    let error = executor().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await;
    assert!(matches!(error, Err(ExecError::Credential(_))));
    assert!(env.upstream.requests().is_empty() && env.google.requests().is_empty());
}

fn assert_no_key_material(error: &ExecError) {
    assert_no_secret(error);
    for text in [error.to_string(), format!("{error:?}")] {
        for mark in ["BEGIN", "MII", "ya29.", "eyJ"] {
            assert!(!text.contains(mark), "{text} leaks {mark}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The mock token endpoint keeps Google's rules (so the tests above mean something)

/// Signs `claims` with the test key (kid [`PRIVATE_KEY_ID`]) or with `key` when given.
fn signed(claims: &Value, kid: Option<&str>, key: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[tokio::test]
async fn the_mock_token_endpoint_refuses_what_google_refuses() {
    let google = MockGoogleSa::start().await;
    let email = "rules@acme-prod-42.iam.gserviceaccount.com";
    google.service_account(PROJECT, email);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = |aud: &str, scope: &str, iat: u64, exp: u64| json!({"iss": email, "scope": scope, "aud": aud, "iat": iat, "exp": exp});
    let url = google.token_url();
    let good = claims(&url, CLOUD_PLATFORM_SCOPE, now, now + 3600);
    let post = |form: Vec<(&'static str, String)>| {
        let url = url.clone();
        async move {
            let response = reqwest::Client::new().post(url).form(&form).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let grant = |assertion: String| vec![("grant_type", JWT_BEARER_GRANT.to_owned()), ("assertion", assertion)];
    // (case, form, expected error, expected description)
    type Case<'a> = (&'a str, Vec<(&'static str, String)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "another audience",
            grant(signed(
                &claims("https://elsewhere/token", CLOUD_PLATFORM_SCOPE, now, now + 60),
                Some(PRIVATE_KEY_ID),
                google_sa::TEST_PRIVATE_KEY,
            )),
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        ),
        (
            "longer than an hour",
            grant(signed(
                &claims(&url, CLOUD_PLATFORM_SCOPE, now, now + 3601),
                Some(PRIVATE_KEY_ID),
                google_sa::TEST_PRIVATE_KEY,
            )),
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes)",
        ),
        (
            "expired",
            grant(signed(
                &claims(&url, CLOUD_PLATFORM_SCOPE, now - 7200, now - 3600),
                Some(PRIVATE_KEY_ID),
                google_sa::TEST_PRIVATE_KEY,
            )),
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token",
        ),
        (
            "no scope",
            grant(signed(&claims(&url, "", now, now + 60), Some(PRIVATE_KEY_ID), google_sa::TEST_PRIVATE_KEY)),
            "invalid_scope",
            "Invalid OAuth scope",
        ),
        (
            "another key",
            grant(signed(&good, Some(PRIVATE_KEY_ID), google_sa::OTHER_PRIVATE_KEY)),
            "invalid_grant",
            "Invalid JWT Signature.",
        ),
        (
            "another key id",
            grant(signed(&good, Some("0000"), google_sa::TEST_PRIVATE_KEY)),
            "invalid_grant",
            "Invalid JWT Signature.",
        ),
        (
            "an unknown account",
            grant(signed(
                &json!({"iss": "who@x.iam.gserviceaccount.com", "scope": CLOUD_PLATFORM_SCOPE, "aud": url, "iat": now, "exp": now + 60}),
                None,
                google_sa::TEST_PRIVATE_KEY,
            )),
            "invalid_grant",
            "Invalid grant: account not found",
        ),
        (
            "a refresh grant",
            vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", "1//0g".to_owned())],
            "unsupported_grant_type",
            "Invalid grant_type: refresh_token",
        ),
        (
            "no assertion",
            vec![("grant_type", JWT_BEARER_GRANT.to_owned())],
            "invalid_request",
            "Missing required parameter: assertion",
        ),
    ];
    for (what, form, error, description) in cases {
        let (status, answer) = post(form).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], error, "{what}: {answer}");
        assert!(answer["error_description"].as_str().unwrap().starts_with(description), "{what}: {answer}");
    }
    assert_eq!(google.mints(), 0);

    let (status, answer) = post(grant(signed(&good, Some(PRIVATE_KEY_ID), google_sa::TEST_PRIVATE_KEY))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"access_token": access_token(1), "expires_in": 3599, "token_type": "Bearer"}));
    let response = reqwest::Client::new()
        .post(google.token_url())
        .json(&json!({"grant_type": JWT_BEARER_GRANT}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "a JSON body is refused: the endpoint takes forms only");
}
