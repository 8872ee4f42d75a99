//! Kiro token refresh (spec §2.5). Builder ID and IdC tokens refresh at SSO-OIDC's CreateToken
//! with the login's own client; social and imported social tokens at the Kiro auth service.
//! Files in the Kiro IDE's camelCase refresh too; what comes back is always written in our
//! snake_case keys, which every reader looks up first.

use std::time::Duration;

use reqwest::header;
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{LoginContext, RefreshError, TokenRefresher};

use super::{ID, KiroAccount, REFRESH_LEAD, SOCIAL_URL, SOCIAL_USER_AGENT, expiry_from, put};
use crate::oauth_http::{self, TokenResponse, str_at};

pub struct KiroRefresher;

#[async_trait::async_trait]
impl TokenRefresher for KiroRefresher {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let account = KiroAccount::new(credential);
        let tokens = if account.uses_oidc() {
            oidc_refresh(ctx, &account, refresh_token).await?
        } else {
            social_refresh(ctx, refresh_token).await?
        };
        let answer = tokens.json();
        let mut fields = Map::new();
        fields.insert("access_token".into(), tokens.access_token().into());
        // Without a new refresh token the old one stays valid (and stays in the file).
        put(&mut fields, "refresh_token", super::refresh_token_of(answer));
        fields.insert("expires_at".into(), expiry_from(answer).into());
        fields.insert("last_refresh".into(), oauth_http::now().into());
        put(&mut fields, "profile_arn", str_at(answer, &["profileArn"]));
        Ok(fields)
    }
}

async fn oidc_refresh(
    ctx: &LoginContext,
    account: &KiroAccount<'_>,
    refresh_token: &str,
) -> Result<TokenResponse, RefreshError> {
    // Without its client the token cannot be renewed at all: that needs a new login, not a retry.
    let (client_id, client_secret) = account.client().ok_or_else(|| {
        RefreshError::Revoked(
            "this Builder ID / IdC credential has no client_id and client_secret to refresh with; log in again".into(),
        )
    })?;
    let region = account.region();
    if !super::valid_region(region) {
        return Err(RefreshError::Revoked(format!("region {region:?} is not an AWS region name; log in again")));
    }
    let body = json!({
        "clientId": client_id,
        "clientSecret": client_secret,
        "refreshToken": refresh_token,
        "grantType": "refresh_token",
    });
    let request = ctx
        .http
        .post(format!("{}/token", super::oidc_base(ctx, region)))
        .header(header::ACCEPT, "application/json")
        .json(&body);
    oauth_http::refresh(request, &super::KiroWording).await
}

async fn social_refresh(ctx: &LoginContext, refresh_token: &str) -> Result<TokenResponse, RefreshError> {
    let base = ctx.endpoint(ID, "social", SOCIAL_URL);
    let request = ctx
        .http
        .post(format!("{}/refreshToken", base.trim_end_matches('/')))
        .header(header::USER_AGENT, SOCIAL_USER_AGENT)
        .header(header::ACCEPT, "application/json")
        .json(&json!({"refreshToken": refresh_token}));
    oauth_http::refresh(request, &super::KiroWording).await
}
