//! The providers one configuration offers: the built-in modules plus the `oauth-providers`
//! declared in config. Server, CLI and refresher find logins, refreshers and the capability
//! list here, by name, so none of them knows a provider.

use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{ImportLogin, Login, LoginError, RefresherLookup, TokenRefresher};
use switchyard_config::{Config, ConfigHandle, CustomOAuthProvider};

use crate::custom::{CustomOAuth, CustomRefresher};
use crate::{Ask, Endpoint, LoginKind, LoginMethod, Provider};

/// A snapshot built from one `Config`; cheap, so build a new one per use after a reload.
pub struct Registry {
    custom: Vec<CustomOAuthProvider>,
}

/// One provider as panels and `switchyard providers` list it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Capability {
    pub id: String,
    pub label: String,
    /// Auth-file `type` values it owns.
    pub file_types: Vec<String>,
    /// Declared in config (`oauth-providers`) rather than built in.
    pub custom: bool,
    /// Whether Switchyard can send requests with its accounts.
    pub serves: bool,
    /// Every way to add an account, the default first.
    pub logins: Vec<LoginCapability>,
    /// Upstream URLs, by their `upstream-urls.<id>.<name>` key, with the built-in defaults.
    pub endpoints: Vec<Endpoint>,
}

/// One login method of a [`Capability`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoginCapability {
    /// The `<login>` of `/v0/management/<login>-auth-url` and `switchyard login <login>`.
    pub login: String,
    /// Its `method` value (`browser`, `device`, `builder-id`, ...).
    pub method: String,
    pub aliases: Vec<String>,
    pub label: String,
    pub kind: LoginKind,
    pub asks: Vec<Ask>,
    /// The method used when none is named.
    pub default: bool,
}

impl Registry {
    pub fn new(config: &Config) -> Self {
        Self { custom: config.oauth_providers.clone() }
    }

    /// Names of the config-declared providers.
    pub(crate) fn custom_names(&self) -> impl Iterator<Item = &str> {
        self.custom.iter().map(|p| p.name.as_str())
    }

    fn custom(&self, name: &str) -> Option<&CustomOAuthProvider> {
        self.custom.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The built-in provider one of whose logins answers to `name`, with its methods.
    fn builtin(name: &str) -> Option<(&'static dyn Provider, Vec<LoginMethod>)> {
        crate::all().iter().find_map(|provider| {
            let methods = provider.login_methods();
            methods.iter().any(|m| m.login.answers_to(name)).then_some((*provider, methods))
        })
    }

    /// Every login name, for help texts and "unknown provider" errors.
    pub fn login_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for provider in crate::all() {
            for method in provider.login_methods() {
                let name = method.login.name().to_owned();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.extend(self.custom.iter().map(|p| p.name.clone()));
        names
    }

    /// Whether `name` (or an alias) names a login, without any network work.
    pub fn has_login(&self, name: &str) -> bool {
        Self::builtin(name).is_some() || self.custom(name).is_some()
    }

    /// The methods of the login `name`, the default first (empty for an unknown name).
    /// Configured providers have one browser method, resolved only by [`Registry::login`].
    pub fn methods(&self, name: &str) -> Vec<LoginMethod> {
        Self::builtin(name).map(|(_, methods)| methods).unwrap_or_default()
    }

    /// The login `name` (a login name or alias) with `method` (its id or an alias; `None` = the
    /// provider's default method). An unknown method is [`LoginError::InvalidInput`] naming the
    /// valid ones. Configured providers that rely on OpenID discovery fetch their metadata here,
    /// so a bad issuer fails before a browser opens.
    pub async fn login(
        &self,
        name: &str,
        method: Option<&str>,
        http: &reqwest::Client,
    ) -> Result<Option<Login>, LoginError> {
        if let Some(chosen) = self.method(name, method)? {
            return Ok(Some(chosen.login));
        }
        let Some(spec) = self.custom(name) else { return Ok(None) };
        if let Some(method) = method.filter(|m| !m.eq_ignore_ascii_case("browser")) {
            return Err(LoginError::InvalidInput(format!("unknown login method `{method}` for {name}; use: browser")));
        }
        Ok(Some(Login::Browser(Arc::new(CustomOAuth::resolve(spec, http).await?))))
    }

    /// The built-in login `name`'s method `method` (its id or an alias; `None` = the default),
    /// with what it asks: what the CLI validates its flags against. An unknown method is
    /// [`LoginError::InvalidInput`] naming the valid ones; `Ok(None)` when no built-in login is
    /// called `name` (configured providers have just their browser login, see [`Registry::login`]).
    pub fn method(&self, name: &str, method: Option<&str>) -> Result<Option<LoginMethod>, LoginError> {
        let Some((_, methods)) = Self::builtin(name) else { return Ok(None) };
        let methods: Vec<LoginMethod> = methods.into_iter().filter(|m| m.login.answers_to(name)).collect();
        pick_method(name, methods, method).map(Some)
    }

    /// The import that takes an uploaded auth file which is really another tool's token file
    /// (e.g. the Kiro IDE's cache), if any does.
    pub fn import_for_upload(&self, document: &Map<String, Value>) -> Option<Arc<dyn ImportLogin>> {
        crate::all().iter().flat_map(|p| p.login_methods()).find_map(|method| match method.login {
            Login::Import(import) if import.recognises_upload(document) => Some(import),
            _ => None,
        })
    }

    /// The login whose main-port callback route is `/<route>/callback`.
    pub fn login_for_callback_route(&self, route: &str) -> Option<String> {
        crate::all()
            .iter()
            .flat_map(|p| p.login_methods())
            .find_map(|method| match method.login {
                Login::Browser(login) if login.spec().callback_route.eq_ignore_ascii_case(route) => {
                    Some(login.spec().name.to_owned())
                }
                _ => None,
            })
            .or_else(|| self.custom(route).map(|p| p.name.clone()))
    }

    /// Who renews this credential's tokens, by its provider (`type`).
    pub fn refresher_for(&self, credential: &Credential) -> Option<Arc<dyn TokenRefresher>> {
        let provider = credential.provider()?;
        if let Some(builtin) = crate::for_file_type(&provider).or_else(|| crate::by_id(&provider)) {
            return builtin.refresher();
        }
        self.custom(&provider).map(|spec| Arc::new(CustomRefresher { spec: spec.clone() }) as Arc<dyn TokenRefresher>)
    }

    /// Why Switchyard cannot send requests with accounts of this credential's provider, if it
    /// cannot: the provider has no executor (yet), or the file's `type` names no provider.
    /// Such accounts are neither listed in `/v1/models` nor routed to.
    pub fn unservable_reason(&self, credential: &Credential) -> Option<String> {
        let Some(provider) = credential.provider() else {
            return Some("the file has no `type`".into());
        };
        if let Some(builtin) = crate::for_file_type(&provider).or_else(|| crate::by_id(&provider)) {
            return builtin.executor().is_none().then(|| format!("Switchyard has no executor for {}", builtin.id()));
        }
        match self.custom(&provider) {
            Some(spec) if custom_serves(spec) => None,
            Some(spec) => {
                Some(format!("Switchyard has no executor for the `{}` dialect of {}", spec.dialect, spec.name))
            }
            None => Some(format!("no provider handles type `{provider}`")),
        }
    }

    /// Every provider this configuration offers, built-in ones first, with its logins and
    /// endpoints: what `GET /v0/management/providers` and `switchyard providers` show.
    pub fn capabilities(&self) -> Vec<Capability> {
        let builtin = crate::all().iter().map(|provider| {
            let methods = provider.login_methods();
            Capability {
                id: provider.id().to_owned(),
                label: provider.label().to_owned(),
                file_types: provider.file_types().iter().map(|t| (*t).to_owned()).collect(),
                custom: false,
                serves: provider.executor().is_some(),
                logins: methods
                    .iter()
                    .enumerate()
                    .map(|(index, method)| LoginCapability {
                        login: method.login.name().to_owned(),
                        method: method.id.to_owned(),
                        aliases: method.aliases.iter().map(|a| (*a).to_owned()).collect(),
                        label: method.label.to_owned(),
                        kind: method.kind,
                        asks: method.asks.to_vec(),
                        default: default_method(&methods, method.login.name()) == Some(index),
                    })
                    .collect(),
                endpoints: provider.endpoints().to_vec(),
            }
        });
        let custom = self.custom.iter().map(|spec| Capability {
            id: spec.name.clone(),
            label: spec.name.clone(),
            file_types: vec![spec.name.to_ascii_lowercase()],
            custom: true,
            serves: custom_serves(spec),
            logins: vec![LoginCapability {
                login: spec.name.clone(),
                method: "browser".into(),
                aliases: Vec::new(),
                label: "Browser login".into(),
                kind: LoginKind::Browser,
                asks: Vec::new(),
                default: true,
            }],
            endpoints: Vec::new(),
        });
        builtin.chain(custom).collect()
    }
}

/// Whether requests can reach a configured provider: its token is used as a key against its
/// `api-base` by the executor of its dialect.
fn custom_serves(spec: &CustomOAuthProvider) -> bool {
    matches!(spec.dialect.as_str(), "openai" | "claude" | "openai-responses")
}

/// `method` among `methods` (which all belong to the login `name`), or the default: the first
/// browser or device method, else the first of any kind.
fn pick_method(name: &str, methods: Vec<LoginMethod>, method: Option<&str>) -> Result<LoginMethod, LoginError> {
    let chosen = match method.map(str::trim).filter(|m| !m.is_empty()) {
        Some(wanted) => methods.iter().find(|m| m.answers_to(wanted)).ok_or_else(|| {
            let valid: Vec<String> = methods
                .iter()
                .map(|m| match m.aliases {
                    [] => m.id.to_owned(),
                    aliases => format!("{} ({})", m.id, aliases.join(", ")),
                })
                .collect();
            LoginError::InvalidInput(format!("unknown login method `{wanted}` for {name}; use: {}", valid.join(", ")))
        })?,
        None => default_method(&methods, name)
            .map(|index| &methods[index])
            .ok_or_else(|| LoginError::InvalidInput(format!("{name} has no login method")))?,
    };
    Ok(chosen.clone())
}

/// Which of `methods` the login `name` uses when no method is named: its first browser or
/// device method, else its first of any kind.
fn default_method(methods: &[LoginMethod], name: &str) -> Option<usize> {
    let of_login = || methods.iter().enumerate().filter(|(_, m)| m.login.answers_to(name));
    of_login()
        .find(|(_, m)| matches!(m.kind, LoginKind::Browser | LoginKind::Device))
        .or_else(|| of_login().next())
        .map(|(index, _)| index)
}

/// The refresher's view of the registry: always the current configuration's providers.
pub struct ConfigLookup(pub Arc<ConfigHandle>);

impl RefresherLookup for ConfigLookup {
    fn refresher_for(&self, credential: &Credential) -> Option<Arc<dyn TokenRefresher>> {
        Registry::new(&self.0.get()).refresher_for(credential)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn registry(yaml: &str) -> Registry {
        Registry::new(&switchyard_config::parse(yaml).expect("test config parses").config)
    }

    #[test]
    fn endpoints_have_unique_names_and_absolute_defaults() {
        for provider in crate::all() {
            let mut names = HashSet::new();
            for endpoint in provider.endpoints() {
                assert!(names.insert(endpoint.name), "{}: endpoint {} twice", provider.id(), endpoint.name);
                assert!(endpoint.default.starts_with("https://"), "{}: {}", provider.id(), endpoint.default);
                assert!(url::Url::parse(endpoint.default).is_ok(), "{}: {}", provider.id(), endpoint.default);
            }
        }
    }

    #[test]
    fn the_default_method_is_the_one_capabilities_mark() {
        let registry = registry("");
        for capability in registry.capabilities().into_iter().filter(|c| !c.custom) {
            for login in &capability.logins {
                let default = registry.method(&login.login, None).unwrap().expect("a built-in login");
                assert_eq!(default.id == login.method, login.default, "{} {}", login.login, login.method);
                let chosen = registry.method(&login.login, Some(&login.method)).unwrap().unwrap();
                assert_eq!(chosen.id, login.method);
            }
        }
    }

    #[test]
    fn an_unknown_method_names_the_valid_ones() {
        let error = registry("").method("kimi", Some("cookie")).err().unwrap();
        assert_eq!(error, LoginError::InvalidInput("unknown login method `cookie` for kimi; use: device".into()));
        assert!(registry("").method("nope", None).unwrap().is_none());
    }

    #[test]
    fn unservable_reasons_name_what_is_missing() {
        let registry = registry(
            "oauth-providers:\n  - name: gem\n    client-id: c\n    issuer: https://id.example\n    dialect: gemini\n  \
             - name: acme\n    client-id: c\n    issuer: https://id.example\n    dialect: openai\n",
        );
        let reason = |json: &str| registry.unservable_reason(&Credential::from_json(json.as_bytes()).unwrap());
        assert_eq!(reason(r#"{"type":"kimi"}"#), None);
        assert_eq!(reason(r#"{"type":"acme"}"#), None);
        assert_eq!(
            reason(r#"{"type":"gem"}"#).as_deref(),
            Some("Switchyard has no executor for the `gemini` dialect of gem")
        );
        assert_eq!(reason(r#"{"type":"mystery"}"#).as_deref(), Some("no provider handles type `mystery`"));
        assert_eq!(reason(r#"{"access_token":"x"}"#).as_deref(), Some("the file has no `type`"));
        for provider in crate::all() {
            let file = format!(r#"{{"type":"{}"}}"#, provider.file_types()[0]);
            assert_eq!(reason(&file).is_none(), provider.executor().is_some(), "{}", provider.id());
        }
    }
}
