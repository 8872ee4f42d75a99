//! `switchyard setup <client>`: points a coding tool at this Switchyard by writing its config
//! file (the same content the panel's Clients page shows). An existing file is merged into —
//! only the keys Switchyard needs change, everything else stays as it was — and the file it
//! replaces is kept as `<file>.bak-<UTC stamp>`. `--dry-run` prints the change and writes
//! nothing. A file that cannot be merged (invalid JSON, not an object) is left untouched and
//! the command fails.
//!
//! | client | file | what is set |
//! |---|---|---|
//! | `claude` | `~/.claude/settings.json` | `env.ANTHROPIC_BASE_URL`, `env.ANTHROPIC_AUTH_TOKEN` (+ `env.ANTHROPIC_MODEL`) |
//! | `codex` | `~/.codex/config.toml` | `model_provider = "switchyard"` (+ `model`), the `[model_providers.switchyard]` table |
//! | `gemini` | `~/.gemini/.env`, `~/.gemini/settings.json` | `GOOGLE_GEMINI_BASE_URL`, `GEMINI_API_KEY` (+ `GEMINI_MODEL`); `security.auth.selectedType` |
//! | `opencode` | `~/.config/opencode/opencode.json` | `provider.switchyard` (+ `model`) |

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Map, Value, json};
use switchyard_config::Config;

/// Exit codes: 0 written (or nothing to change), 2 usage or a file that cannot be merged,
/// 1 an I/O failure.
const EXIT_USAGE: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Claude Code (~/.claude/settings.json).
    #[value(alias = "claude-code")]
    Claude,
    /// OpenAI Codex CLI (~/.codex/config.toml).
    #[value(alias = "codex-cli")]
    Codex,
    /// Gemini CLI (~/.gemini/.env and settings.json).
    #[value(alias = "gemini-cli")]
    Gemini,
    /// OpenCode (~/.config/opencode/opencode.json).
    Opencode,
}

pub struct SetupArgs {
    pub client: Client,
    pub base_url: Option<String>,
    pub key: Option<String>,
    pub model: Option<String>,
    pub dry_run: bool,
}

/// What the client's files get.
struct Target {
    base: String,
    key: String,
    model: Option<String>,
}

/// One file's planned change.
struct Change {
    path: PathBuf,
    before: Option<String>,
    after: String,
}

pub fn run(config: &Config, args: SetupArgs) -> ExitCode {
    let Some(home) = home_dir() else {
        eprintln!("switchyard: HOME is not set; cannot find the client's config directory");
        return ExitCode::from(EXIT_USAGE);
    };
    let key = match args.key.clone().or_else(|| config.api_keys.first().cloned()) {
        Some(key) => key,
        None => {
            eprintln!("note: config.yaml sets no api-keys, so Switchyard accepts any key; using \"switchyard\"");
            "switchyard".to_owned()
        }
    };
    let base = args.base_url.clone().unwrap_or_else(|| default_base_url(config)).trim_end_matches('/').to_owned();
    let target = Target { base, key, model: args.model.clone().filter(|m| !m.trim().is_empty()) };
    let changes = match plan(args.client, &home, &target) {
        Ok(changes) => changes,
        Err(message) => {
            eprintln!("switchyard: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    for change in changes {
        if change.before.as_deref() == Some(change.after.as_str()) {
            println!("{}: already set up, unchanged", change.path.display());
            continue;
        }
        if args.dry_run {
            println!("--- {} (dry run: nothing written)", change.path.display());
            print!("{}", diff(change.before.as_deref().unwrap_or(""), &change.after));
            if change.before.is_some() {
                println!("(would back up the current file as {})", backup_path(&change.path, &stamp).display());
            }
            continue;
        }
        match write(&change, &stamp) {
            Ok(Some(backup)) => {
                println!("wrote {} (previous file kept as {})", change.path.display(), backup.display())
            }
            Ok(None) => println!("wrote {}", change.path.display()),
            Err(error) => {
                eprintln!("switchyard: cannot write {}: {error}", change.path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// `http://<host>:<port>` of this config; a wildcard bind is reached on loopback.
fn default_base_url(config: &Config) -> String {
    let host = match config.host.trim() {
        "" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" | "[::]" => "[::1]".to_owned(),
        host if host.contains(':') && !host.starts_with('[') => format!("[{host}]"),
        host => host.to_owned(),
    };
    format!("http://{host}:{}", config.port)
}

fn read(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

fn plan(client: Client, home: &Path, target: &Target) -> Result<Vec<Change>, String> {
    let change = |relative: &str, merge: &dyn Fn(Option<&str>) -> Result<String, String>| -> Result<Change, String> {
        let path = home.join(relative);
        let before = read(&path)?;
        let after =
            merge(before.as_deref()).map_err(|message| format!("{}: {message}; left unchanged", path.display()))?;
        Ok(Change { path, before, after })
    };
    let Target { base, key, model } = target;
    Ok(match client {
        Client::Claude => {
            let mut env = json!({"ANTHROPIC_BASE_URL": base, "ANTHROPIC_AUTH_TOKEN": key});
            if let Some(model) = model {
                env["ANTHROPIC_MODEL"] = json!(model);
            }
            vec![change(".claude/settings.json", &|before| merge_json(before, &[(&["env"], env.clone(), true)]))?]
        }
        Client::Codex => vec![change(".codex/config.toml", &|before| Ok(merge_codex(before.unwrap_or(""), target)))?],
        Client::Gemini => {
            let mut env = vec![("GOOGLE_GEMINI_BASE_URL", base.clone()), ("GEMINI_API_KEY", key.clone())];
            if let Some(model) = model {
                env.push(("GEMINI_MODEL", model.clone()));
            }
            vec![
                change(".gemini/.env", &|before| Ok(merge_env(before.unwrap_or(""), &env)))?,
                change(".gemini/settings.json", &|before| {
                    merge_json(before, &[(&["security", "auth", "selectedType"], json!("gemini-api-key"), false)])
                })?,
            ]
        }
        Client::Opencode => {
            let models = match model {
                Some(model) => json!({ model: {"name": model} }),
                None => json!({}),
            };
            let provider = json!({
                "npm": "@ai-sdk/openai-compatible",
                "name": "Switchyard",
                "options": {"baseURL": format!("{base}/v1"), "apiKey": key},
                "models": models,
            });
            let mut sets: Vec<(&[&str], Value, bool)> = vec![(&["provider", "switchyard"], provider, false)];
            if let Some(model) = model {
                sets.push((&["model"], json!(format!("switchyard/{model}")), false));
            }
            vec![change(".config/opencode/opencode.json", &|before| {
                let merged = merge_json(before, &sets)?;
                // A new file names its schema, as OpenCode's own files do.
                Ok(if before.is_none() { with_schema(&merged) } else { merged })
            })?]
        }
    })
}

fn with_schema(text: &str) -> String {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else { return text.to_owned() };
    let mut out = Map::new();
    out.insert("$schema".into(), json!("https://opencode.ai/config.json"));
    out.extend(fields);
    pretty(&Value::Object(out))
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Sets each value at its key path of the JSON object in `before` (a new object when there is
/// no file). `merge_object`: merge the value's members into an existing object at that path
/// instead of replacing it (Claude's `env` keeps the user's other variables).
fn merge_json(before: Option<&str>, sets: &[(&[&str], Value, bool)]) -> Result<String, String> {
    let mut root = match before.map(str::trim) {
        None | Some("") => Value::Object(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => return Err("not a JSON object".into()),
            Err(error) => return Err(format!("not valid JSON ({error})")),
        },
    };
    for (path, value, merge_object) in sets {
        let (last, parents) = path.split_last().expect("a non-empty path");
        let mut node = &mut root;
        for key in parents {
            let map = node.as_object_mut().expect("checked object");
            let next = map.entry((*key).to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                return Err(format!("`{key}` is not an object"));
            }
            node = next;
        }
        let map = node.as_object_mut().expect("checked object");
        match (merge_object, map.get_mut(*last), value) {
            (true, Some(Value::Object(existing)), Value::Object(members)) => {
                existing.extend(members.clone());
            }
            (true, Some(other), _) if !other.is_object() => return Err(format!("`{last}` is not an object")),
            _ => {
                map.insert((*last).to_owned(), value.clone());
            }
        }
    }
    Ok(pretty(&root))
}

/// `KEY=value` lines: existing keys (also `export KEY=`) get the new value in place, missing
/// ones are appended; other lines stay as they are.
fn merge_env(before: &str, values: &[(&str, String)]) -> String {
    let mut lines: Vec<String> = before.lines().map(str::to_owned).collect();
    for (key, value) in values {
        let set = format!("{key}={value}");
        let found = lines.iter_mut().find(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            line.split_once('=').is_some_and(|(name, _)| name.trim() == *key)
        });
        match found {
            Some(line) => *line = set,
            None => lines.push(set),
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn toml_string(value: &str) -> String {
    // A TOML basic string has JSON's escapes for everything a key or URL can hold.
    serde_json::to_string(value).unwrap_or_default()
}

fn is_table_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

/// Codex's config.toml, edited as text so comments and the user's other settings stay
/// byte-identical: the top-level `model_provider` (and `model`) keys, and the whole
/// `[model_providers.switchyard]` table.
fn merge_codex(before: &str, target: &Target) -> String {
    let mut lines: Vec<String> = before.lines().map(str::to_owned).collect();
    let mut top = vec![("model_provider", toml_string("switchyard"))];
    if let Some(model) = &target.model {
        top.push(("model", toml_string(model)));
    }
    for (key, value) in top {
        let first_table = lines.iter().position(|l| is_table_header(l)).unwrap_or(lines.len());
        let set = format!("{key} = {value}");
        let existing = lines[..first_table].iter().position(|line| {
            line.split_once('=').is_some_and(|(name, _)| name.trim() == key) && !line.trim_start().starts_with('#')
        });
        match existing {
            Some(at) => lines[at] = set,
            None => {
                // After the last top-level setting, before the blank lines that lead into the tables.
                let mut at = first_table;
                while at > 0 && lines[at - 1].trim().is_empty() {
                    at -= 1;
                }
                lines.insert(at, set);
                if lines.get(at + 1).is_some_and(|l| is_table_header(l)) {
                    lines.insert(at + 1, String::new());
                }
            }
        }
    }
    let table = [
        "[model_providers.switchyard]".to_owned(),
        "name = \"Switchyard\"".to_owned(),
        format!("base_url = {}", toml_string(&format!("{}/v1", target.base))),
        "wire_api = \"responses\"".to_owned(),
        format!("http_headers = {{ \"Authorization\" = {} }}", toml_string(&format!("Bearer {}", target.key))),
    ];
    let header = lines.iter().position(|l| {
        let line = l.trim();
        line == "[model_providers.switchyard]" || line.replace(' ', "") == "[model_providers.\"switchyard\"]"
    });
    match header {
        Some(start) => {
            let end = lines[start + 1..].iter().position(|l| is_table_header(l)).map_or(lines.len(), |i| start + 1 + i);
            // Keep the blank lines that separate it from the next table.
            let mut body_end = end;
            while body_end > start + 1 && lines[body_end - 1].trim().is_empty() {
                body_end -= 1;
            }
            lines.splice(start..body_end, table);
        }
        None => {
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.extend(table);
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn backup_path(path: &Path, stamp: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bak-{stamp}"));
    path.with_file_name(name)
}

/// Backs up the current file (if any), then replaces it atomically; new files are 0600 since
/// they hold a key.
fn write(change: &Change, stamp: &str) -> std::io::Result<Option<PathBuf>> {
    let dir = change.path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let backup = match change.before {
        Some(_) => {
            let backup = backup_path(&change.path, stamp);
            std::fs::copy(&change.path, &backup)?;
            Some(backup)
        }
        None => None,
    };
    let temp = dir.join(format!(".{}.switchyard-tmp", change.path.file_name().unwrap_or_default().to_string_lossy()));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp)?;
        file.write_all(change.after.as_bytes())?;
        file.sync_all()?;
    }
    if let Ok(metadata) = std::fs::metadata(&change.path) {
        std::fs::set_permissions(&temp, metadata.permissions())?;
    }
    std::fs::rename(&temp, &change.path)?;
    Ok(backup)
}

/// A line diff (`-` removed, `+` added, two spaces kept) by longest common subsequence; config
/// files are small.
fn diff(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(model: Option<&str>) -> Target {
        Target { base: "http://127.0.0.1:8317".into(), key: "k-1".into(), model: model.map(str::to_owned) }
    }

    #[test]
    fn codex_merge_keeps_everything_else_and_replaces_its_own_table() {
        let before = "# my settings\nmodel = \"o3\"\napproval_policy = \"never\"\n\n[model_providers.switchyard]\nname = \"old\"\nbase_url = \"http://old/v1\"\n\n[profiles.fast]\nmodel = \"gpt-5\"\n";
        let after = merge_codex(before, &target(Some("gpt-5-codex")));
        assert_eq!(
            after,
            "# my settings\nmodel = \"gpt-5-codex\"\napproval_policy = \"never\"\nmodel_provider = \"switchyard\"\n\n\
             [model_providers.switchyard]\nname = \"Switchyard\"\nbase_url = \"http://127.0.0.1:8317/v1\"\nwire_api = \"responses\"\n\
             http_headers = { \"Authorization\" = \"Bearer k-1\" }\n\n[profiles.fast]\nmodel = \"gpt-5\"\n"
        );
        // Applying it again changes nothing.
        assert_eq!(merge_codex(&after, &target(Some("gpt-5-codex"))), after);
    }

    #[test]
    fn codex_into_an_empty_file_and_one_with_tables_only() {
        let fresh = merge_codex("", &target(None));
        assert!(fresh.starts_with("model_provider = \"switchyard\"\n\n[model_providers.switchyard]\n"), "{fresh}");
        let tables = merge_codex("[profiles.a]\nmodel = \"x\"\n", &target(None));
        assert!(
            tables.starts_with(
                "model_provider = \"switchyard\"\n\n[profiles.a]\nmodel = \"x\"\n\n[model_providers.switchyard]"
            ),
            "{tables}"
        );
    }

    #[test]
    fn env_merge_replaces_in_place_and_appends() {
        let before = "# keys\nexport GEMINI_API_KEY=old\nOTHER=1\n";
        let after =
            merge_env(before, &[("GOOGLE_GEMINI_BASE_URL", "http://h".into()), ("GEMINI_API_KEY", "new".into())]);
        assert_eq!(after, "# keys\nGEMINI_API_KEY=new\nOTHER=1\nGOOGLE_GEMINI_BASE_URL=http://h\n");
    }

    #[test]
    fn json_merge_keeps_other_members_and_refuses_non_objects() {
        let before = r#"{"theme": "dark", "env": {"OTHER": "1", "ANTHROPIC_BASE_URL": "old"}}"#;
        let merged = merge_json(Some(before), &[(&["env"], json!({"ANTHROPIC_BASE_URL": "new"}), true)]).unwrap();
        let value: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(value, json!({"theme": "dark", "env": {"OTHER": "1", "ANTHROPIC_BASE_URL": "new"}}));
        assert!(merge_json(Some("[1]"), &[]).is_err());
        assert!(merge_json(Some("{oops"), &[]).unwrap_err().contains("not valid JSON"));
        assert!(merge_json(Some(r#"{"env": 3}"#), &[(&["env"], json!({}), true)]).is_err());
    }

    #[test]
    fn diffs_show_removed_and_added_lines() {
        assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
        assert_eq!(diff("", "n\n"), "+ n\n");
    }

    #[test]
    fn base_urls_reach_wildcard_binds_on_loopback() {
        let mut config = Config { host: "0.0.0.0".into(), port: 9000, ..Default::default() };
        assert_eq!(default_base_url(&config), "http://127.0.0.1:9000");
        config.host = "::1".into();
        assert_eq!(default_base_url(&config), "http://[::1]:9000");
    }
}
