//! OAuth providers declared in config (`oauth-providers`): any OAuth 2 / OpenID Connect server
//! whose access tokens an upstream API accepts. Our equivalent of CPA's plugin-provided logins.

use std::time::Duration;

use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, LoginContext, LoginError, LoginOutcome, LoginSpec, RefreshError, TokenRefresher,
    jwt_claims,
};
use switchyard_config::CustomOAuthProvider;

use crate::oauth_http::{self, Standard, TokenResponse};

/// A configured provider with its endpoints resolved (explicit, else from OIDC discovery).
pub struct CustomOAuth {
    spec: CustomOAuthProvider,
    authorize_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
}

/// The parts of an OpenID Provider's metadata document we use.
#[derive(serde::Deserialize)]
struct Discovery {
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
}

fn non_empty(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

impl CustomOAuth {
    /// Fills the endpoints the config leaves out from `<issuer>/.well-known/openid-configuration`.
    pub async fn resolve(spec: &CustomOAuthProvider, http: &reqwest::Client) -> Result<Self, LoginError> {
        let mut authorize = non_empty(&spec.authorization_endpoint);
        let mut token = non_empty(&spec.token_endpoint);
        let mut userinfo = non_empty(&spec.userinfo_endpoint);
        if authorize.is_none() || token.is_none() || (userinfo.is_none() && !spec.issuer.trim().is_empty()) {
            let discovered = discover(&spec.issuer, http).await?;
            authorize = authorize.or(discovered.authorization_endpoint);
            token = token.or(discovered.token_endpoint);
            userinfo = userinfo.or(discovered.userinfo_endpoint);
        }
        let missing =
            |what: &str| LoginError::Provider(format!("{}: no {what} endpoint configured or discovered", spec.name));
        Ok(Self {
            spec: spec.clone(),
            authorize_endpoint: authorize.ok_or_else(|| missing("authorization"))?,
            token_endpoint: token.ok_or_else(|| missing("token"))?,
            userinfo_endpoint: userinfo,
        })
    }

    /// For refresh only: the token endpoint saved in the credential at login spares a discovery.
    fn for_refresh(spec: &CustomOAuthProvider, credential: &Credential) -> Option<Self> {
        let token =
            credential.str_field("token_endpoint").map(str::to_owned).or_else(|| non_empty(&spec.token_endpoint))?;
        Some(Self {
            spec: spec.clone(),
            authorize_endpoint: String::new(),
            token_endpoint: token,
            userinfo_endpoint: None,
        })
    }

    /// Client authentication: HTTP Basic with a secret (RFC 6749 §2.3.1), else a public client
    /// identified by `client_id` in the body.
    fn token_request(&self, ctx: &LoginContext, mut form: Vec<(&str, String)>) -> reqwest::RequestBuilder {
        let request = ctx.http.post(&self.token_endpoint).header("Accept", "application/json");
        if self.spec.client_secret.is_empty() {
            form.push(("client_id", self.spec.client_id.clone()));
            request.form(&form)
        } else {
            request.basic_auth(&self.spec.client_id, Some(&self.spec.client_secret)).form(&form)
        }
    }

    fn account_from(&self, claims: &Map<String, Value>) -> Option<String> {
        claims.get(&self.spec.account_claim).and_then(Value::as_str).map(str::to_owned).filter(|a| !a.is_empty())
    }
}

async fn discover(issuer: &str, http: &reqwest::Client) -> Result<Discovery, LoginError> {
    let issuer = issuer.trim().trim_end_matches('/');
    if issuer.is_empty() {
        return Err(LoginError::Provider("no issuer to discover endpoints from".into()));
    }
    let url = format!("{issuer}/.well-known/openid-configuration");
    let failed = |why: String| LoginError::Provider(format!("OpenID discovery at {url} failed: {why}"));
    let response = http.get(&url).timeout(Duration::from_secs(15)).send().await.map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status().as_u16())));
    }
    response.json::<Discovery>().await.map_err(|e| failed(format!("invalid metadata: {e}")))
}

/// The account part of a file name: CPA's safe characters only.
fn file_segment(account: &str) -> String {
    let mut segment: String =
        account.chars().map(|c| if c.is_ascii_alphanumeric() || "@._-".contains(c) { c } else { '-' }).collect();
    // `..` never reaches a file name, whatever the identity provider calls the account.
    while segment.contains("..") {
        segment = segment.replace("..", "-.");
    }
    segment
}

#[async_trait::async_trait]
impl BrowserLogin for CustomOAuth {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: &self.spec.name,
            aliases: &[],
            callback_route: &self.spec.name,
            default_callback_port: self.spec.callback_port,
            callback_path: &self.spec.callback_path,
            pkce: self.spec.pkce,
        }
    }

    /// The listener binds 127.0.0.1, so the redirect names it literally (RFC 8252 §7.3).
    fn redirect_uri(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}{}", self.spec.callback_path)
    }

    fn authorize_url(&self, _ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError> {
        let mut url = url::Url::parse(&self.authorize_endpoint)
            .map_err(|_| LoginError::Provider(format!("{}: invalid authorization endpoint", self.spec.name)))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.spec.client_id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("scope", &self.spec.scopes.join(" "))
                .append_pair("state", request.state);
            if let Some(pkce) = request.pkce {
                query.append_pair("code_challenge", &pkce.challenge).append_pair("code_challenge_method", "S256");
            }
            // OIDC Core §11: servers ignore `offline_access` (no refresh token) unless the user is
            // asked for consent in this request.
            if self.spec.scopes.iter().any(|scope| scope == "offline_access") {
                query.append_pair("prompt", "consent");
            }
        }
        Ok(url.into())
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", request.redirect_uri.to_owned()),
        ];
        if let Some(pkce) = request.pkce {
            form.push(("code_verifier", pkce.verifier.clone()));
        }
        let tokens = oauth_http::exchange(self.token_request(ctx, form), &Standard).await?;
        let access_token = tokens.access_token();
        let mut claims = tokens.str("id_token").and_then(|t| jwt_claims(t).ok()).unwrap_or_default();
        if self.account_from(&claims).is_none()
            && let Some(userinfo) = &self.userinfo_endpoint
        {
            let response = ctx
                .http
                .get(userinfo)
                .bearer_auth(access_token)
                .timeout(oauth_http::TIMEOUT)
                .send()
                .await
                .map_err(|e| LoginError::Identity(oauth_http::describe(&e)))?;
            if !response.status().is_success() {
                return Err(LoginError::Identity(format!("userinfo answered HTTP {}", response.status().as_u16())));
            }
            let info: Map<String, Value> = response
                .json()
                .await
                .map_err(|_| LoginError::Identity("userinfo answered with malformed JSON".into()))?;
            claims.extend(info);
        }
        let account = self
            .account_from(&claims)
            .ok_or_else(|| LoginError::Identity(format!("no `{}` claim for the account", self.spec.account_claim)))?;

        let mut credential = Credential::new(&self.spec.name);
        let fields = credential.fields_mut();
        fields.extend(token_fields(&tokens));
        fields.insert("account".into(), json!(account));
        if let Some(email) = claims.get("email").and_then(Value::as_str) {
            fields.insert("email".into(), json!(email));
        }
        if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
            fields.insert("sub".into(), json!(sub));
        }
        fields.insert("token_endpoint".into(), json!(self.token_endpoint));
        if !self.spec.api_base.is_empty() {
            fields.insert("base_url".into(), json!(self.spec.api_base));
        }
        fields.insert("dialect".into(), json!(self.spec.dialect));
        fields.insert("disabled".into(), json!(false));
        Ok(LoginOutcome { file_name: format!("{}-{}.json", self.spec.name, file_segment(&account)), credential })
    }
}

/// Refreshes credentials of one configured provider.
pub struct CustomRefresher {
    pub(crate) spec: CustomOAuthProvider,
}

#[async_trait::async_trait]
impl TokenRefresher for CustomRefresher {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.spec.refresh_lead_seconds))
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let provider = match CustomOAuth::for_refresh(&self.spec, credential) {
            Some(provider) => provider,
            None => {
                CustomOAuth::resolve(&self.spec, &ctx.http).await.map_err(|e| RefreshError::Transient(e.to_string()))?
            }
        };
        let form = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.to_owned())];
        let tokens = oauth_http::refresh(provider.token_request(ctx, form), &Standard).await?;
        Ok(token_fields(&tokens))
    }
}

/// The token answer's fields as stored in the auth file (a refresh token only when issued, so
/// a non-rotating server keeps the old one).
fn token_fields(tokens: &TokenResponse) -> Map<String, Value> {
    let mut fields = Map::new();
    for key in ["access_token", "refresh_token", "id_token", "token_type", "scope"] {
        if let Some(value) = tokens.str(key) {
            fields.insert(key.into(), json!(value));
        }
    }
    if let Some(expired) = tokens.expiry() {
        fields.insert("expired".into(), json!(expired));
    }
    fields.insert("last_refresh".into(), json!(oauth_http::now()));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_segments_keep_only_safe_characters() {
        assert_eq!(file_segment("a.b@example.com"), "a.b@example.com");
        assert_eq!(file_segment("../../etc/passwd"), "-.--.-etc-passwd");
        assert_eq!(file_segment("x y/z"), "x-y-z");
    }
}
