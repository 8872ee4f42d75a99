//! A [`LoginEngine`] over a throwaway auth dir, for device logins run the way the server and
//! the CLI run them (background poll, session, save), plus bounded waits.

#![allow(dead_code)] // each test binary uses its own part

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{DeviceLogin, Login, LoginEngine, LoginError, LoginOptions, StartedDevice, new_state};
use switchyard_config::ConfigHandle;
use switchyard_providers::Provider;

/// Bound on every wait: a broken build fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("switchyard-device-{}-{}", std::process::id(), new_state()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Engine {
    pub engine: Arc<LoginEngine>,
    pub store: Arc<CredentialStore>,
    pub config: Arc<ConfigHandle>,
    pub auth_dir: PathBuf,
    _dir: TempDir,
}

impl Engine {
    /// An engine whose config is `yaml` (the mocks' `upstream-urls`).
    pub async fn start(yaml: &str) -> Engine {
        let dir = TempDir::new();
        let config_path = dir.path().join("config.yaml");
        let auth_dir = dir.path().join("auths");
        std::fs::write(&config_path, format!("auth-dir: {}\n{yaml}", auth_dir.display())).unwrap();
        let (config, _warnings) = ConfigHandle::from_file(&config_path).expect("config loads");
        let config = Arc::new(config);
        let store = CredentialStore::open(auth_dir.clone()).await.expect("store opens");
        let engine = LoginEngine::new(store.clone(), config.clone(), Arc::new(switchyard_http::HttpClients::new()));
        Engine { engine, store, config, auth_dir, _dir: dir }
    }

    pub async fn start_device(
        &self,
        login: Arc<dyn DeviceLogin>,
        options: LoginOptions,
    ) -> Result<StartedDevice, LoginError> {
        self.engine.start_device(login, options).await
    }

    /// How the login of `state` ended (the saved file's name, or why not), within [`DEADLINE`].
    pub async fn outcome(&self, state: &str) -> Result<String, LoginError> {
        tokio::time::timeout(DEADLINE, self.engine.wait(state)).await.expect("the login ends in time")
    }

    /// The `*.json` files of the auth dir, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.auth_dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.auth_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn read(&self, name: &str) -> Value {
        serde_json::from_slice(&self.bytes(name)).expect("auth file is JSON")
    }

    pub fn write(&self, name: &str, value: &Value) {
        std::fs::write(self.auth_dir.join(name), serde_json::to_vec_pretty(value).unwrap()).unwrap();
    }

    pub fn mode(&self, name: &str) -> u32 {
        std::fs::metadata(self.auth_dir.join(name)).unwrap().permissions().mode() & 0o777
    }
}

/// The provider's (only) device login.
pub fn device_login(provider: &dyn Provider) -> Arc<dyn DeviceLogin> {
    let methods = provider.login_methods();
    methods
        .into_iter()
        .find_map(|m| match m.login {
            Login::Device(login) => Some(login),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} has a device login", provider.id()))
}

/// Polls `condition` every 20 ms until it holds; panics after [`DEADLINE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
