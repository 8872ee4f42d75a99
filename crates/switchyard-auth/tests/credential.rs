//! Credential parsing, readers, round-trip and naming rules, checked against the corpus of
//! realistic CPA-format auth files in `tests/corpus/` (all tokens are fake).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchyard_auth::{Credential, CredentialError, MAX_WEIGHT, StoreError, auth_index, validate_file_name};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn corpus_bytes(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap()
}

fn corpus(name: &str) -> Credential {
    Credential::from_json(&corpus_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

fn cred(value: Value) -> Credential {
    Credential::from_json(value.to_string().as_bytes()).unwrap()
}

fn parse_err(text: &str) -> String {
    Credential::from_json(text.as_bytes()).unwrap_err().to_string()
}

struct Expected {
    file: &'static str,
    provider: &'static str,
    email: Option<&'static str>,
    access: Option<&'static str>,
    refresh: Option<&'static str>,
    expiry: Option<&'static str>,
    last_refresh: Option<&'static str>,
}

const CORPUS: &[Expected] = &[
    Expected {
        file: "claude-jane.doe@example.com.json",
        provider: "claude",
        email: Some("jane.doe@example.com"),
        access: Some("sk-ant-oat01-FAKE-claude-access-token-for-tests-only"),
        refresh: Some("sk-ant-ort01-FAKE-claude-refresh-token-for-tests-only"),
        expiry: Some("2026-08-20T09:15:00Z"),
        last_refresh: Some("2026-08-20T01:15:00Z"),
    },
    Expected {
        file: "codex-1a2b3c4d-sam@example.org-team-plan.json",
        provider: "codex",
        email: Some("sam@example.org"),
        access: Some("eyJhbGciOiJub25lIn0.FAKE-codex-access-token."),
        refresh: Some("rt_FAKE-codex-refresh-token"),
        expiry: Some("2026-09-01T01:02:03.123456789Z"),
        last_refresh: Some("2026-08-22T01:02:03.123456789Z"),
    },
    Expected {
        file: "antigravity-pat@example.net.json",
        provider: "antigravity",
        email: Some("pat@example.net"),
        access: Some("ya29.FAKE-antigravity-access-token"),
        refresh: Some("1//FAKE-antigravity-refresh-token"),
        expiry: Some("2025-08-22T08:59:59Z"),
        last_refresh: None,
    },
    Expected {
        file: "gemini-lee@example.com-my-project-123.json",
        provider: "gemini-cli",
        email: Some("lee@example.com"),
        access: Some("ya29.FAKE-gemini-access-token"),
        refresh: Some("1//FAKE-gemini-refresh-token"),
        expiry: Some("2026-08-22T11:00:00.5Z"),
        last_refresh: None,
    },
    Expected {
        file: "kimi-1755853200000.json",
        provider: "kimi",
        email: None,
        access: Some("FAKE-kimi-access-token"),
        refresh: Some("FAKE-kimi-refresh-token"),
        expiry: Some("2025-08-22T09:00:00Z"),
        last_refresh: None,
    },
    Expected {
        file: "xai-max@example.com.json",
        provider: "xai",
        email: Some("max@example.com"),
        access: Some("FAKE-xai-access-token"),
        refresh: Some("FAKE-xai-refresh-token"),
        expiry: Some("2026-08-22T09:00:00Z"),
        last_refresh: Some("2026-08-22T03:00:00Z"),
    },
    Expected {
        file: "vertex-acme-prod-42.json",
        provider: "vertex",
        email: Some("switchyard@acme-prod-42.iam.gserviceaccount.com"),
        access: None,
        refresh: None,
        expiry: None,
        last_refresh: None,
    },
    Expected {
        file: "qwen-wu@example.cn.json",
        provider: "qwen",
        email: Some("wu@example.cn"),
        access: Some("FAKE-qwen-access-token"),
        refresh: Some("FAKE-qwen-refresh-token"),
        expiry: Some("2025-08-22T06:00:00Z"),
        last_refresh: Some("2025-08-22T00:00:00Z"),
    },
    Expected {
        file: "iflow-li@example.cn.json",
        provider: "iflow",
        email: Some("li@example.cn"),
        access: None,
        refresh: None,
        expiry: Some("2026-09-30T23:59:00Z"),
        last_refresh: Some("2026-08-22T02:00:00Z"),
    },
    Expected {
        file: "github-copilot-octocat.json",
        provider: "github-copilot",
        email: Some("octocat@example.com"),
        access: Some("gho_FAKEgithubOAuthTokenForTestsOnly0000"),
        refresh: None,
        expiry: None,
        last_refresh: None,
    },
    Expected {
        file: "kiro-aws-dev@example.com.json",
        provider: "kiro",
        email: Some("dev@example.com"),
        access: Some("aoaAAAAA-FAKE-kiro-access-token"),
        refresh: Some("aorAAAAA-FAKE-kiro-refresh-token"),
        expiry: Some("2026-08-22T10:00:00Z"),
        last_refresh: Some("2026-08-22T09:00:00Z"),
    },
    Expected {
        file: "kiro-google-48213.json",
        provider: "kiro",
        email: None,
        access: Some("aoaAAAAA-FAKE-kiro-social-access-token"),
        refresh: Some("aorAAAAA-FAKE-kiro-social-refresh-token"),
        expiry: Some("2026-08-22T12:30:00Z"),
        last_refresh: Some("2026-08-22T11:00:00Z"),
    },
];

#[test]
fn corpus_is_complete() {
    let mut on_disk: Vec<String> =
        std::fs::read_dir(corpus_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    on_disk.sort();
    let mut listed: Vec<&str> = CORPUS.iter().map(|e| e.file).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn corpus_files_parse_with_expected_identity_tokens_and_times() {
    for e in CORPUS {
        let c = corpus(e.file);
        assert_eq!(c.provider().as_deref(), Some(e.provider), "{}: provider", e.file);
        assert_eq!(c.email(), e.email, "{}: email", e.file);
        assert_eq!(c.access_token(), e.access, "{}: access_token", e.file);
        assert_eq!(c.refresh_token(), e.refresh, "{}: refresh_token", e.file);
        assert_eq!(c.expiry(), e.expiry.map(utc), "{}: expiry", e.file);
        assert_eq!(c.last_refresh(), e.last_refresh.map(utc), "{}: last_refresh", e.file);
    }
}

#[test]
fn corpus_user_fields_are_read() {
    let claude = corpus("claude-jane.doe@example.com.json");
    assert_eq!(claude.prefix(), Some("work"));
    assert_eq!(claude.str_field("proxy_url"), Some("socks5://127.0.0.1:1080"));
    assert_eq!(claude.priority(), 10);
    assert_eq!(claude.weight(), Some(3));
    assert_eq!(claude.note(), Some("team Max seat"));
    assert_eq!(claude.fields()["headers"], json!({"X-Team": "core", "User-Agent": "$User-Agent"}));
    assert!(!claude.disabled());
    assert_eq!(claude.label().as_deref(), Some("jane.doe@example.com"));

    let copilot = corpus("github-copilot-octocat.json");
    assert!(copilot.disabled());
    assert_eq!(copilot.priority(), 0);
    assert_eq!(copilot.weight(), None);

    let vertex = corpus("vertex-acme-prod-42.json");
    assert_eq!(vertex.file_type(), Some("vertex"));
    assert_eq!(vertex.project_id(), Some("acme-prod-42"));
    assert_eq!(vertex.prefix(), Some("vx"));
    assert_eq!(vertex.label().as_deref(), Some("acme-prod-42 (switchyard@acme-prod-42.iam.gserviceaccount.com)"));
    assert_eq!(vertex.fields()["service_account"]["type"], "service_account");

    let gemini = corpus("gemini-lee@example.com-my-project-123.json");
    assert_eq!(gemini.file_type(), Some("gemini"));
    assert_eq!(gemini.project_id(), Some("my-project-123"));

    let kiro = corpus("kiro-google-48213.json");
    assert_eq!(kiro.file_type(), None);
    assert_eq!(kiro.label(), None);
}

#[test]
fn round_trip_keeps_meaning_order_and_unknown_keys() {
    for e in CORPUS.iter().filter(|e| !e.file.starts_with("xai-")) {
        let original: Value = serde_json::from_slice(&corpus_bytes(e.file)).unwrap();
        let written = corpus(e.file).to_json_pretty();
        let reread: Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(reread, original, "{}", e.file);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&reread), keys(&original), "{}: key order", e.file);
        assert!(written.starts_with(b"{\n  \"") && written.ends_with(b"}\n"), "{}: layout", e.file);
        assert_eq!(Credential::from_json(&written).unwrap(), corpus(e.file), "{}", e.file);
    }
    let codex = corpus("codex-1a2b3c4d-sam@example.org-team-plan.json");
    assert_eq!(codex.fields()["model_states"]["gpt-5"]["status"], "active");
}

/// Fuzz finding (auth_file): a number outside i64 (read as a float) came back 1 ULP off after a
/// save, so a file changed just by being loaded and written. The input is kept in
/// `fuzz/regressions/auth_file/`.
#[test]
fn floats_survive_save_and_load_exactly() {
    for text in [
        r#"{"type":"claude","w":-92233720368547758080,"x":0.30000000000000004}"#,
        r#"{"type":"claude","x":-9223372036854775904,"y":1.7976931348623157e308,"z":5e-324}"#,
    ] {
        let loaded = Credential::from_json(text.as_bytes()).unwrap();
        let reloaded = Credential::from_json(&loaded.to_json_pretty()).unwrap();
        assert_eq!(reloaded.fields(), loaded.fields(), "{text}");
        let original: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(reloaded.fields(), &original, "{text}");
    }
}

#[test]
fn legacy_keys_are_renamed_in_place_and_canonical_wins() {
    let xai = corpus("xai-max@example.com.json");
    let keys: Vec<&str> = xai.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "access_token",
            "refresh_token",
            "id_token",
            "token_type",
            "expires_in",
            "expired",
            "last_refresh",
            "email",
            "sub",
            "base_url",
            "token_endpoint",
            "auth_kind",
            "proxy_url",
            "request_retry",
            "excluded_models",
            "disable_cooling",
            "disabled",
        ]
    );
    assert_eq!(xai.str_field("base_url"), Some("https://api.x.ai/v1"));
    assert_eq!(xai.str_field("proxy_url"), Some("http://proxy.local:3128"));
    assert_eq!(xai.fields()["request_retry"], 2);
    assert_eq!(xai.fields()["excluded_models"], json!(["grok-2*"]));
    assert_eq!(xai.fields()["disable_cooling"], true);

    let all = cred(json!({
        "api-key": "k", "base-url": "b", "disable-cooling": true, "excluded-models": [],
        "fingerprint-profile": "f", "model-aliases": [], "proxy-url": "p", "request-retry": 1,
        "request-scoped-errors": [], "tool-prefix-disabled": true
    }));
    let keys: Vec<&str> = all.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "api_key",
            "base_url",
            "disable_cooling",
            "excluded_models",
            "fingerprint_profile",
            "model_aliases",
            "proxy_url",
            "request_retry",
            "request_scoped_errors",
            "tool_prefix_disabled",
        ]
    );
}

#[test]
fn expiry_formats() {
    let table: &[(Value, Option<&str>)] = &[
        (json!("2026-08-22T10:00:00+08:00"), Some("2026-08-22T02:00:00Z")),
        (json!("2026-08-22T02:00:00Z"), Some("2026-08-22T02:00:00Z")),
        (json!("2026-08-22T02:00:00.123456789Z"), Some("2026-08-22T02:00:00.123456789Z")),
        (json!("2026-08-22 02:00:00"), Some("2026-08-22T02:00:00Z")),
        (json!("2026-08-22 02:00"), Some("2026-08-22T02:00:00Z")),
        (json!(1787364000), Some("2026-08-22T02:00:00Z")),
        (json!("1787364000"), Some("2026-08-22T02:00:00Z")),
        (json!(1787364000123_i64), Some("2026-08-22T02:00:00.123Z")),
        (json!("1787364000123"), Some("2026-08-22T02:00:00.123Z")),
        (json!(1787364000.5), Some("2026-08-22T02:00:00.5Z")),
        (json!("  2026-08-22 02:00  "), Some("2026-08-22T02:00:00Z")),
        (json!(0), None),
        (json!(-1), None),
        (json!(""), None),
        (json!("tomorrow"), None),
        (json!("2026-13-40 99:99"), None),
        (json!(true), None),
        (json!(null), None),
        (json!({"seconds": 1}), None),
    ];
    for (value, want) in table {
        let got = cred(json!({ "expired": value })).expiry();
        assert_eq!(got, want.map(utc), "expired = {value}");
    }
}

#[test]
fn expiry_key_order_and_nesting() {
    let a = "2026-01-01T00:00:00Z";
    let b = "2027-01-01T00:00:00Z";
    for key in ["expired", "expire", "expires_at", "expiresAt", "expiry", "expires"] {
        assert_eq!(cred(json!({ key: a })).expiry(), Some(utc(a)), "{key}");
        assert_eq!(cred(json!({ "token": { key: a } })).expiry(), Some(utc(a)), "token.{key}");
        assert_eq!(cred(json!({ "Token": { key: a } })).expiry(), Some(utc(a)), "Token.{key}");
    }
    // Earlier keys win over later ones regardless of their position in the file.
    assert_eq!(cred(json!({ "expires": b, "expired": a })).expiry(), Some(utc(a)));
    // An unparseable earlier key falls through to the next one.
    assert_eq!(cred(json!({ "expired": "n/a", "expires_at": b })).expiry(), Some(utc(b)));
    // Top level beats nested; `token` beats `Token`.
    assert_eq!(cred(json!({ "expiry": a, "token": { "expired": b } })).expiry(), Some(utc(a)));
    assert_eq!(cred(json!({ "Token": { "expiry": b }, "token": { "expiry": a } })).expiry(), Some(utc(a)));
    assert_eq!(cred(json!({ "token": "not an object" })).expiry(), None);
}

#[test]
fn last_refresh_keys() {
    let a = "2026-02-03T04:05:06Z";
    for key in ["last_refresh", "lastRefresh", "last_refreshed_at", "lastRefreshedAt"] {
        assert_eq!(cred(json!({ key: a })).last_refresh(), Some(utc(a)), "{key}");
    }
    assert_eq!(cred(json!({ "last_refresh": "2026-02-03 04:05:06" })).last_refresh(), Some(utc(a)));
    assert_eq!(cred(json!({ "lastRefresh": 1770091506 })).last_refresh(), Some(utc(a)));
    assert_eq!(cred(json!({})).last_refresh(), None);
}

#[test]
fn rejects_non_objects_and_bad_json_with_precise_messages() {
    assert_eq!(parse_err("[1, 2]"), "not a JSON object");
    assert_eq!(parse_err("\"claude\""), "not a JSON object");
    assert_eq!(parse_err(""), "file is empty");
    assert_eq!(parse_err(" \n"), "file is empty");
    assert_eq!(
        parse_err("{\n  \"type\": \"claude\",\n  \"email\" \"a@b.c\"\n}"),
        "invalid JSON at line 3 column 11: expected `:`"
    );
    assert_eq!(
        parse_err("{\n  \"type\": \"claude\",\n  \"access_token\": \"FAKE"),
        "invalid JSON at line 3 column 23: EOF while parsing a string"
    );
    assert!(matches!(
        Credential::from_json(b"{\"a\": 1} x"),
        Err(CredentialError::InvalidJson { line: 1, column: 10, .. })
    ));
}

#[test]
fn validates_weight_priority_and_disabled() {
    let bad = |v: Value| Credential::from_json(v.to_string().as_bytes()).unwrap_err().to_string();
    assert_eq!(bad(json!({"weight": "3"})), "field `weight` must be an integer");
    assert_eq!(bad(json!({"weight": 1.5})), "field `weight` must be an integer");
    assert_eq!(bad(json!({"weight": [1]})), "field `weight` must be an integer");
    assert_eq!(bad(json!({"priority": "high"})), "field `priority` must be an integer");
    assert_eq!(bad(json!({"priority": true})), "field `priority` must be an integer");
    assert_eq!(bad(json!({"disabled": "yes"})), "field `disabled` must be a boolean");
    assert_eq!(bad(json!({"disabled": 1})), "field `disabled` must be a boolean");

    assert_eq!(cred(json!({"weight": 5.0})).weight(), Some(5));
    assert_eq!(cred(json!({"weight": null})).weight(), None);
    assert_eq!(cred(json!({"weight": 0})).weight(), Some(0));
    assert_eq!(cred(json!({"weight": -3})).weight(), Some(-3));
    assert_eq!(cred(json!({"weight": 5_000_000})).weight(), Some(MAX_WEIGHT));
    assert_eq!(cred(json!({"priority": -2})).priority(), -2);
    assert_eq!(cred(json!({"priority": null})).priority(), 0);
    assert!(!cred(json!({"disabled": null})).disabled());
}

#[test]
fn provider_mapping() {
    let provider = |v: Value| cred(v).provider();
    assert_eq!(provider(json!({"type": "Claude"})).as_deref(), Some("claude"));
    assert_eq!(provider(json!({"type": "gemini"})).as_deref(), Some("gemini-cli"));
    assert_eq!(provider(json!({"type": "gemini-cli"})).as_deref(), Some("gemini-cli"));
    assert_eq!(provider(json!({"auth_method": "builder-id"})).as_deref(), Some("kiro"));
    assert_eq!(provider(json!({"auth_method": "Social"})).as_deref(), Some("kiro"));
    assert_eq!(provider(json!({"type": " ", "auth_method": "social"})).as_deref(), Some("kiro"));
    assert_eq!(provider(json!({"auth_method": "password"})), None);
    // The Kiro IDE's own token file (camelCase).
    assert_eq!(provider(json!({"accessToken": "a", "authMethod": "IdC"})).as_deref(), Some("kiro"));
    assert_eq!(provider(json!({"accessToken": "a", "authMethod": "social"})).as_deref(), Some("kiro"));
    assert_eq!(provider(json!({"authMethod": "password"})), None);
    assert_eq!(provider(json!({"email": "a@b.c"})), None);
}

#[test]
fn accessors_and_edits() {
    let mut c = Credential::new("codex");
    assert_eq!(c.fields(), json!({"type": "codex"}).as_object().unwrap());
    assert_eq!(c.file_type(), Some("codex"));
    assert!(!c.disabled());
    c.set_disabled(true);
    assert!(c.disabled());
    assert_eq!(c.fields()["disabled"], true);

    c.fields_mut().insert("email".into(), json!("  a@b.c "));
    c.fields_mut().insert("note".into(), json!("   "));
    assert_eq!(c.email(), Some("a@b.c"));
    assert_eq!(c.note(), None);
    assert_eq!(c.label().as_deref(), Some("a@b.c"));
    c.fields_mut().insert("label".into(), json!("Work"));
    assert_eq!(c.label().as_deref(), Some("Work"));

    // Top-level token beats nested; blank top-level falls back to the nested one.
    let t = cred(json!({"access_token": "", "token": {"access_token": "nested", "refresh_token": "r"}}));
    assert_eq!(t.access_token(), Some("nested"));
    assert_eq!(t.refresh_token(), Some("r"));
    let t = cred(json!({"access_token": "top", "token": {"access_token": "nested"}}));
    assert_eq!(t.access_token(), Some("top"));
}

#[test]
fn relogin_keeps_user_fields_and_replaces_tokens() {
    let previous = corpus("claude-jane.doe@example.com.json");
    let mut fresh = cred(json!({
        "type": "claude",
        "access_token": "sk-ant-oat01-FAKE-new-access",
        "refresh_token": "sk-ant-ort01-FAKE-new-refresh",
        "email": "jane.doe@example.com",
        "organization_name": "Renamed Org",
    }));
    fresh.carry_over_user_fields(&previous);

    assert_eq!(fresh.access_token(), Some("sk-ant-oat01-FAKE-new-access"));
    assert_eq!(fresh.refresh_token(), Some("sk-ant-ort01-FAKE-new-refresh"));
    assert_eq!(fresh.str_field("organization_name"), Some("Renamed Org"));
    assert_eq!(fresh.prefix(), Some("work"));
    assert_eq!(fresh.str_field("proxy_url"), Some("socks5://127.0.0.1:1080"));
    assert_eq!(fresh.priority(), 10);
    assert_eq!(fresh.weight(), Some(3));
    assert_eq!(fresh.note(), Some("team Max seat"));
    assert_eq!(fresh.fields()["headers"], previous.fields()["headers"]);
    assert_eq!(fresh.fields()["cloak_mode"], "auto");
    assert_eq!(fresh.fields()["account_uuid"], previous.fields()["account_uuid"]);
    for lifecycle in ["id_token", "expired", "last_refresh"] {
        assert!(!fresh.fields().contains_key(lifecycle), "{lifecycle} must not be inherited");
    }

    let mut paused = previous.clone();
    paused.set_disabled(true);
    let mut relogin = cred(json!({"type": "claude", "access_token": "x"}));
    relogin.carry_over_user_fields(&paused);
    assert!(relogin.disabled());
}

#[test]
fn auth_index_seed_is_type_and_clean_absolute_path() {
    let path = Path::new("/home/u/.cli-proxy-api/claude-a@b.com.json");
    // printf 'claude:/home/u/.cli-proxy-api/claude-a@b.com.json' | sha256sum | cut -c1-16
    assert_eq!(auth_index("claude", path), "73d11bcd0c70fd6f");
    assert_eq!(auth_index(" Claude ", path), "73d11bcd0c70fd6f");
    let unclean = Path::new("/home/u/./x/../.cli-proxy-api//claude-a@b.com.json");
    assert_eq!(auth_index("claude", unclean), "73d11bcd0c70fd6f");
    assert_ne!(auth_index("codex", path), "73d11bcd0c70fd6f");

    let relative = Path::new("some-dir/kimi-1.json");
    let absolute = std::env::current_dir().unwrap().join(relative);
    assert_eq!(auth_index("kimi", relative), auth_index("kimi", &absolute));
    let index = auth_index("kimi", relative);
    assert_eq!(index.len(), 16);
    assert!(index.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
}

#[test]
fn file_name_rules() {
    for ok in ["claude-a@b.com.json", "x.json", "kiro-google-48213.json", "codex-1a2b-é@x.json"] {
        assert!(validate_file_name(ok).is_ok(), "{ok}");
    }
    let long = format!("{}.json", "a".repeat(250));
    assert!(validate_file_name(&long).is_ok());
    let too_long = format!("{}.json", "a".repeat(251));
    for bad in [
        "",
        "../x.json",
        "a/b.json",
        "a\\b.json",
        "x.txt",
        "x.JSON",
        ".hidden.json",
        ".json",
        "a..b.json",
        "nul\0.json",
        "tab\t.json",
        too_long.as_str(),
    ] {
        assert!(matches!(validate_file_name(bad), Err(StoreError::InvalidName(_))), "{bad:?}");
    }
    assert_eq!(
        validate_file_name("x.txt").unwrap_err().to_string(),
        "invalid auth file name: \"x.txt\" must end with \".json\""
    );
}

#[test]
fn debug_output_never_shows_values() {
    let shown = format!("{:?}", corpus("claude-jane.doe@example.com.json"));
    assert!(shown.contains("\"access_token\""), "{shown}");
    assert!(!shown.contains("FAKE"), "{shown}");
    assert!(!shown.contains("jane.doe@example.com\""), "{shown}");
}
