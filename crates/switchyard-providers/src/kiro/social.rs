//! Kiro social login (Google or GitHub through the Kiro auth service, PKCE S256), spec §2.2.
//!
//! The redirect URI is the custom scheme `kiro://kiro.kiroAgent/authenticate-success`, which no
//! local listener can take: the browser hands it to the Kiro IDE (or shows an error), and the
//! user pastes the `kiro://...?code=..&state=..` URL back (`POST /v0/management/oauth-callback`
//! or the CLI). Main-port callback route: `/kiro/callback`.

use reqwest::header;
use serde_json::json;
use switchyard_auth::Credential;
use switchyard_auth::login::{AuthorizeRequest, BrowserLogin, LoginContext, LoginError, LoginOutcome, LoginSpec};

use super::{ID, SOCIAL_URL, SOCIAL_USER_AGENT, email_from_token, expiry_from, kiro_file_name, put};
use crate::oauth_http::{self, str_at};

/// Where the Kiro auth service sends the browser back to.
pub const REDIRECT_URI: &str = "kiro://kiro.kiroAgent/authenticate-success";

/// The identity provider behind a social login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocialIdp {
    Google,
    Github,
}

impl SocialIdp {
    /// The `idp` parameter and the file's `provider`.
    pub fn name(self) -> &'static str {
        match self {
            SocialIdp::Google => "Google",
            SocialIdp::Github => "Github",
        }
    }

    fn file_kind(self) -> &'static str {
        match self {
            SocialIdp::Google => "google",
            SocialIdp::Github => "github",
        }
    }
}

pub struct KiroSocialLogin {
    idp: SocialIdp,
}

impl KiroSocialLogin {
    pub fn new(idp: SocialIdp) -> Self {
        Self { idp }
    }
}

fn missing_pkce() -> LoginError {
    LoginError::Provider("Kiro social login needs PKCE".into())
}

#[async_trait::async_trait]
impl BrowserLogin for KiroSocialLogin {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: ID,
            aliases: &[],
            callback_route: ID,
            // CPA's web forwarder port; nothing listens there (see `local_callback`).
            default_callback_port: 9876,
            callback_path: "/oauth/callback",
            pkce: true,
        }
    }

    fn redirect_uri(&self, _port: u16) -> String {
        REDIRECT_URI.to_owned()
    }

    fn local_callback(&self) -> bool {
        false
    }

    fn authorize_url(&self, ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError> {
        let pkce = request.pkce.ok_or_else(missing_pkce)?;
        let base = ctx.endpoint(ID, "social", SOCIAL_URL);
        let login = format!("{}/login", base.trim_end_matches('/'));
        let params = [
            ("idp", self.idp.name()),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", request.state),
            ("prompt", "select_account"),
        ];
        crate::oauth_http::url_with_params("Kiro login URL", &login, &params)
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError> {
        let pkce = request.pkce.ok_or_else(missing_pkce)?;
        let base = ctx.endpoint(ID, "social", SOCIAL_URL);
        let body = json!({"code": code, "code_verifier": pkce.verifier, "redirect_uri": REDIRECT_URI});
        let exchange = ctx
            .http
            .post(format!("{}/oauth/token", base.trim_end_matches('/')))
            .header(header::USER_AGENT, SOCIAL_USER_AGENT)
            .header(header::ACCEPT, "application/json")
            .json(&body);
        let tokens = oauth_http::exchange(exchange, &super::KiroWording).await?;
        let answer = tokens.json();
        let email = email_from_token(tokens.access_token());
        let profile_arn = str_at(answer, &["profileArn"]);

        let mut credential = Credential::new(ID);
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), tokens.access_token().into());
        put(fields, "refresh_token", super::refresh_token_of(answer));
        put(fields, "profile_arn", profile_arn);
        fields.insert("expires_at".into(), expiry_from(answer).into());
        fields.insert("auth_method".into(), "social".into());
        fields.insert("provider".into(), self.idp.name().into());
        put(fields, "email", email.as_deref());
        fields.insert("last_refresh".into(), oauth_http::now().into());
        let file_name = kiro_file_name(self.idp.file_kind(), email.as_deref(), profile_arn);
        Ok(LoginOutcome { file_name, credential })
    }
}
