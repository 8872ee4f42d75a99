//! The providers one configuration offers: the built-in modules plus the `oauth-providers`
//! declared in config. Server, CLI and refresher find logins and refreshers here, by name.

use std::sync::Arc;

use switchyard_auth::Credential;
use switchyard_auth::login::{BrowserLogin, LoginError, RefresherLookup, TokenRefresher};
use switchyard_config::{Config, ConfigHandle, CustomOAuthProvider};

use crate::custom::{CustomOAuth, CustomRefresher};

/// A snapshot built from one `Config`; cheap, so build a new one per use after a reload.
pub struct Registry {
    custom: Vec<CustomOAuthProvider>,
}

impl Registry {
    pub fn new(config: &Config) -> Self {
        Self { custom: config.oauth_providers.clone() }
    }

    fn custom(&self, name: &str) -> Option<&CustomOAuthProvider> {
        self.custom.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    fn builtin_login(name: &str) -> Option<Arc<dyn BrowserLogin>> {
        crate::all().iter().filter_map(|p| p.browser_login()).find(|login| login.spec().answers_to(name))
    }

    /// Every login name, for help texts and "unknown provider" errors.
    pub fn login_names(&self) -> Vec<String> {
        let builtin = crate::all().iter().filter_map(|p| p.browser_login()).map(|l| l.spec().name.to_owned());
        builtin.chain(self.custom.iter().map(|p| p.name.clone())).collect()
    }

    /// Whether `name` (or an alias) names a login, without any network work.
    pub fn has_login(&self, name: &str) -> bool {
        Self::builtin_login(name).is_some() || self.custom(name).is_some()
    }

    /// The login for `name` (a login name or alias). Configured providers that rely on OpenID
    /// discovery fetch their metadata here, so a bad issuer fails before a browser opens.
    pub async fn login(&self, name: &str, http: &reqwest::Client) -> Result<Option<Arc<dyn BrowserLogin>>, LoginError> {
        if let Some(login) = Self::builtin_login(name) {
            return Ok(Some(login));
        }
        match self.custom(name) {
            Some(spec) => Ok(Some(Arc::new(CustomOAuth::resolve(spec, http).await?))),
            None => Ok(None),
        }
    }

    /// The login whose main-port callback route is `/<route>/callback`.
    pub fn login_for_callback_route(&self, route: &str) -> Option<String> {
        crate::all()
            .iter()
            .filter_map(|p| p.browser_login())
            .find(|login| login.spec().callback_route.eq_ignore_ascii_case(route))
            .map(|login| login.spec().name.to_owned())
            .or_else(|| self.custom(route).map(|p| p.name.clone()))
    }

    /// Who renews this credential's tokens, by its provider (`type`).
    pub fn refresher_for(&self, credential: &Credential) -> Option<Arc<dyn TokenRefresher>> {
        let provider = credential.provider()?;
        if let Some(builtin) = crate::by_id(&provider) {
            return builtin.refresher();
        }
        self.custom(&provider).map(|spec| Arc::new(CustomRefresher { spec: spec.clone() }) as Arc<dyn TokenRefresher>)
    }
}

/// The refresher's view of the registry: always the current configuration's providers.
pub struct ConfigLookup(pub Arc<ConfigHandle>);

impl RefresherLookup for ConfigLookup {
    fn refresher_for(&self, credential: &Credential) -> Option<Arc<dyn TokenRefresher>> {
        Registry::new(&self.0.get()).refresher_for(credential)
    }
}
