use std::collections::BTreeMap;

use serde_json::json;
use switchyard_config::{
    ApiKeyEntry, CompatApiKeyEntry, Config, ConfigError, DEFAULT_YAML, ModelAlias, ModelMapping, OpenAiCompatibility,
    RoutingStrategy, parse,
};

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(loaded) => panic!("expected an error for {text:?}, got {:?}", loaded.config),
        Err(e) => e,
    }
}

fn assert_err(text: &str, line: usize, field: &str, message_part: &str) {
    let e = err(text);
    assert_eq!(e.line, Some(line), "line of {e}");
    assert_eq!(e.field.as_deref(), Some(field), "field of {e}");
    assert!(e.message.contains(message_part), "message of {e}");
}

#[test]
fn embedded_default_matches_config_default() {
    let loaded = parse(DEFAULT_YAML).expect("DEFAULT_YAML parses");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config, Config::default());

    let c = Config::default();
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 8317);
    assert_eq!(c.auth_dir, "~/.cli-proxy-api");
    assert!(c.api_keys.is_empty());
    assert_eq!(c.management_secret(), None);
    assert!(!c.remote_management.allow_remote);
    assert!(!c.remote_management.disable_control_panel);
    assert_eq!(
        c.remote_management.panel_github_repository,
        "https://github.com/router-for-me/Cli-Proxy-API-Management-Center"
    );
    assert_eq!(c.routing.strategy, RoutingStrategy::RoundRobin);
    assert!(!c.routing.session_affinity);
    assert_eq!(c.routing.session_affinity_ttl, "1h");
    assert_eq!(c.request_retry, 3);
    assert_eq!(c.max_retry_credentials, 0);
    assert_eq!(c.max_retry_interval, 30);
    assert_eq!(c.auth_auto_refresh_workers, 16);
    assert_eq!(c.transient_error_cooldown_seconds, 0);
    assert!(c.ws_auth);
    assert!(!c.usage_statistics_enabled);
    assert!(c.quota_exceeded.switch_project);
    assert!(c.quota_exceeded.switch_preview_model);
    assert!(c.quota_exceeded.antigravity_credits);
    assert!(c.proxy_url.is_empty());
    assert!(c.upstream_urls.is_empty() && c.other.is_empty());
}

#[test]
fn empty_comment_only_and_null_documents_give_defaults() {
    for text in ["", "\n\n", "# just a comment\n# another\n", "~\n", "---\n"] {
        let loaded = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(loaded.config, Config::default(), "{text:?}");
        assert!(loaded.warnings.is_empty());
    }
}

#[test]
fn keys_without_values_take_their_defaults() {
    let loaded = parse(
        "port:\napi-keys:\nremote-management:\nrouting:\n  strategy:\nquota-exceeded:\n\
         oauth-excluded-models:\nclaude-api-key:\nhost:\n",
    )
    .unwrap();
    assert_eq!(loaded.config, Config::default());
}

const FULL: &str = r#"
host: ""
port: 9000
auth-dir: /var/lib/switchyard
api-keys: [client-a, "client-b"]
remote-management:
  allow-remote: true
  secret-key: "  s3cret  "
  disable-control-panel: true
  disable-auto-update-panel: true
  panel-github-repository: https://github.com/example/panel
debug: true
logging-to-file: true
request-log: true
proxy-url: socks5h://user:pw@127.0.0.1:1080
request-retry: 5
max-retry-credentials: 2
max-retry-interval: 10
disable-cooling: true
transient-error-cooldown-seconds: -1
auth-auto-refresh-workers: 4
force-model-prefix: true
routing:
  strategy: FF
  session-affinity: true
  session-affinity-ttl: 30m
quota-exceeded:
  switch-project: false
  switch-preview-model: false
  antigravity-credits: false
usage-statistics-enabled: true
ws-auth: false
oauth-excluded-models:
  codex: [gpt-5-codex-mini, "gpt-4*"]
oauth-model-alias:
  antigravity:
    - name: gemini-pro-agent
      alias: gemini-3.1-pro-preview
      fork: true
      display-name: AG Gemini
      force-mapping: true
claude-api-key:
  - api-key: sk-ant-1
    priority: 2
    weight: 5
    prefix: team
    base-url: https://claude.example.com
    proxy-url: direct
    headers:
      X-Custom: v
    models:
      - name: claude-sonnet-4-5
        alias: sonnet
        display-name: Sonnet
        force-mapping: true
    excluded-models: ["claude-3-*"]
    disable-cooling: false
    request-retry: 1
codex-api-key:
  - api-key: sk-codex
gemini-api-key:
  - api-key: AIza-1
vertex-api-key:
  - api-key: vk-1
    base-url: http://vertex.example.com/api
xai-api-key:
  - api-key: xai-1
openai-compatibility:
  - name: openrouter
    priority: 1
    disabled: true
    prefix: or
    base-url: https://openrouter.ai/api/v1
    api-key-entries:
      - api-key: sk-or-1
        weight: 3
        proxy-url: http://proxy.local:3128
      - api-key: sk-or-2
    models:
      - name: moonshotai/kimi-k2:free
        alias: kimi-k2
    headers:
      X-Title: switchyard
    disable-cooling: true
    request-retry: 0
upstream-urls:
  claude:
    authorize: http://127.0.0.1:9999/oauth/authorize
    token: http://127.0.0.1:9999/v1/oauth/token
    api: http://127.0.0.1:9999
"#;

#[test]
fn full_document_parses_every_key() {
    let loaded = parse(FULL).unwrap_or_else(|e| panic!("{e}"));
    // No unknown-key warnings; modelled keys Switchyard does not act on are reported as such.
    assert!(
        loaded.warnings.iter().all(|w| w.message == switchyard_config::UNSUPPORTED_MESSAGE),
        "{:?}",
        loaded.warnings
    );
    let c = loaded.config;

    assert_eq!(c.host, "");
    assert_eq!(c.port, 9000);
    assert_eq!(c.auth_dir, "/var/lib/switchyard");
    assert_eq!(c.api_keys, ["client-a", "client-b"]);
    let rm = &c.remote_management;
    assert!(rm.allow_remote && rm.disable_control_panel && rm.disable_auto_update_panel);
    assert_eq!(rm.secret_key, "  s3cret  ");
    assert_eq!(c.management_secret(), Some("s3cret"));
    assert_eq!(rm.panel_github_repository, "https://github.com/example/panel");
    assert!(c.debug && c.logging_to_file && c.request_log);
    assert_eq!(c.proxy_url, "socks5h://user:pw@127.0.0.1:1080");
    assert_eq!((c.request_retry, c.max_retry_credentials, c.max_retry_interval), (5, 2, 10));
    assert!(c.disable_cooling);
    assert_eq!(c.transient_error_cooldown_seconds, -1);
    assert_eq!(c.auth_auto_refresh_workers, 4);
    assert!(c.force_model_prefix);
    assert_eq!(c.routing.strategy, RoutingStrategy::FillFirst);
    assert!(c.routing.session_affinity);
    assert_eq!(c.routing.session_affinity_ttl, "30m");
    let q = &c.quota_exceeded;
    assert!(!q.switch_project && !q.switch_preview_model && !q.antigravity_credits);
    assert!(c.usage_statistics_enabled);
    assert!(!c.ws_auth);
    assert_eq!(c.oauth_excluded_models["codex"], ["gpt-5-codex-mini", "gpt-4*"]);
    assert_eq!(
        c.oauth_model_alias["antigravity"],
        [ModelAlias {
            name: "gemini-pro-agent".into(),
            alias: "gemini-3.1-pro-preview".into(),
            fork: true,
            display_name: Some("AG Gemini".into()),
            force_mapping: true,
        }]
    );
    assert_eq!(
        c.claude_api_key,
        [ApiKeyEntry {
            api_key: "sk-ant-1".into(),
            priority: 2,
            weight: Some(5),
            prefix: "team".into(),
            base_url: "https://claude.example.com".into(),
            proxy_url: "direct".into(),
            headers: BTreeMap::from([("X-Custom".into(), "v".into())]),
            models: vec![ModelMapping {
                name: "claude-sonnet-4-5".into(),
                alias: "sonnet".into(),
                display_name: Some("Sonnet".into()),
                force_mapping: true,
            }],
            excluded_models: vec!["claude-3-*".into()],
            disable_cooling: Some(false),
            request_retry: Some(1),
        }]
    );
    assert_eq!(c.codex_api_key[0].api_key, "sk-codex");
    assert_eq!(c.codex_api_key[0].weight, None);
    assert_eq!(c.codex_api_key[0].disable_cooling, None);
    assert_eq!(c.gemini_api_key[0].api_key, "AIza-1");
    assert_eq!(c.vertex_api_key[0].base_url, "http://vertex.example.com/api");
    assert_eq!(c.xai_api_key[0].api_key, "xai-1");
    assert_eq!(
        c.openai_compatibility,
        [OpenAiCompatibility {
            name: "openrouter".into(),
            priority: 1,
            disabled: true,
            prefix: "or".into(),
            base_url: "https://openrouter.ai/api/v1".into(),
            api_key_entries: vec![
                CompatApiKeyEntry {
                    api_key: "sk-or-1".into(),
                    weight: Some(3),
                    proxy_url: "http://proxy.local:3128".into(),
                },
                CompatApiKeyEntry { api_key: "sk-or-2".into(), weight: None, proxy_url: String::new() },
            ],
            models: vec![ModelMapping {
                name: "moonshotai/kimi-k2:free".into(),
                alias: "kimi-k2".into(),
                display_name: None,
                force_mapping: false,
            }],
            headers: BTreeMap::from([("X-Title".into(), "switchyard".into())]),
            disable_cooling: Some(true),
            request_retry: Some(0),
        }]
    );
    assert_eq!(c.upstream_url("claude", "token"), Some("http://127.0.0.1:9999/v1/oauth/token"));
    assert_eq!(c.upstream_url("claude", "authorize"), Some("http://127.0.0.1:9999/oauth/authorize"));
    assert_eq!(c.upstream_url("claude", "api"), Some("http://127.0.0.1:9999"));
    assert_eq!(c.upstream_url("claude", "nope"), None);
    assert_eq!(c.upstream_url("codex", "token"), None);
}

#[test]
fn strategy_spellings() {
    for (text, expected) in [
        ("round-robin", RoutingStrategy::RoundRobin),
        ("RoundRobin", RoutingStrategy::RoundRobin),
        ("RR", RoutingStrategy::RoundRobin),
        ("fill-first", RoutingStrategy::FillFirst),
        ("fillfirst", RoutingStrategy::FillFirst),
        ("ff", RoutingStrategy::FillFirst),
        ("Weighted-Round-Robin", RoutingStrategy::WeightedRoundRobin),
        ("wrr", RoutingStrategy::WeightedRoundRobin),
    ] {
        let c = parse(&format!("routing:\n  strategy: {text}\n")).unwrap().config;
        assert_eq!(c.routing.strategy, expected, "{text}");
    }
    let json = serde_json::to_value(Config::default()).unwrap();
    assert_eq!(json["routing"]["strategy"], "round-robin");
}

#[test]
fn bad_port() {
    assert_err("host: x\nport: 0\n", 2, "port", "between 1 and 65535");
    assert_err("\nport: 70000\n", 2, "port", "70000");
    let e = err("debug: true\nport: abc\n");
    assert_eq!((e.line, e.column), (Some(2), Some(7)));
    assert_eq!(e.field.as_deref(), Some("port"));
    assert!(e.message.contains("invalid type"), "{e}");
    assert_eq!(e.to_string(), format!("line 2, column 7, field `port`: {}", e.message));
}

#[test]
fn bad_proxy_url() {
    assert_err("proxy-url: ftp://proxy:21\n", 1, "proxy-url", "http, https, socks5 or socks5h");
    assert_err("\n\nproxy-url: not a url\n", 3, "proxy-url", "socks5");
    // `direct` is only meaningful per credential.
    assert_err("proxy-url: direct\n", 1, "proxy-url", "socks5");
    assert_err(
        "claude-api-key:\n  - api-key: k\n    proxy-url: gopher://x\n",
        3,
        "claude-api-key[0].proxy-url",
        "socks5",
    );
    for ok in ["http://p:1", "https://p", "socks5://u:p@h:1080", "SOCKS5H://h:1"] {
        parse(&format!("proxy-url: {ok}\n")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn proxy_url_errors_do_not_echo_credentials() {
    let e = err("proxy-url: ftp://user:hunter2@proxy\n");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn bad_upstream_urls() {
    assert_err(
        "upstream-urls:\n  claude:\n    api: http://127.0.0.1:1\n    token: /v1/oauth/token\n",
        4,
        "upstream-urls.claude.token",
        "absolute http",
    );
    assert_err(
        "upstream-urls:\n  codex:\n    authorize: ftp://127.0.0.1/x\n",
        3,
        "upstream-urls.codex.authorize",
        "http",
    );
    assert_err("upstream-urls:\n  claude:\n    api: [http://x]\n", 3, "upstream-urls.claude.api", "invalid type");
}

#[test]
fn bad_strategy_lists_accepted_values() {
    let e = err("routing:\n  session-affinity: true\n  strategy: random\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.field.as_deref(), Some("routing.strategy"));
    for accepted in ["round-robin", "fill-first", "weighted-round-robin", "rr", "ff", "wrr"] {
        assert!(e.message.contains(accepted), "{e}");
    }
}

#[test]
fn bad_weight() {
    assert_err(
        "gemini-api-key:\n  - api-key: a\n  - api-key: b\n    weight: 0\n",
        4,
        "gemini-api-key[1].weight",
        "between 1 and 1000000",
    );
    assert_err(
        "openai-compatibility:\n  - name: x\n    base-url: http://h\n    api-key-entries:\n      - api-key: k\n        weight: 1000001\n",
        6,
        "openai-compatibility[0].api-key-entries[0].weight",
        "1000000",
    );
    parse("xai-api-key:\n  - api-key: a\n    weight: 1000000\n").unwrap();
}

#[test]
fn openai_compatibility_requirements() {
    assert_err("openai-compatibility:\n  - base-url: https://a\n", 2, "openai-compatibility[0].name", "required");
    assert_err(
        "openai-compatibility:\n  - name: a\n    base-url: https://a\n  - name: b\n    prefix: p\n",
        4,
        "openai-compatibility[1].base-url",
        "required",
    );
    assert_err(
        "openai-compatibility:\n  - name: a\n    base-url: https://a\n  - name: a\n    base-url: https://b\n",
        4,
        "openai-compatibility[1].name",
        "duplicate",
    );
    assert_err(
        "openai-compatibility:\n  - name: a\n    base-url: openrouter.ai\n",
        3,
        "openai-compatibility[0].base-url",
        "absolute",
    );
}

#[test]
fn api_key_entry_rules() {
    assert_err("codex-api-key:\n  - api-key: a\n  - base-url: https://x\n", 3, "codex-api-key[1].api-key", "required");
    assert_err(
        "claude-api-key:\n  - api-key: a\n    prefix: a/b\n",
        3,
        "claude-api-key[0].prefix",
        "single path segment",
    );
    assert_err(
        "vertex-api-key:\n  - api-key: a\n    base-url: not-a-url\n",
        3,
        "vertex-api-key[0].base-url",
        "absolute",
    );
}

#[test]
fn numeric_ranges() {
    assert_err("request-retry: -1\n", 1, "request-retry", "0 or more");
    assert_err("max-retry-interval: -5\n", 1, "max-retry-interval", "0 or more");
    assert_err("max-retry-credentials: -1\n", 1, "max-retry-credentials", "0 or more");
    assert_err("transient-error-cooldown-seconds: -2\n", 1, "transient-error-cooldown-seconds", "-1 or more");
    assert_err("auth-auto-refresh-workers: 0\n", 1, "auth-auto-refresh-workers", "1 or more");
    assert_err("auth-dir: ''\n", 1, "auth-dir", "empty");
}

#[test]
fn wrong_types_name_the_field() {
    assert_err("api-keys: just-one\n", 1, "api-keys", "expected a sequence");
    assert_err("\ndebug: maybe\n", 2, "debug", "invalid type");
    assert_err("remote-management:\n  allow-remote: [1]\n", 2, "remote-management.allow-remote", "invalid type");
    assert_err("routing: fast\n", 1, "routing", "invalid type");
    assert_err(
        "claude-api-key:\n  - api-key: a\n    models:\n      - name: m\n        force-mapping: 3\n",
        5,
        "claude-api-key[0].models[0].force-mapping",
        "invalid type",
    );
    let e = err("- port\n- 8317\n");
    assert_eq!(e.field, None);
    assert_eq!(e.line, Some(1));
}

#[test]
fn errors_never_contain_secret_values() {
    for text in [
        "api-keys: sk-live-SECRET\n",
        "remote-management: sk-live-SECRET\n",
        "port: sk-live-SECRET\n",
        "claude-api-key: sk-live-SECRET\n",
        "claude-api-key:\n  - api-key: sk-live-SECRET\n    weight: -1\n",
        "claude-api-key:\n  - api-key: sk-live-SECRET\n    weight: sk-live-SECRET\n",
    ] {
        let e = err(text);
        assert!(!e.to_string().contains("SECRET"), "{text:?} -> {e}");
    }
}

#[test]
fn syntax_errors_have_a_line_and_no_field() {
    let e = err("port: 8317\napi-keys: [a, b\ndebug: true\n");
    assert!(e.line.is_some());
    assert_eq!(e.field, None);
    let e = err("port: 1\nport: 2\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("duplicate"), "{e}");
}

#[test]
fn error_display_omits_unknown_parts() {
    let e = ConfigError { line: Some(3), column: None, field: Some("port".into()), message: "bad".into() };
    assert_eq!(e.to_string(), "line 3, field `port`: bad");
    let e = ConfigError { line: None, column: None, field: None, message: "bad".into() };
    assert_eq!(e.to_string(), "bad");
}

#[test]
fn unknown_keys_are_warnings_with_path_and_line() {
    let loaded = parse(
        "port: 8318\nprot: 1\nremote-management:\n  alow-remote: true\n\
         claude-api-key:\n  - api-key: k\n    base-ur: https://x\n    models:\n      - name: m\n        alais: a\n\
         openai-compatibility:\n  - name: n\n    base-url: https://x\n    api-key-entries:\n      - api-key: k\n        wieght: 2\n\
         oauth-model-alias:\n  claude:\n    - name: a\n      alias: b\n      forks: true\n",
    )
    .unwrap();
    assert_eq!(loaded.config.port, 8318);
    let got: Vec<(&str, Option<usize>)> = loaded.warnings.iter().map(|w| (w.path.as_str(), w.line)).collect();
    assert_eq!(
        got,
        [
            ("prot", Some(2)),
            ("remote-management.alow-remote", Some(4)),
            ("claude-api-key[0].base-ur", Some(7)),
            ("claude-api-key[0].models[0].alais", Some(10)),
            ("openai-compatibility[0].api-key-entries[0].wieght", Some(16)),
            ("oauth-model-alias.claude[0].forks", Some(21)),
        ]
    );
    assert_eq!(loaded.warnings[1].to_string(), "line 4, key `remote-management.alow-remote`: unknown key, ignored");
    // The typo does not leak into the typed value.
    assert!(!loaded.config.remote_management.allow_remote);
    // Unknown top-level keys are still kept for round-tripping.
    assert_eq!(loaded.config.other.get("prot"), Some(&json!(1)));
}

#[test]
fn cpa_only_keys_load_silently_and_top_level_ones_round_trip() {
    let text = r#"
tls:
  enable: false
  cert: ""
pprof: {enable: false, addr: "127.0.0.1:8316"}
commercial-mode: false
logs-max-total-size-mb: 0
error-logs-max-files: 10
redis-usage-queue-retention-seconds: 60
passthrough-headers: false
save-cooldown-status: false
nonstream-keepalive-interval: 0
streaming: {keepalive-seconds: 15, bootstrap-retries: 1}
disable-image-generation: chat
claude-code: {disable-cloaking-model-list: false}
codex: {identity-confuse: false}
antigravity: {sensitive-words: [API]}
xai: {inject-x-search: false}
claude-header-defaults: {user-agent: "claude-cli/2"}
interactions-api-key: [{api-key: k}]
oauth-request-scoped-errors: {claude: [{status: 400, action: stop}]}
payload: {override: [{models: [{name: "gpt-*"}], params: {"reasoning.effort": high}}]}
plugins: {enabled: false, dir: plugins}
incognito-browser: true
routing:
  strategy: round-robin
  session-affinity-subagents: true
claude-api-key:
  - api-key: k
    cloak: {mode: auto}
    fingerprint-profile: claude-code-cli
    rebuild-mid-system-message: false
    request-scoped-errors: []
    models:
      - name: m
        alias: a
        max-context-length: 1000
        is-compat: false
        thinking: {levels: [high]}
codex-api-key:
  - api-key: k
    websockets: true
    alpha-search: false
openai-compatibility:
  - name: x
    base-url: https://x
    support-prompt-cache-key: true
    models:
      - name: m
        image: false
        input-modalities: [text, image]
        output-modalities: [text]
"#;
    let loaded = parse(text).unwrap_or_else(|e| panic!("{e}"));
    // No unknown-key warnings; the CPA-only keys set here are reported as unsupported.
    assert!(
        loaded.warnings.iter().all(|w| w.message == switchyard_config::UNSUPPORTED_MESSAGE),
        "{:?}",
        loaded.warnings
    );
    let c = &loaded.config;
    assert_eq!(c.other.get("pprof"), Some(&json!({"enable": false, "addr": "127.0.0.1:8316"})));
    assert_eq!(c.other.get("disable-image-generation"), Some(&json!("chat")));
    assert_eq!(c.other.get("incognito-browser"), Some(&json!(true)));
    // Document order is kept.
    let first: Vec<&str> = c.other.keys().take(3).map(String::as_str).collect();
    assert_eq!(first, ["tls", "pprof", "commercial-mode"]);

    // Serialized inline next to the modelled keys.
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["tls"], json!({"enable": false, "cert": ""}));
    assert_eq!(json["port"], json!(8317));
}

#[test]
fn strings_keep_the_source_text_of_unquoted_numbers() {
    let c = parse("remote-management:\n  secret-key: 007\napi-keys: [12345, 1.10, yes]\n").unwrap().config;
    assert_eq!(c.remote_management.secret_key, "007");
    assert_eq!(c.api_keys, ["12345", "1.10", "yes"]);
}

#[test]
fn anchors_and_merge_keys_work() {
    let c = parse("defaults: &d\n  api-key: k\n  priority: 4\nclaude-api-key:\n  - <<: *d\n    prefix: p\n")
        .unwrap()
        .config;
    assert_eq!(c.claude_api_key[0].api_key, "k");
    assert_eq!(c.claude_api_key[0].priority, 4);
    assert_eq!(c.claude_api_key[0].prefix, "p");
}

#[test]
fn auth_dir_tilde_expansion() {
    let home = std::env::home_dir().expect("tests need a home directory");
    let with = |dir: &str| Config { auth_dir: dir.into(), ..Config::default() };
    assert_eq!(Config::default().auth_dir_path(), home.join(".cli-proxy-api"));
    assert_eq!(with("~").auth_dir_path(), home);
    assert_eq!(with("~/").auth_dir_path(), home);
    assert_eq!(with("~/a/b").auth_dir_path(), home.join("a/b"));
    assert_eq!(with("/srv/auth").auth_dir_path(), std::path::Path::new("/srv/auth"));
    assert_eq!(with("rel/~/x").auth_dir_path(), std::path::Path::new("rel/~/x"));
    assert_eq!(with("~other/x").auth_dir_path(), std::path::Path::new("~other/x"));
}

#[test]
fn management_secret_is_trimmed_and_optional() {
    let with = |key: &str| {
        let mut c = Config::default();
        c.remote_management.secret_key = key.into();
        c
    };
    assert_eq!(with("").management_secret(), None);
    assert_eq!(with("   ").management_secret(), None);
    assert_eq!(with(" k ").management_secret(), Some("k"));
}

#[test]
fn config_round_trips_through_json() {
    let c = parse(FULL).unwrap().config;
    let json = serde_json::to_value(&c).unwrap();
    let back: Config = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
}

#[test]
fn oauth_providers_and_callback_ports() {
    let doc = "\
oauth-callback-ports:
  anthropic: 0
  codex: 1456
oauth-providers:
  - name: acme
    issuer: http://127.0.0.1:9000
    client-id: switchyard
    client-secret: s3cret
    scopes: [openid, email, offline_access]
    api-base: http://127.0.0.1:9001/v1
    models: [acme-large]
";
    let config = parse(doc).unwrap().config;
    assert_eq!(config.oauth_callback_ports.get("anthropic"), Some(&0));
    assert_eq!(config.oauth_callback_ports.get("codex"), Some(&1456));
    let acme = &config.oauth_providers[0];
    assert_eq!(acme.name, "acme");
    assert!(acme.pkce, "PKCE defaults to on");
    assert_eq!(acme.account_claim, "email");
    assert_eq!(acme.dialect, "openai");
    assert_eq!(acme.callback_path, "/callback");
    assert_eq!(acme.models, vec!["acme-large".to_owned()]);
}

#[test]
fn oauth_provider_errors_name_the_field() {
    let base = "oauth-providers:\n  - name: acme\n    issuer: http://127.0.0.1:9000\n    client-id: c\n";
    assert_err(&base.replace("name: acme", "name: Acme_1"), 2, "oauth-providers[0].name", "lower-case");
    assert_err(&base.replace("name: acme", "name: claude"), 2, "oauth-providers[0].name", "built-in");
    assert_err(&base.replace("    client-id: c\n", ""), 2, "oauth-providers[0].client-id", "required");
    assert_err(
        &base.replace("issuer: http://127.0.0.1:9000", "issuer: ftp://x"),
        3,
        "oauth-providers[0].issuer",
        "http",
    );
    let no_endpoints = "oauth-providers:\n  - name: acme\n    client-id: c\n";
    assert_err(no_endpoints, 2, "oauth-providers[0].issuer", "required unless");
    let twice = format!("{base}  - name: acme\n    issuer: http://127.0.0.1:9000\n    client-id: d\n");
    assert_err(&twice, 5, "oauth-providers[1].name", "duplicate");
    assert_err(&format!("{base}    dialect: cobol\n"), 5, "oauth-providers[0].dialect", "one of");
    assert_err("oauth-callback-ports:\n  codex: 70000\n", 2, "oauth-callback-ports.codex", "");
}

#[test]
fn log_and_usage_queue_limits_are_typed_with_cpa_defaults_and_checked() {
    let config = parse("port: 1\n").unwrap().config;
    assert_eq!(
        (config.logs_max_total_size_mb, config.error_logs_max_files, config.redis_usage_queue_retention_seconds),
        (0, 10, 60)
    );
    let set = parse("logs-max-total-size-mb: 5\nerror-logs-max-files: 3\nredis-usage-queue-retention-seconds: 3600\n")
        .unwrap()
        .config;
    assert_eq!(
        (set.logs_max_total_size_mb, set.error_logs_max_files, set.redis_usage_queue_retention_seconds),
        (5, 3, 3600)
    );
    assert_err("port: 1\nlogs-max-total-size-mb: -1\n", 2, "logs-max-total-size-mb", "0 or more");
    assert_err("port: 1\nerror-logs-max-files: -2\n", 2, "error-logs-max-files", "0 or more");
    assert_err(
        "port: 1\nredis-usage-queue-retention-seconds: 3601\n",
        2,
        "redis-usage-queue-retention-seconds",
        "at most 3600",
    );
    assert_err(
        "port: 1\nredis-usage-queue-retention-seconds: 0\n",
        2,
        "redis-usage-queue-retention-seconds",
        "1 or more",
    );
}

#[test]
fn quota_refresh_is_off_by_default_and_never_faster_than_a_minute() {
    assert_eq!(parse("").unwrap().config.quota.refresh_interval_seconds, 0);
    assert_eq!(parse("quota:\n  refresh-interval-seconds: 900\n").unwrap().config.quota.refresh_interval_seconds, 900);
    assert_err("quota:\n  refresh-interval-seconds: 5\n", 2, "quota.refresh-interval-seconds", "at least 60");
}

#[test]
fn health_settings_parse_and_are_bounded() {
    let loaded = parse(
        "health:\n  auto-disable: true\n  inspection-interval-minutes: 30\n  inspection-workers: 2\n  inspection-timeout-seconds: 5\n  inspection-quota-threshold: 95.5\n",
    )
    .unwrap();
    let health = loaded.config.health;
    assert!(health.auto_disable);
    assert_eq!(
        (health.inspection_interval_minutes, health.inspection_workers, health.inspection_timeout_seconds),
        (30, 2, 5)
    );
    assert_eq!(health.inspection_quota_threshold, 95.5);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        parse("health:\n  inspection-quota-threshold: 90\n").unwrap().config.health.inspection_quota_threshold,
        90.0
    );
    assert_err("health:\n  inspection-workers: 0\n", 2, "health.inspection-workers", "between 1 and 64");
    assert_err(
        "health:\n  inspection-timeout-seconds: 601\n",
        2,
        "health.inspection-timeout-seconds",
        "between 1 and 600",
    );
    assert_err("health:\n  inspection-quota-threshold: 0\n", 2, "health.inspection-quota-threshold", "percent");
    assert_err("health:\n  inspection-quota-threshold: 101\n", 2, "health.inspection-quota-threshold", "percent");
}

#[test]
fn allowed_origins_and_hosts_are_origins_and_bare_host_names() {
    let text = "allowed-origins: [\"https://panel.example.com\", \"http://10.0.0.2:9000/\"]\nallowed-hosts: [gateway.lan, 192.168.1.20, \"[fd00::1]\"]\n";
    let config = parse(text).unwrap().config;
    assert_eq!(config.allowed_origins, ["https://panel.example.com", "http://10.0.0.2:9000/"]);
    assert_eq!(config.allowed_hosts, ["gateway.lan", "192.168.1.20", "[fd00::1]"]);
    assert!(Config::default().allowed_origins.is_empty() && Config::default().allowed_hosts.is_empty());
    for origin in ["panel.example.com", "https://panel.example.com/app", "ftp://x", "null", "https://u:p@x"] {
        assert_err(&format!("allowed-origins:\n  - {origin:?}\n"), 2, "allowed-origins[0]", "must be an origin");
    }
    for host in ["http://gateway.lan", "gateway.lan:8317", "a/b", "", "::1", "[::1]:80"] {
        assert_err(&format!("allowed-hosts:\n  - {host:?}\n"), 2, "allowed-hosts[0]", "must be a host name");
    }
}
