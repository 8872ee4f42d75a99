//! Crash safety of the auth dir: the real binary is SIGKILLed at random points (seeded; the
//! seed is printed, `CRASH_SEED=<n>` replays it) while uploads, field edits, status toggles and
//! forced refreshes run concurrently. After every kill each `*.json` in the dir is a complete
//! JSON object with mode 0600 that still holds the unknown field the test planted; after each
//! restart the listing names exactly the `*.json` regular files (no temp file is ever an
//! account) and temp files older than 60 s are gone.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::claude::MockClaudeAuth;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const MGMT_KEY: &str = "crash-test-management-key";
const KILLS: usize = 24;
const SEEDED: usize = 4;
/// Bound on waiting for the server to come up: a broken build fails instead of hanging.
const STARTUP: Duration = Duration::from_secs(30);

struct Gateway {
    child: Child,
    base: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(home: &Path, config: &Path, port: u16) -> Gateway {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(home.join("switchyard.log")).unwrap();
    let child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .env("HOME", home)
        .env_remove("MANAGEMENT_PASSWORD")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut gateway = Gateway { child, base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(Some(status)) = gateway.child.try_wait() {
            panic!("switchyard exited early with {status}: {}", log_text(home));
        }
        if let Ok(response) = reqwest::get(format!("{}/healthz", gateway.base)).await
            && response.status() == 200
        {
            return gateway;
        }
        assert!(Instant::now() < deadline, "switchyard not ready: {}", log_text(home));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_text(home: &Path) -> String {
    std::fs::read_to_string(home.join("switchyard.log")).unwrap_or_default()
}

fn write_private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn seeded_name(i: usize) -> String {
    format!("claude-seed{i}@example.com.json")
}

/// One request of the workload, chosen by the seeded RNG.
fn request(
    client: &reqwest::Client,
    base: &str,
    rng: &mut StdRng,
    round: usize,
    serial: usize,
) -> reqwest::RequestBuilder {
    let url = |path: &str| format!("{base}/v0/management{path}");
    let seeded = seeded_name(rng.random_range(0..SEEDED));
    let builder = match rng.random_range(0..4) {
        0 => {
            let name = format!("claude-up{round}-{serial}@example.com.json");
            let body = json!({"type": "claude", "email": format!("up{round}-{serial}@example.com"),
                              "access_token": format!("at-{serial}"), "x_planted": {"round": round, "serial": serial},
                              "padding": "x".repeat(rng.random_range(0..8192))});
            client.request(Method::POST, url(&format!("/auth-files?name={name}"))).json(&body)
        }
        1 => client
            .request(Method::PATCH, url("/auth-files/fields"))
            .json(&json!({"name": seeded, "note": format!("note {round}-{serial}"), "priority": serial % 7})),
        2 => client
            .request(Method::PATCH, url("/auth-files/status"))
            .json(&json!({"name": seeded, "disabled": rng.random_bool(0.5)})),
        _ => client.request(Method::POST, url("/auth-files/refresh")).json(&json!({"name": seeded})),
    };
    builder.bearer_auth(MGMT_KEY)
}

/// Every `*.json` in the dir: a JSON object, mode 0600, the planted field kept. Returns the names.
fn check_files(dir: &Path, seed: u64, round: usize) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue;
        }
        let context = format!("seed {seed}, round {round}, {name}");
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        assert!(meta.is_file(), "{context}: not a regular file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{context}: mode");
        let value: Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap())
            .unwrap_or_else(|e| panic!("{context}: not valid JSON after a kill: {e}"));
        assert!(value.is_object(), "{context}: not an object");
        assert!(value.get("x_planted").is_some_and(|v| !v.is_null()), "{context}: planted field lost: {value}");
        names.insert(name);
    }
    names
}

fn plant_old_temp(dir: &Path, round: usize) -> PathBuf {
    let path = dir.join(format!(".switchyard-planted{round}.tmp"));
    write_private(&path, b"{\"type\": \"claude\", \"access_tok");
    let old = SystemTime::now() - Duration::from_secs(300);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_never_leaves_a_broken_or_loaded_temp_file() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64);
    println!("crash-safety seed: {seed} (replay with CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    let oauth = MockClaudeAuth::start().await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("auths");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let port = free_port();
    let config = home.path().join("config.yaml");
    let yaml = format!(
        "port: {port}\nauth-dir: {}\nremote-management:\n  secret-key: {MGMT_KEY}\n{}",
        dir.display(),
        oauth.upstream_urls_yaml()
    );
    write_private(&config, yaml.as_bytes());
    let expired = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    for i in 0..SEEDED {
        let tokens = oauth.issue_tokens();
        let file = json!({"type": "claude", "email": format!("seed{i}@example.com"), "access_token": tokens.access_token,
                          "refresh_token": tokens.refresh_token, "expired": expired,
                          "x_planted": {"seeded": i, "nested": [1, {"k": "v"}]}});
        write_private(&dir.join(seeded_name(i)), &serde_json::to_vec_pretty(&file).unwrap());
    }

    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut planted = plant_old_temp(&dir, 0);
    for round in 0..KILLS {
        let gateway = start(home.path(), &config, port).await;
        assert!(!planted.exists(), "seed {seed}, round {round}: a temp file older than 60 s survived a start");

        // The listing names exactly the `*.json` regular files: no temp file is an account.
        let listing: Value = client
            .get(format!("{}/v0/management/auth-files", gateway.base))
            .bearer_auth(MGMT_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed: BTreeSet<String> =
            listing["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(listed, check_files(&dir, seed, round), "seed {seed}, round {round}: listing vs dir");
        for file in listing["files"].as_array().unwrap() {
            assert_ne!(file["status_message"], "not a regular file", "{file}");
            assert!(file["refused"].is_null(), "seed {seed}, round {round}: {file}");
        }

        // Concurrent workload; the kill comes after a random number of answers, with more in flight.
        let kill_after = rng.random_range(0..12);
        let answered = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let mut worker_rng = StdRng::seed_from_u64(rng.random());
            let (client, base, answered) = (client.clone(), gateway.base.clone(), answered.clone());
            tasks.push(tokio::spawn(async move {
                for serial in 0.. {
                    let serial = worker * 1_000 + serial;
                    if request(&client, &base, &mut worker_rng, round, serial).send().await.is_err() {
                        return; // the server is gone
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        while answered.load(Ordering::SeqCst) < kill_after {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(gateway); // SIGKILL, then reaped
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        check_files(&dir, seed, round);
        planted = plant_old_temp(&dir, round + 1);
    }
    let gateway = start(home.path(), &config, port).await;
    assert!(!planted.exists(), "seed {seed}: the last planted temp file survived a start");
    drop(gateway);
    check_files(&dir, seed, KILLS);
}
