//! A login engine over a temporary auth dir and a config aimed at mocks, for tests that drive
//! logins the way the CLI and the management API do (`LoginEngine::start`, `start_device`,
//! `import`), plus the refresher over the same store.

#![allow(dead_code)] // each test binary uses its own part

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_auth::login::{LoginEngine, Refresher, SessionStatus};
use switchyard_auth::{Credential, CredentialStore};
use switchyard_config::ConfigHandle;
use switchyard_providers::ConfigLookup;
use tempfile::TempDir;

/// Bound on every wait: a broken build fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct EngineEnv {
    pub engine: Arc<LoginEngine>,
    pub store: Arc<CredentialStore>,
    pub config: Arc<ConfigHandle>,
    pub auth_dir: PathBuf,
    _dir: TempDir,
}

impl EngineEnv {
    /// An engine whose config is `yaml` (the mocks' `upstream-urls` and anything else).
    pub async fn start(yaml: &str) -> EngineEnv {
        let dir = tempfile::tempdir().unwrap();
        let auth_dir = dir.path().join("auths");
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, format!("auth-dir: {}\n{yaml}", auth_dir.display())).unwrap();
        let (config, _warnings) = ConfigHandle::from_file(&config_path).unwrap();
        let config = Arc::new(config);
        let store = CredentialStore::open(auth_dir.clone()).await.unwrap();
        let engine = LoginEngine::new(store.clone(), config.clone(), Arc::new(switchyard_http::HttpClients::new()));
        EngineEnv { engine, store, config, auth_dir, _dir: dir }
    }

    /// The refresher the server would run over this store.
    pub fn refresher(&self) -> Arc<Refresher> {
        let lookup = Arc::new(ConfigLookup(self.config.clone()));
        Refresher::new(self.store.clone(), lookup, self.config.clone(), Arc::new(switchyard_http::HttpClients::new()))
    }

    /// Waits (bounded) for the login of `state` to end.
    pub async fn outcome(&self, state: &str) -> SessionStatus {
        tokio::time::timeout(DEADLINE, self.engine.sessions().wait_outcome(state))
            .await
            .unwrap_or_else(|_| panic!("login {state} still pending after {DEADLINE:?}"))
    }

    /// The saved file's name after a login that must succeed.
    pub async fn completed(&self, state: &str) -> String {
        match self.outcome(state).await {
            SessionStatus::Completed { file_name } => file_name,
            other => panic!("login {state} did not complete: {other:?}"),
        }
    }

    pub fn credential(&self, file: &str) -> Credential {
        Credential::from_json(&self.read(file)).unwrap()
    }

    pub fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.auth_dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    pub fn mode(&self, file: &str) -> u32 {
        std::fs::metadata(self.auth_dir.join(file)).unwrap().permissions().mode() & 0o777
    }

    /// File names in the auth dir (dot files aside), sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.auth_dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|name| !name.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Polls `done` every 20 ms until it holds; panics after [`DEADLINE`].
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
