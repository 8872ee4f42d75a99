//! JSON values written as YAML: block style for non-empty maps and lists, scalars plain when
//! that reads back as the same string, double-quoted (JSON escapes are valid YAML) otherwise.

use serde_json::Value;

/// A value that fits on one line: scalars and empty collections.
pub(super) fn is_inline(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => true,
    }
}

/// The one-line form of an [`is_inline`] value.
pub(super) fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(v) => v.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// One-line flow form (`[a, b]`, `{k: [v]}`) of a collection, used where the document
/// already had a flow collection; `None` past a line's worth of text.
pub(super) fn flow(value: &Value) -> Option<String> {
    fn write(value: &Value) -> String {
        match value {
            Value::Array(items) => format!("[{}]", items.iter().map(write).collect::<Vec<_>>().join(", ")),
            Value::Object(map) => {
                let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", string(k), write(v))).collect();
                format!("{{{}}}", pairs.join(", "))
            }
            scalar => inline(scalar),
        }
    }
    (value.is_array() || value.is_object()).then(|| write(value)).filter(|text| text.len() <= 100)
}

/// A string as a YAML scalar.
pub(super) fn string(s: &str) -> String {
    if plain_is_safe(s) { s.to_owned() } else { serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()) }
}

/// Lines (without line breaks) of a non-empty collection in block style at `indent`.
pub(super) fn block(value: &Value, indent: usize, out: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if is_inline(child) {
                    out.push(format!("{pad}{}: {}", string(key), inline(child)));
                } else {
                    out.push(format!("{pad}{}:", string(key)));
                    block(child, indent + 2, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_inline(item) {
                    out.push(format!("{pad}- {}", inline(item)));
                } else {
                    // `- ` then the first line of the nested collection on the dash's line.
                    let first = out.len();
                    block(item, indent + 2, out);
                    out[first] = format!("{pad}- {}", out[first].trim_start());
                }
            }
        }
        scalar => out.push(format!("{pad}{}", inline(scalar))),
    }
}

/// Would `s` written bare read back as this same string?
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s != s.trim() || "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_ascii_digit() || "+.".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.chars().any(|c| c.is_control() || matches!(c, ',' | '[' | ']' | '{' | '}' | '\\')) {
        return false;
    }
    // YAML 1.1 booleans and nulls, which other CPA tooling may still read as such.
    let lower = s.to_ascii_lowercase();
    !["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"].contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_quoted_only_when_needed() {
        assert_eq!(string("sk-abc"), "sk-abc");
        assert_eq!(string("https://api.example.com/v1"), "https://api.example.com/v1");
        assert_eq!(string("gemini-2.5-*"), "gemini-2.5-*");
        for (raw, quoted) in [
            ("", "\"\""),
            ("*", "\"*\""),
            ("yes", "\"yes\""),
            ("007", "\"007\""),
            ("a: b", "\"a: b\""),
            ("x #y", "\"x #y\""),
            (" lead", "\" lead\""),
            ("say \"hi\"", "say \"hi\""),
            ("line\nbreak", "\"line\\nbreak\""),
        ] {
            assert_eq!(string(raw), quoted, "{raw:?}");
        }
    }

    #[test]
    fn collections_render_in_block_style() {
        let mut out = Vec::new();
        block(&json!([{"api-key": "k", "models": [{"name": "m", "alias": "a"}], "headers": {}}, "x"]), 2, &mut out);
        assert_eq!(
            out,
            ["  - api-key: k", "    models:", "      - name: m", "        alias: a", "    headers: {}", "  - x"]
        );
    }
}
