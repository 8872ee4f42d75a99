use serde_json::json;

use super::*;

/// Comments above, inline and between items; blank lines; flow and block styles; quoting.
const COMMENTED: &str = r#"# Switchyard test config
port: 8317   # the port

# Logging
debug: false # verbose
proxy-url: ""
request-retry: 3

api-keys:
  # first key
  - "key-one"   # inline one

  - key-two
# between sections
routing:
  strategy: 'round-robin'  # how to pick
claude-api-key:
  - api-key: "sk-one"   # first claude
    base-url: https://a.example
    # headers below
    headers:
      X-A: b
  - api-key: sk-two
    priority: 2
oauth-excluded-models: {gemini-cli: [a, b]}  # flow map
compact:
- x
- y
tail: 1
# trailing comment
"#;

fn set(path: &[Seg], value: serde_json::Value) -> String {
    let out = apply(COMMENTED, &[Edit::Set(path.to_vec(), value)]).unwrap();
    crate::parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    out
}

fn del(path: &[Seg]) -> String {
    let out = apply(COMMENTED, &[Edit::Delete(path.to_vec())]).unwrap();
    crate::parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    out
}

fn k(key: &str) -> Seg {
    Seg::key(key)
}

#[test]
fn a_scalar_keeps_its_inline_comment() {
    assert_eq!(set(&[k("debug")], json!(true)), COMMENTED.replace("debug: false # verbose", "debug: true # verbose"));
    assert_eq!(
        set(&[k("routing"), k("strategy")], json!("fill-first")),
        COMMENTED.replace("strategy: 'round-robin'  #", "strategy: fill-first  #")
    );
    assert_eq!(
        set(&[k("proxy-url")], json!("socks5://127.0.0.1:1080")),
        COMMENTED.replace("proxy-url: \"\"", "proxy-url: socks5://127.0.0.1:1080")
    );
    assert_eq!(set(&[k("port")], json!(9000)), COMMENTED.replace("8317   #", "9000   #"));
}

#[test]
fn missing_keys_and_parent_mappings_are_created_at_the_end() {
    let out = set(&[k("quota-exceeded"), k("switch-project")], json!(false));
    assert_eq!(out, format!("{COMMENTED}quota-exceeded:\n  switch-project: false\n"));
    let out = set(&[k("routing"), k("session-affinity")], json!(true));
    assert_eq!(out, COMMENTED.replace("# how to pick\n", "# how to pick\n  session-affinity: true\n"));
    let out = set(&[k("claude-api-key"), Seg::Index(1), k("prefix")], json!("team"));
    assert_eq!(out, COMMENTED.replace("    priority: 2\n", "    priority: 2\n    prefix: team\n"));
}

#[test]
fn a_list_item_is_replaced_added_and_removed_alone() {
    assert_eq!(
        set(&[k("api-keys"), Seg::Index(0)], json!("key-1b")),
        COMMENTED.replace("\"key-one\"   #", "key-1b   #")
    );
    assert_eq!(
        set(&[k("api-keys"), Seg::Index(2)], json!("key-3")),
        COMMENTED.replace("  - key-two\n", "  - key-two\n  - key-3\n")
    );
    assert_eq!(del(&[k("api-keys"), Seg::Index(1)]), COMMENTED.replace("  - key-two\n", ""));
    assert_eq!(
        del(&[k("claude-api-key"), Seg::Index(1)]),
        COMMENTED.replace("  - api-key: sk-two\n    priority: 2\n", "")
    );
    assert_eq!(set(&[k("compact"), Seg::Index(2)], json!("z")), COMMENTED.replace("- y\n", "- y\n- z\n"));
    assert_eq!(del(&[k("compact"), Seg::Index(0)]), COMMENTED.replace("- x\n", ""));
}

#[test]
fn a_whole_list_is_replaced_in_block_style() {
    let out = set(&[k("claude-api-key")], json!([{"api-key": "sk-new", "models": [{"name": "m", "alias": "a"}]}]));
    let old_block = "  - api-key: \"sk-one\"   # first claude\n    base-url: https://a.example\n    # headers below\n    headers:\n      X-A: b\n  - api-key: sk-two\n    priority: 2\n";
    assert_eq!(
        out,
        COMMENTED.replace(old_block, "  - api-key: sk-new\n    models:\n      - name: m\n        alias: a\n")
    );
    // A compact list stays compact.
    assert_eq!(set(&[k("compact")], json!(["p", "q"])), COMMENTED.replace("- x\n- y\n", "- p\n- q\n"));
    // An empty list is written inline.
    assert_eq!(
        set(&[k("api-keys")], json!([])),
        COMMENTED
            .replace("api-keys:\n  # first key\n  - \"key-one\"   # inline one\n\n  - key-two\n", "api-keys: []\n")
    );
}

#[test]
fn a_flow_collection_is_rewritten_whole_keeping_its_comment() {
    let out = set(&[k("oauth-excluded-models"), k("claude")], json!(["*"]));
    assert_eq!(
        out,
        COMMENTED.replace(
            "oauth-excluded-models: {gemini-cli: [a, b]}  # flow map\n",
            "oauth-excluded-models: {gemini-cli: [a, b], claude: [\"*\"]}  # flow map\n"
        )
    );
    // A flow list of scalars stays a flow list.
    let out = set(&[k("oauth-excluded-models"), k("gemini-cli")], json!(["c", "*"]));
    assert_eq!(out, COMMENTED.replace("{gemini-cli: [a, b]}", "{gemini-cli: [c, \"*\"]}"));
    let out = del(&[k("oauth-excluded-models"), k("gemini-cli")]);
    assert_eq!(out, COMMENTED.replace("{gemini-cli: [a, b]}  #", "{}  #"));
    assert_eq!(
        apply(COMMENTED, &[Edit::Delete(vec![k("oauth-excluded-models"), k("nope")])]),
        Err(EditError::NotFound("oauth-excluded-models.nope".into()))
    );
}

#[test]
fn keys_are_deleted_with_their_block() {
    assert_eq!(del(&[k("request-retry")]), COMMENTED.replace("request-retry: 3\n", ""));
    assert_eq!(
        del(&[k("claude-api-key"), Seg::Index(0), k("headers")]),
        COMMENTED.replace("    headers:\n      X-A: b\n", "")
    );
    assert_eq!(
        del(&[k("routing"), k("strategy")]),
        COMMENTED.replace("  strategy: 'round-robin'  # how to pick\n", "").replace("routing:\n", "routing: {}\n")
    );
    assert!(matches!(apply(COMMENTED, &[Edit::Delete(vec![k("nope")])]), Err(EditError::NotFound(p)) if p == "nope"));
    assert!(matches!(
        apply(COMMENTED, &[Edit::Delete(vec![k("api-keys"), Seg::Index(5)])]),
        Err(EditError::NotFound(p)) if p == "api-keys[5]"
    ));
}

#[test]
fn list_edits_touch_only_changed_fields() {
    // What a panel sends back: the entries from GET /config, every field present, one edited.
    let new = [
        json!({"api-key": "sk-one", "base-url": "https://a.example", "priority": 0, "prefix": "", "headers": {"X-A": "b"}, "models": [], "weight": null}),
        json!({"api-key": "sk-two", "priority": 5, "prefix": "", "headers": {}, "models": []}),
        json!({"api-key": "sk-three", "priority": 0, "headers": {}}),
    ];
    let edits = list_edits(COMMENTED, "claude-api-key", &new).unwrap();
    let out = apply(COMMENTED, &edits).unwrap();
    assert_eq!(out, COMMENTED.replace("    priority: 2\n", "    priority: 5\n  - api-key: sk-three\n"));
    // Removing the last entry and a field.
    let new = [json!({"api-key": "sk-one", "headers": {"X-A": "b"}})];
    let out = apply(COMMENTED, &list_edits(COMMENTED, "claude-api-key", &new).unwrap()).unwrap();
    assert_eq!(
        out,
        COMMENTED
            .replace("    base-url: https://a.example\n", "")
            .replace("  - api-key: sk-two\n    priority: 2\n", "")
    );
}

#[test]
fn crlf_documents_stay_crlf() {
    let text = "a: 1 # c\r\nlist:\r\n  - x\r\n";
    let out = apply(
        text,
        &[Edit::Set(vec![k("list"), Seg::Index(1)], json!("z")), Edit::Set(vec![k("b")], json!({"c": true}))],
    )
    .unwrap();
    assert_eq!(out, "a: 1 # c\r\nlist:\r\n  - x\r\n  - z\r\nb:\r\n  c: true\r\n");
}

#[test]
fn an_empty_document_gets_its_first_key() {
    assert_eq!(
        apply("# only a comment\n", &[Edit::Set(vec![k("debug")], json!(true))]).unwrap(),
        "# only a comment\ndebug: true\n"
    );
    assert_eq!(apply("", &[Edit::Set(vec![k("a"), k("b")], json!(1))]).unwrap(), "a:\n  b: 1\n");
}

#[test]
fn a_key_with_no_value_gets_one() {
    let text = "proxy-url:   # none yet\nrouting:\nport: 1\n";
    assert_eq!(
        apply(text, &[Edit::Set(vec![k("proxy-url")], json!("http://p:1"))]).unwrap(),
        "proxy-url: http://p:1   # none yet\nrouting:\nport: 1\n"
    );
    assert_eq!(
        apply(text, &[Edit::Set(vec![k("routing"), k("strategy")], json!("ff"))]).unwrap(),
        "proxy-url:   # none yet\nrouting:\n  strategy: ff\nport: 1\n"
    );
}

#[test]
fn quoted_keys_quoted_hashes_block_scalars_and_multiline_flows() {
    let text = "\"debug\": false # q\nproxy-url: \"http://p#x\" # real comment\nnote: |\n  line one\n  line two\nmodels: [a,\n  b]  # two\nnext: 1\n";
    let out = apply(text, &[Edit::Set(vec![k("debug")], json!(true))]).unwrap();
    assert_eq!(out, text.replace("\"debug\": false # q", "\"debug\": true # q"));
    let out = apply(text, &[Edit::Set(vec![k("proxy-url")], json!(""))]).unwrap();
    assert_eq!(out, text.replace("\"http://p#x\" # real", "\"\" # real"));
    let out = apply(text, &[Edit::Set(vec![k("note")], json!("short"))]).unwrap();
    assert_eq!(out, text.replace("note: |\n  line one\n  line two\n", "note: short\n"));
    let out = apply(text, &[Edit::Set(vec![k("models"), Seg::Index(2)], json!("c"))]).unwrap();
    assert_eq!(out, text.replace("[a,\n  b]  # two", "[a, b, c]  # two"));
    let out = apply(text, &[Edit::Delete(vec![k("models")])]).unwrap();
    assert_eq!(out, text.replace("models: [a,\n  b]  # two\n", ""));
}

#[test]
fn a_whole_item_keeps_the_comment_on_its_dash_line() {
    let text = "keys:\n  - api-key: a # first\n    priority: 1\n    # about b\n  - api-key: b\n  # - api-key: old (disabled)\nend: 1\n";
    let out =
        apply(text, &[Edit::Set(vec![k("keys"), Seg::Index(0)], json!({"api-key": "z", "prefix": "p"}))]).unwrap();
    assert_eq!(
        out,
        text.replace("  - api-key: a # first\n    priority: 1\n", "  - api-key: z # first\n    prefix: p\n")
    );
    // An appended item goes after the last item, before the trailing commented-out one.
    let out = apply(text, &[Edit::Set(vec![k("keys"), Seg::Index(2)], json!({"api-key": "c"}))]).unwrap();
    assert_eq!(out, text.replace("  - api-key: b\n", "  - api-key: b\n  - api-key: c\n"));
    // Removing the first key of an item rewrites only that item.
    let out = apply(text, &[Edit::Delete(vec![k("keys"), Seg::Index(0), k("api-key")])]).unwrap();
    assert_eq!(out, text.replace("  - api-key: a # first\n    priority: 1\n", "  - priority: 1 # first\n"));
    let out = apply(text, &[Edit::Delete(vec![k("keys"), Seg::Index(1)])]).unwrap();
    assert_eq!(out, text.replace("  - api-key: b\n", ""));
}

#[test]
fn paths_through_scalars_are_refused() {
    assert_eq!(
        apply("port: 1\n", &[Edit::Set(vec![k("port"), k("x")], json!(1))]),
        Err(EditError::NotEditable { path: "port".into(), message: "is not a mapping" })
    );
    assert!(matches!(apply("a: [\n", &[Edit::Set(vec![k("a")], json!(1))]), Err(EditError::Parse(_))));
    assert!(matches!(apply("- a\n", &[Edit::Set(vec![k("a")], json!(1))]), Err(EditError::NotEditable { .. })));
}
