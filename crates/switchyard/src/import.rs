//! `switchyard import <provider> [FILE]`: add an account from a file the user already has (a
//! Vertex AI service-account key, another tool's token file). The import is found through the
//! registry's login methods of kind Import, and its Asks decide which options it takes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use switchyard_auth::CredentialStore;
use switchyard_auth::login::{Login, LoginEngine, LoginError, LoginOptions};
use switchyard_config::ConfigHandle;
use switchyard_http::HttpClients;
use switchyard_providers::{AskKind, LoginKind, LoginMethod, Registry};

use crate::login::exit;

/// Files to import are a few KiB; anything past this is not one (as for uploads).
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Credential fields printed after a successful import, when present.
const SUMMARY_FIELDS: &[(&str, &str)] = &[
    ("project_id", "project"),
    ("email", "email"),
    ("location", "location"),
    ("region", "region"),
    ("prefix", "prefix"),
];

pub struct ImportArgs {
    pub provider: String,
    pub file: Option<PathBuf>,
    pub method: Option<String>,
    /// Options by Ask name (`location`, `prefix`, anything given as `-o NAME=VALUE`).
    pub options: Vec<(String, String)>,
}

pub async fn run(config: Arc<ConfigHandle>, args: ImportArgs) -> ExitCode {
    match import(config, args).await {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err((code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn usage(message: impl Into<String>) -> Failure {
    (exit::USAGE, message.into())
}

async fn import(config: Arc<ConfigHandle>, args: ImportArgs) -> Result<(), Failure> {
    let current = config.get();
    let registry = Registry::new(&current);
    let method = import_method(&registry, &args.provider, args.method.as_deref())?;
    let Login::Import(login) = &method.login else { unreachable!("filtered to import methods") };
    let options = options_for(&method, &args)?;
    let file_ask = method.asks.iter().find(|ask| ask.kind == AskKind::File);
    let path = args.file.clone().or_else(|| file_ask.and_then(|ask| ask.default).map(expand_home));
    let file = match (&path, file_ask) {
        (Some(path), _) => Some(read_file(path).await?),
        (None, Some(ask)) if ask.required => {
            return Err(usage(format!("FILE required: give the {} to import", ask.label.to_lowercase())));
        }
        (None, _) => None,
    };

    let auth_dir = current.auth_dir_path();
    let store = CredentialStore::open(auth_dir.clone())
        .await
        .map_err(|error| usage(format!("cannot open the auth directory {}: {error}", auth_dir.display())))?;
    let engine = LoginEngine::new(store.clone(), config.clone(), Arc::new(HttpClients::new()));
    let imported = engine.import(&**login, file.as_deref(), &options).await.map_err(|error| {
        let code = match error {
            LoginError::InvalidInput(_) | LoginError::Duplicate { .. } => exit::USAGE,
            _ => exit::PROVIDER_ERROR,
        };
        let what = path.as_deref().map(|p| format!(" {}", p.display())).unwrap_or_default();
        (code, format!("Import of{what} failed: {error}\nNothing was saved."))
    })?;
    println!("Imported. Credential saved to {}", store.dir().join(&imported.file_name).display());
    for (key, label) in SUMMARY_FIELDS {
        if let Some(value) = imported.credential.str_field(key) {
            println!("  {label}: {value}");
        }
    }
    println!("  file: {}", imported.file_name);
    Ok(())
}

/// The import method of `name` (`wanted`, or its first of kind Import).
fn import_method(registry: &Registry, name: &str, wanted: Option<&str>) -> Result<LoginMethod, Failure> {
    let imports: Vec<LoginMethod> = registry
        .methods(name)
        .into_iter()
        .filter(|m| m.kind == LoginKind::Import && m.login.answers_to(name))
        .collect();
    if imports.is_empty() {
        if registry.has_login(name) {
            return Err(usage(format!("`{name}` has no import; add its accounts with `switchyard login {name}`")));
        }
        let names: Vec<String> = import_names(registry);
        return Err(usage(format!("unknown provider `{name}`; providers with an import: {}", names.join(", "))));
    }
    match wanted.map(str::trim).filter(|m| !m.is_empty()) {
        None => Ok(imports[0].clone()),
        Some(wanted) => imports.iter().find(|m| m.answers_to(wanted)).cloned().ok_or_else(|| {
            let valid: Vec<&str> = imports.iter().map(|m| m.id).collect();
            usage(format!("unknown import method `{wanted}` for {name}; use: {}", valid.join(", ")))
        }),
    }
}

/// Every login name that has an import.
fn import_names(registry: &Registry) -> Vec<String> {
    registry
        .login_names()
        .into_iter()
        .filter(|name| registry.methods(name).iter().any(|m| m.kind == LoginKind::Import))
        .collect()
}

/// The options given, checked against the method's Asks, with the Asks' defaults filled in.
fn options_for(method: &LoginMethod, args: &ImportArgs) -> Result<LoginOptions, Failure> {
    let takes: Vec<&str> = method.asks.iter().filter(|a| a.kind != AskKind::File).map(|a| a.name).collect();
    let mut options = LoginOptions::new();
    for (name, value) in &args.options {
        if !takes.contains(&name.as_str()) {
            let valid: Vec<String> = takes.iter().map(|t| format!("--{}", t.replace('_', "-"))).collect();
            let valid = if valid.is_empty() { "no options".to_owned() } else { valid.join(", ") };
            return Err(usage(format!("{} does not take `{name}`; it takes {valid}", args.provider)));
        }
        options.insert(name.clone(), value.trim().to_owned());
    }
    for ask in method.asks.iter().filter(|a| a.kind != AskKind::File) {
        if options.get(ask.name).is_none_or(|v| v.is_empty()) {
            match ask.default {
                Some(default) => {
                    options.insert(ask.name.to_owned(), default.to_owned());
                }
                None if ask.required => {
                    return Err(usage(format!("--{} is required ({})", ask.name.replace('_', "-"), ask.label)));
                }
                None => {
                    options.remove(ask.name);
                }
            }
        }
    }
    Ok(options)
}

/// `~/…` under `$HOME`.
pub(crate) fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

async fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let cannot = |why: String| usage(format!("cannot read {}: {why}", path.display()));
    let metadata = tokio::fs::metadata(path).await.map_err(|e| cannot(e.to_string()))?;
    if !metadata.is_file() {
        return Err(cannot("not a file".into()));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(cannot(format!("{} bytes is more than the {MAX_FILE_BYTES}-byte limit", metadata.len())));
    }
    tokio::fs::read(path).await.map_err(|e| cannot(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_relative_defaults_are_expanded() {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if let Some(home) = home {
            assert_eq!(
                expand_home("~/.aws/sso/cache/kiro-auth-token.json"),
                home.join(".aws/sso/cache/kiro-auth-token.json")
            );
        }
        assert_eq!(expand_home("/etc/key.json"), PathBuf::from("/etc/key.json"));
        assert_eq!(expand_home("key.json"), PathBuf::from("key.json"));
    }

    #[test]
    fn options_get_the_asks_defaults_and_unknown_ones_are_refused() {
        let registry = Registry::new(&Default::default());
        let method = import_method(&registry, "vertex", None).unwrap();
        let args = |options: &[(&str, &str)]| ImportArgs {
            provider: "vertex".into(),
            file: None,
            method: None,
            options: options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        let options = options_for(&method, &args(&[("prefix", " vx ")])).unwrap();
        assert_eq!(options.get("location").map(String::as_str), Some("us-central1"));
        assert_eq!(options.get("prefix").map(String::as_str), Some("vx"));
        let (code, message) = options_for(&method, &args(&[("cookie", "x")])).unwrap_err();
        assert_eq!(
            (code, message.as_str()),
            (exit::USAGE, "vertex does not take `cookie`; it takes --location, --prefix")
        );
    }
}
