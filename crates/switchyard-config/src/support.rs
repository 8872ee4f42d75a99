//! Which keys of CPA's config table (spec §5) Switchyard acts on, and which it only parses.
//! Setting an unsupported key to anything but its default loads with a warning, so
//! `switchyard check-config`, startup and hot reloads say it has no effect. README lists both.

use serde_json::Value;

use crate::Warning;
use crate::yaml::{Kind, Node, child_index, child_key};

/// The warning's text for a key in [`UNSUPPORTED_KEYS`].
pub const UNSUPPORTED_MESSAGE: &str = "parsed but not supported by switchyard";

/// CPA keys Switchyard acts on, then Switchyard's own keys that the README lists with them.
pub const SUPPORTED_KEYS: &[&str] = &[
    "host",
    "port",
    "remote-management.allow-remote",
    "remote-management.secret-key",
    "remote-management.disable-control-panel",
    "auth-dir",
    "api-keys",
    "debug",
    "logging-to-file",
    "logs-max-total-size-mb",
    "request-log",
    "error-logs-max-files",
    "usage-statistics-enabled",
    "redis-usage-queue-retention-seconds",
    "proxy-url",
    "force-model-prefix",
    "request-retry",
    "max-retry-credentials",
    "max-retry-interval",
    "disable-cooling",
    "transient-error-cooldown-seconds",
    "auth-auto-refresh-workers",
    "routing.strategy",
    "gemini-api-key",
    "codex-api-key",
    "xai-api-key",
    "claude-api-key",
    "vertex-api-key",
    "openai-compatibility",
    "oauth-model-alias",
    "oauth-excluded-models",
    "health.auto-disable",
    "health.inspection-interval-minutes",
    "health.inspection-workers",
    "health.inspection-timeout-seconds",
    "health.inspection-quota-threshold",
    "usage-store.enabled",
    "usage-store.path",
    "usage-store.retention-days",
    "usage-store.max-size-mb",
    "metrics.enabled",
    "metrics.public",
    "quota.refresh-interval-seconds",
    "allowed-origins",
    "allowed-hosts",
];

/// CPA keys Switchyard parses (and keeps in the file) but does not act on, with the default
/// (JSON) that does not warn. `*-api-key[]` stands for every entry of every API-key section.
pub const UNSUPPORTED_KEYS: &[(&str, &str)] = &[
    ("tls", "null"),
    ("remote-management.disable-auto-update-panel", "false"),
    (
        "remote-management.panel-github-repository",
        "\"https://github.com/router-for-me/Cli-Proxy-API-Management-Center\"",
    ),
    ("pprof", "null"),
    ("commercial-mode", "false"),
    ("passthrough-headers", "false"),
    ("save-cooldown-status", "false"),
    ("quota-exceeded.switch-project", "true"),
    ("quota-exceeded.switch-preview-model", "true"),
    ("quota-exceeded.antigravity-credits", "true"),
    ("routing.session-affinity", "false"),
    ("routing.session-affinity-ttl", "\"1h\""),
    ("ws-auth", "true"),
    ("nonstream-keepalive-interval", "0"),
    ("streaming", "null"),
    ("interactions-api-key", "null"),
    ("oauth-request-scoped-errors", "null"),
    ("payload", "null"),
    ("claude-header-defaults", "null"),
    ("claude-code", "null"),
    ("disable-claude-cloak-mode", "false"),
    ("codex", "null"),
    ("codex-header-defaults", "null"),
    ("antigravity", "null"),
    ("antigravity-signature-cache-enabled", "false"),
    ("antigravity-signature-bypass-strict", "false"),
    ("xai", "null"),
    ("disable-image-generation", "false"),
    ("gpt-image-2-base-model", "null"),
    ("video-result-auth-cache-ttl", "\"3h\""),
    ("plugins", "null"),
    ("credential-concurrency", "null"),
    ("credential-in-flight", "null"),
    ("*-api-key[].cloak", "null"),
    ("*-api-key[].fingerprint-profile", "null"),
    ("*-api-key[].rebuild-mid-system-message", "false"),
    ("*-api-key[].websockets", "false"),
    ("*-api-key[].alpha-search", "false"),
    ("*-api-key[].request-scoped-errors", "null"),
    ("*-api-key[].models[].thinking", "null"),
    ("openai-compatibility[].support-prompt-cache-key", "false"),
    ("openai-compatibility[].request-scoped-errors", "null"),
];

/// One warning per unsupported key the document sets to a value other than its default.
pub(crate) fn unsupported_warnings(root: &Node<'_>) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for (pattern, default) in UNSUPPORTED_KEYS {
        let default: Value = serde_json::from_str(default).unwrap_or(Value::Null);
        let mut found = Vec::new();
        let steps: Vec<&str> = pattern.split('.').collect();
        collect(root, "", &steps, &mut found);
        for (path, node, line) in found {
            let value = node.to_json();
            if value != default && !(is_empty(&value) && is_empty(&default)) {
                warnings.push(Warning { path, line: Some(line), message: UNSUPPORTED_MESSAGE.into() });
            }
        }
    }
    warnings.sort_by_key(|w| w.line);
    warnings
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(v) => !v,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.iter().all(is_empty),
        Value::Object(map) => map.values().all(is_empty),
    }
}

/// Nodes at `steps` (`key`, `key[]` for every item, a leading `*` for any prefix), with their
/// dotted path and the line of their key.
fn collect<'n>(node: &'n Node<'n>, here: &str, steps: &[&str], out: &mut Vec<(String, &'n Node<'n>, usize)>) {
    let Some((step, rest)) = steps.split_first() else { return };
    let Kind::Map(entries) = &node.kind else { return };
    let (name, each) = match step.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (*step, false),
    };
    for entry in entries {
        let matches = match name.strip_prefix('*') {
            Some(suffix) => entry.key.ends_with(suffix),
            None => entry.key == name,
        };
        if !matches {
            continue;
        }
        let path = child_key(here, &entry.key);
        match (each, &entry.value.kind) {
            (false, _) if rest.is_empty() => out.push((path, &entry.value, entry.line)),
            (false, _) => collect(&entry.value, &path, rest, out),
            (true, Kind::Seq(items)) => {
                for (i, item) in items.iter().enumerate() {
                    collect(item, &child_index(&path, i), rest, out);
                }
            }
            (true, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn non_default_unsupported_keys_warn_defaults_do_not() {
        let text = "ws-auth: true\nquota-exceeded:\n  switch-project: false\ntls: {enable: false}\npprof:\n  enable: true\nclaude-api-key:\n  - api-key: k\n    cloak: {mode: always}\n    models:\n      - name: m\n        thinking: {levels: [high]}\n";
        let loaded = crate::parse(text).unwrap();
        let paths: Vec<&str> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "quota-exceeded.switch-project",
                "pprof",
                "claude-api-key[0].cloak",
                "claude-api-key[0].models[0].thinking"
            ]
        );
        assert!(loaded.warnings.iter().all(|w| w.message == UNSUPPORTED_MESSAGE));
        assert_eq!(loaded.warnings[0].line, Some(3));
    }

    /// Every top-level key of the spec's config table is either supported or reported.
    #[test]
    fn every_key_of_the_spec_table_is_classified() {
        let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/cpa-core.md"))
            .expect("the spec is readable");
        let table = spec.split("## 5. config.yaml").nth(1).unwrap().split("Hot reload:").next().unwrap();
        let top = |key: &str| key.split(['.', '[']).next().unwrap_or_default().to_owned();
        let known: BTreeSet<String> =
            SUPPORTED_KEYS.iter().copied().chain(UNSUPPORTED_KEYS.iter().map(|(k, _)| *k)).map(top).collect();
        for line in table.lines().filter(|l| l.starts_with("| `")) {
            let first_cell = line.split('|').nth(1).unwrap_or_default();
            for key in first_cell.split('`').skip(1).step_by(2) {
                let key = top(key.split([' ', '{', '=']).next().unwrap_or_default());
                assert!(known.contains(&key), "spec key `{key}` is neither supported nor reported");
            }
        }
    }
}
