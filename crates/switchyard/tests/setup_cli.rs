//! `switchyard setup <client>` run as a user runs it, with a temp HOME: the files each client
//! reads, merged into what is there, the replaced file backed up, `--dry-run` writing nothing,
//! and a file that cannot be merged left alone.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

struct Home {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "host: 0.0.0.0\nport: 9123\napi-keys:\n  - client-key-1\n  - client-key-2\n").unwrap();
        Home { dir, config }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    fn json(&self, relative: &str) -> Value {
        serde_json::from_str(&self.read(relative)).unwrap()
    }

    fn setup(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("setup")
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("USERPROFILE")
            .output()
            .unwrap()
    }

    /// The backups next to `relative`, as (name, content).
    fn backups(&self, relative: &str) -> Vec<(String, String)> {
        let path = self.path(relative);
        let prefix = format!("{}.bak-", path.file_name().unwrap().to_string_lossy());
        let mut found: Vec<(String, String)> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap()))
            .collect();
        found.sort();
        found
    }
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn claude_code_gets_a_new_settings_file_from_the_config() {
    let home = Home::new();
    let stdout = ok(&home.setup(&["claude"]));
    assert!(stdout.contains("wrote") && stdout.contains(".claude/settings.json"), "{stdout}");
    assert_eq!(
        home.json(".claude/settings.json"),
        json!({"env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9123", "ANTHROPIC_AUTH_TOKEN": "client-key-1"}})
    );
    assert_eq!(mode(&home.path(".claude/settings.json")), 0o600, "it holds a key");
    assert!(home.backups(".claude/settings.json").is_empty(), "nothing was replaced");
}

#[test]
fn an_existing_file_is_merged_into_and_backed_up() {
    let home = Home::new();
    let before = r#"{"theme": "dark", "env": {"HTTPS_PROXY": "http://proxy:3128", "ANTHROPIC_BASE_URL": "http://old"}, "model": "opus"}"#;
    home.write(".claude/settings.json", before);
    ok(&home.setup(&[
        "claude-code",
        "--base-url",
        "http://gw.example:8317/",
        "--key",
        "k-9",
        "--model",
        "claude-sonnet-4-5",
    ]));
    assert_eq!(
        home.json(".claude/settings.json"),
        json!({
            "theme": "dark",
            "env": {"HTTPS_PROXY": "http://proxy:3128", "ANTHROPIC_BASE_URL": "http://gw.example:8317",
                    "ANTHROPIC_AUTH_TOKEN": "k-9", "ANTHROPIC_MODEL": "claude-sonnet-4-5"},
            "model": "opus",
        })
    );
    let backups = home.backups(".claude/settings.json");
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].1, before, "the backup is the file as it was");
    assert!(backups[0].0.strip_prefix("settings.json.bak-").is_some_and(|stamp| stamp.ends_with('Z')), "{backups:?}");
}

#[test]
fn dry_run_prints_the_change_and_writes_nothing() {
    let home = Home::new();
    home.write(".gemini/.env", "# mine\nGEMINI_API_KEY=old\n");
    let stdout = ok(&home.setup(&["gemini", "--dry-run", "--model", "gemini-2.5-pro"]));
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(stdout.contains("- GEMINI_API_KEY=old") && stdout.contains("+ GEMINI_API_KEY=client-key-1"), "{stdout}");
    assert!(
        stdout.contains("+ GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:9123")
            && stdout.contains("+ GEMINI_MODEL=gemini-2.5-pro"),
        "{stdout}"
    );
    assert!(stdout.contains("would back up"), "{stdout}");
    assert_eq!(home.read(".gemini/.env"), "# mine\nGEMINI_API_KEY=old\n");
    assert!(!home.path(".gemini/settings.json").exists());
    assert!(home.backups(".gemini/.env").is_empty());
}

#[test]
fn gemini_cli_gets_its_env_and_api_key_auth() {
    let home = Home::new();
    home.write(
        ".gemini/settings.json",
        r#"{"ui": {"theme": "GitHub"}, "security": {"folderTrust": {"enabled": true}}}"#,
    );
    ok(&home.setup(&["gemini-cli"]));
    assert_eq!(
        home.read(".gemini/.env"),
        "GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:9123\nGEMINI_API_KEY=client-key-1\n"
    );
    assert_eq!(
        home.json(".gemini/settings.json"),
        json!({"ui": {"theme": "GitHub"}, "security": {"folderTrust": {"enabled": true}, "auth": {"selectedType": "gemini-api-key"}}})
    );
}

#[test]
fn a_file_that_cannot_be_merged_is_left_alone() {
    let home = Home::new();
    home.write(".config/opencode/opencode.json", "{ \"provider\": ");
    let output = home.setup(&["opencode"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not valid JSON") && stderr.contains("left unchanged"), "{stderr}");
    assert_eq!(home.read(".config/opencode/opencode.json"), "{ \"provider\": ");
    assert!(home.backups(".config/opencode/opencode.json").is_empty());
}

#[test]
fn opencode_gets_an_openai_compatible_provider() {
    let home = Home::new();
    ok(&home.setup(&["opencode", "--model", "gpt-5"]));
    assert_eq!(
        home.json(".config/opencode/opencode.json"),
        json!({
            "$schema": "https://opencode.ai/config.json",
            "provider": {"switchyard": {
                "npm": "@ai-sdk/openai-compatible", "name": "Switchyard",
                "options": {"baseURL": "http://127.0.0.1:9123/v1", "apiKey": "client-key-1"},
                "models": {"gpt-5": {"name": "gpt-5"}},
            }},
            "model": "switchyard/gpt-5",
        })
    );
}

#[test]
fn codex_config_keeps_its_comments_and_tables_and_a_second_run_changes_nothing() {
    let home = Home::new();
    let before = "# Codex settings\nmodel = \"o3\"\n\n[profiles.fast]\nmodel = \"gpt-5-mini\" # quick\n";
    home.write(".codex/config.toml", before);
    ok(&home.setup(&["codex", "--model", "gpt-5-codex"]));
    assert_eq!(
        home.read(".codex/config.toml"),
        "# Codex settings\nmodel = \"gpt-5-codex\"\nmodel_provider = \"switchyard\"\n\n[profiles.fast]\nmodel = \"gpt-5-mini\" # quick\n\n\
         [model_providers.switchyard]\nname = \"Switchyard\"\nbase_url = \"http://127.0.0.1:9123/v1\"\nwire_api = \"responses\"\n\
         http_headers = { \"Authorization\" = \"Bearer client-key-1\" }\n"
    );
    assert_eq!(home.backups(".codex/config.toml").len(), 1);
    let again = ok(&home.setup(&["codex", "--model", "gpt-5-codex"]));
    assert!(again.contains("unchanged"), "{again}");
    assert_eq!(home.backups(".codex/config.toml").len(), 1, "no backup when nothing changes");
}

#[test]
fn an_unknown_client_is_a_usage_error() {
    let home = Home::new();
    let output = home.setup(&["vim"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("claude"), "lists the valid clients");
}
