//! `switchyard doctor` on a real auth dir: reports without changing anything, `--fix` fixes
//! modes and stale temp files only, exit codes 0 / 1 / 2.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

struct Home {
    dir: TempDir,
    config: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let auths = dir.path().join("auths");
        std::fs::create_dir(&auths).unwrap();
        set_mode(&auths, 0o700);
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, format!("port: 8317\nauth-dir: {}\n", auths.display())).unwrap();
        Home { dir, config }
    }

    fn auths(&self) -> PathBuf {
        self.dir.path().join("auths")
    }

    fn file(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = self.auths().join(name);
        std::fs::write(&path, bytes).unwrap();
        set_mode(&path, mode);
        path
    }

    fn doctor(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("doctor")
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const VALID: &[u8] = br#"{"type":"claude","access_token":"at-never-printed"}"#;

#[test]
fn a_clean_dir_exits_0() {
    let home = Home::new();
    home.file("claude-a.json", VALID, 0o600);
    let output = home.doctor(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("ok: no problems found"), "{}", stdout(&output));
}

#[test]
fn problems_are_reported_without_changes_and_fix_repairs_only_modes_and_temps() {
    let home = Home::new();
    home.file("claude-a.json", VALID, 0o644);
    home.file("broken.json", b"{\"type\": \"claude\", ", 0o600);
    home.file("big.json", &vec![b' '; 2 * 1024 * 1024], 0o600);
    set_mode(&home.dir.path().join("config.yaml"), 0o644);
    std::os::unix::fs::symlink(home.dir.path().join("config.yaml"), home.auths().join("link.json")).unwrap();
    let stale = home.file(".switchyard-left.tmp", b"{", 0o600);
    let old = SystemTime::now() - Duration::from_secs(300);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(old).unwrap();
    set_mode(&home.auths(), 0o777);

    let output = home.doctor(&[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for needle in [
        "problem: the auth dir is group/world-accessible (mode 777); --fix sets it to 700",
        "problem: claude-a.json is group/world-accessible (mode 644); --fix sets it to 600",
        "problem: link.json: not a regular file (symlink)",
        "problem: big.json: larger than the 1 MiB cap",
        "problem: broken.json: corrupt (",
        "problem: .switchyard-left.tmp: stale temp file",
        "run `switchyard doctor --fix`",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("at-never-printed"), "doctor printed file content:\n{text}");
    // Without --fix nothing changes.
    assert_eq!(mode(&home.auths()), 0o777);
    assert_eq!(mode(&home.auths().join("claude-a.json")), 0o644);
    assert!(stale.exists());

    let output = home.doctor(&["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["permission_warning"], true, "{report}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["refused"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["corrupt"][0]["name"], "broken.json");

    let output = home.doctor(&["--fix"]);
    let text = stdout(&output);
    // The refused and corrupt files are the user's: they remain, so the exit stays 1.
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("fixed: the auth dir is group/world-accessible (mode 777); now 700"), "{text}");
    assert!(text.contains("fixed: .switchyard-left.tmp"), "{text}");
    assert_eq!(mode(&home.auths()), 0o700);
    assert_eq!(mode(&home.auths().join("claude-a.json")), 0o600);
    assert!(!stale.exists());
    assert!(home.auths().join("broken.json").exists() && home.auths().join("big.json").exists());
    assert!(std::fs::symlink_metadata(home.auths().join("link.json")).unwrap().file_type().is_symlink());
    assert_eq!(mode(&home.dir.path().join("config.yaml")), 0o644, "the symlink's target is never chmod-ed");

    for name in ["broken.json", "big.json", "link.json"] {
        std::fs::remove_file(home.auths().join(name)).unwrap();
    }
    let output = home.doctor(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn loose_modes_alone_are_fixed_to_exit_0() {
    let home = Home::new();
    home.file("claude-a.json", VALID, 0o666);
    let output = home.doctor(&["--fix", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["permission_warning"], true);
    assert_eq!(report["loose_permissions"][0]["fixed"], true);
    assert_eq!(report["ok"], true);
    assert_eq!(mode(&home.auths().join("claude-a.json")), 0o600);
}

#[test]
fn an_unreadable_config_exits_2() {
    let output = Command::new(BIN).args(["--config", "/nonexistent/config.yaml", "doctor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// The server itself warns once at start about loose modes, and says it removed stale temps.
#[test]
fn serve_warns_about_a_world_writable_dir_and_removes_stale_temps() {
    let home = Home::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(&home.config, format!("port: {port}\nauth-dir: {}\n", home.auths().display())).unwrap();
    home.file("claude-a.json", VALID, 0o600);
    let stale = home.file(".switchyard-crash.tmp", b"{", 0o600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(300))
        .unwrap();
    set_mode(&home.auths(), 0o777);
    let log = home.dir.path().join("serve.log");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&home.config)
        .env("HOME", home.dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Bounded wait for the start-up lines: a broken build fails instead of hanging.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("switchyard is serving")
            || std::time::Instant::now() > deadline
            || child.try_wait().unwrap().is_some()
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("group/world-accessible")).collect();
    assert_eq!(warnings.len(), 1, "one warning line expected:\n{text}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("<auth dir> (777)"), "{}", warnings[0]);
    assert!(warnings[0].contains("switchyard doctor --fix"), "{}", warnings[0]);
    assert!(text.contains("removed stale temp files"), "{text}");
    assert!(!stale.exists());
    assert_eq!(mode(&home.auths()), 0o777, "the server only warns; it does not chmod by itself");
}
