//! A real Switchyard server on a loopback port, with its own config file and auth dir.

#![allow(dead_code)] // each test binary uses a different part of this harness

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::{Client, RequestBuilder};
use switchyard_auth::CredentialStore;
use switchyard_config::ConfigHandle;
use switchyard_server::AppState;
use tempfile::TempDir;

pub const KEY: &str = "test-management-key";

pub struct TestServer {
    pub base: String,
    pub auth_dir: PathBuf,
    pub config_path: PathBuf,
    pub state: Arc<AppState>,
    pub client: Client,
    _dir: TempDir,
    _task: tokio::task::JoinHandle<()>,
}

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard-auth/tests/corpus")
}

pub struct Options<'a> {
    /// Extra YAML appended after `auth-dir` and the management section.
    pub extra_yaml: &'a str,
    pub secret_key: Option<&'a str>,
    pub management_password: Option<&'a str>,
    pub with_corpus: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self { extra_yaml: "", secret_key: Some(KEY), management_password: None, with_corpus: false }
    }
}

pub async fn start() -> TestServer {
    start_with(Options::default()).await
}

pub async fn start_with(options: Options<'_>) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let auth_dir = dir.path().join("auths");
    if options.with_corpus {
        std::fs::create_dir_all(&auth_dir).unwrap();
        for entry in std::fs::read_dir(corpus_dir()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), auth_dir.join(entry.file_name())).unwrap();
        }
    }
    let config_path = dir.path().join("config.yaml");
    let mut yaml = format!("port: 8317\nauth-dir: {}\n", auth_dir.display());
    if let Some(secret) = options.secret_key {
        yaml.push_str(&format!("remote-management:\n  secret-key: {secret}\n"));
    }
    yaml.push_str(options.extra_yaml);
    std::fs::write(&config_path, yaml).unwrap();
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (handle, _warnings) = ConfigHandle::from_file(&config_path).unwrap();
    let store = CredentialStore::open(auth_dir.clone()).await.unwrap();
    let state = AppState::new(Arc::new(handle), store, options.management_password.map(str::to_owned));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = switchyard_server::app(state.clone());
    let config = state.config.clone();
    let task = tokio::spawn(async move {
        switchyard_server::serve(listener, app, config, std::future::pending()).await.unwrap();
    });
    TestServer { base, auth_dir, config_path, state, client: Client::new(), _dir: dir, _task: task }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A management request carrying the right key.
    pub fn mgmt(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(&format!("/v0/management{path}"))).bearer_auth(KEY)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.auth_dir.join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.file(name)).unwrap()
    }

    /// Every file in the auth dir with its bytes, for "nothing changed on disk" assertions.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&self.auth_dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap())
                    .map(|e| {
                        (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }
}

pub async fn json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"));
    (status, value)
}
