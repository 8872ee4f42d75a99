//! `switchyard import <provider> [FILE]`: the real binary with a temp HOME, config and auth dir.
//! A good Vertex key is saved (0600) and summarised; bad files are refused with the precise
//! message and exit 2, and nothing is saved (an existing account stays byte for byte).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_testkit::google_sa;
use tempfile::TempDir;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Bound on every run of the child: a broken build fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(30);
const PROJECT: &str = "acme-prod-42";
const EMAIL: &str = "cli@acme-prod-42.iam.gserviceaccount.com";
const FILE: &str = "vertex-acme-prod-42.json";

struct Home {
    dir: TempDir,
    config: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, format!("port: 8317\nauth-dir: {}\n", dir.path().join("auths").display())).unwrap();
        Home { dir, config }
    }

    fn auth_dir(&self) -> PathBuf {
        self.dir.path().join("auths")
    }

    /// Every file in the auth dir with its bytes.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(self.auth_dir()) else { return Vec::new() };
        let mut files: Vec<(String, Vec<u8>)> = entries
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    }

    /// Writes `content` as a file in HOME and returns its path.
    fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    async fn import(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&self.config)
            .arg("import")
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        tokio::time::timeout(DEADLINE, command.output()).await.expect("import finished in time").unwrap()
    }
}

fn key_bytes(key: &serde_json::Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec_pretty(key).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_good_key_is_saved_0600_and_summarised() {
    let home = Home::new();
    let key = google_sa::service_account(PROJECT, EMAIL);
    let path = home.write("key.json", &key_bytes(&key));
    let out = home.import(&["vertex", path.to_str().unwrap(), "--location", "europe-west4"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let saved_path = home.auth_dir().join(FILE);
    assert!(stdout.contains(&format!("Credential saved to {}", saved_path.display())), "{stdout}");
    for line in [
        format!("  project: {PROJECT}"),
        format!("  email: {EMAIL}"),
        "  location: europe-west4".to_owned(),
        format!("  file: {FILE}"),
    ] {
        assert!(stdout.contains(&line), "{stdout} lacks {line:?}");
    }
    assert!(!stdout.contains("BEGIN") && !text(&out.stderr).contains("BEGIN"), "no key material is printed");

    let mode = std::fs::metadata(&saved_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let saved: Value = serde_json::from_slice(&std::fs::read(&saved_path).unwrap()).unwrap();
    assert_eq!(saved["type"], "vertex");
    assert_eq!(saved["service_account"], Value::Object(key));
    assert_eq!(saved["location"], "europe-west4");
}

#[tokio::test]
async fn a_prefix_names_the_file() {
    let home = Home::new();
    let path = home.write("key.json", &key_bytes(&google_sa::service_account(PROJECT, EMAIL)));
    let out = home.import(&["vertex", path.to_str().unwrap(), "--prefix", "vx"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names: Vec<String> = home.snapshot().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, vec!["vertex-vx-acme-prod-42.json".to_owned()]);
    assert!(text(&out.stdout).contains("  prefix: vx"));
}

#[tokio::test]
async fn bad_files_exit_2_with_the_precise_message_and_nothing_is_saved() {
    let home = Home::new();
    let key = google_sa::service_account(PROJECT, EMAIL);
    let mut no_private_key = key.clone();
    no_private_key.remove("private_key");
    let oauth_client = json!({"web": {"client_id": "x.apps.googleusercontent.com", "client_secret": "GOCSPX-x"}});
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed.json",
            b"{\"type\": \"service_account\",,}".to_vec(),
            "invalid json: the service-account key is not valid JSON (key must be a string at line 1 column ",
        ),
        (
            "client.json",
            serde_json::to_vec(&oauth_client).unwrap(),
            "invalid service account: this is an OAuth client file",
        ),
        ("nokey.json", key_bytes(&no_private_key), "invalid service account: private_key is missing"),
    ];
    for (name, content, message) in cases {
        let path = home.write(name, &content);
        let out = home.import(&["vertex", path.to_str().unwrap()]).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(stderr.contains("Nothing was saved."), "{name}: {stderr}");
        assert!(home.snapshot().is_empty(), "{name}: something was saved");
    }

    // An existing account stays as it is when a bad key for it comes in.
    let good = home.write("good.json", &key_bytes(&key));
    assert_eq!(home.import(&["vertex", good.to_str().unwrap()]).await.status.code(), Some(0));
    let before = home.snapshot();
    let bad = home.write("bad.json", &key_bytes(&no_private_key));
    assert_eq!(home.import(&["vertex", bad.to_str().unwrap(), "--location", "global"]).await.status.code(), Some(2));
    assert_eq!(home.snapshot(), before);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let home = Home::new();
    let path = home.write("key.json", &key_bytes(&google_sa::service_account(PROJECT, EMAIL)));
    let path = path.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["vertex"], "FILE required"),
        (vec!["vertex", "/nonexistent/key.json"], "cannot read /nonexistent/key.json"),
        (vec!["vertex", path, "--location", "us central"], "invalid location: \"us central\""),
        (vec!["vertex", path, "-o", "region=x"], "vertex does not take `region`; it takes --location, --prefix"),
        (vec!["nope", path], "unknown provider `nope`; providers with an import: "),
        (vec!["anthropic", path], "`anthropic` has no import; add its accounts with `switchyard login anthropic`"),
        (vec!["vertex", path, "--method", "cookie"], "unknown import method `cookie` for vertex; use: service-account"),
    ];
    for (args, message) in cases {
        let out = home.import(&args).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(home.snapshot().is_empty());
}
