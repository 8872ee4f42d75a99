//! Failure summaries: an upstream error body or a stream's break reason, made fit to store in a
//! usage record (the panels' `fail_summary`). Stricter than [`text`](crate::text), which also
//! serves error messages shown to clients: here header-style `Name: value` pairs with a
//! credential name are masked whole, and email addresses are masked too.

use crate::{is_sensitive_name, secret, text};

/// Most bytes a failure summary keeps.
pub const SUMMARY_MAX_BYTES: usize = 4096;

/// `input` with credentials masked ([`text`], plus `Authorization: …`, `Cookie: …`,
/// `X-Api-Key: …` and other `<sensitive name>: <value>` pairs), emails masked
/// ([`mask_emails`]), cut to at most [`SUMMARY_MAX_BYTES`] on a character boundary.
pub fn failure_summary(input: &str) -> String {
    // Redaction keeps lengths close, so a generous cut first bounds the work on huge bodies; a
    // secret it splits lies far past the final cut.
    let input = &input[..input.floor_char_boundary(SUMMARY_MAX_BYTES * 4)];
    let mut out = mask_emails(&header_values(&text(input)));
    out.truncate(out.floor_char_boundary(SUMMARY_MAX_BYTES));
    out
}

/// `input` with every email address shown as its first character and domain (`a***@example.com`).
pub fn mask_emails(input: &str) -> String {
    let is_local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let is_domain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('@') {
        let local_start = rest[..at].rfind(|c: char| !is_local(c)).map_or(0, |i| i + 1);
        let domain = &rest[at + 1..];
        let domain_len = domain.find(|c: char| !is_domain(c)).unwrap_or(domain.len());
        let domain = domain[..domain_len].trim_end_matches(['.', '-']);
        let looks_like_domain = domain.contains('.')
            && domain
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if local_start < at && looks_like_domain {
            let first = rest[local_start..].chars().next().unwrap_or('*');
            out.push_str(&rest[..local_start]);
            out.push(first);
            out.push_str("***@");
            out.push_str(domain);
            rest = &rest[at + 1 + domain.len()..];
        } else {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Header-style pairs (`Authorization: Basic abc`, `cookie: a=1; b=2`, `x-api-key: k`) with a
/// credential name: the value, up to the end of its line or of the JSON string holding it, is
/// masked. (JSON keys end in a quote, not a name character, so `"token": "…"` pairs are left to
/// [`text`].)
fn header_values(input: &str) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(colon) = rest.find(':') {
        let name_start = rest[..colon].rfind(|c: char| !is_name(c)).map_or(0, |i| i + 1);
        let name = &rest[name_start..colon];
        let after = &rest[colon + 1..];
        let value_start = after.len() - after.trim_start_matches([' ', '\t']).len();
        let value = &after[value_start..];
        let value_len = value.find(['\r', '\n', '"', '\\', ',', '}']).unwrap_or(value.len());
        let value = value[..value_len].trim_end();
        // Counts are no secrets: `max_tokens: 4096`, `code: 400`.
        let count = name.to_ascii_lowercase().ends_with("tokens")
            || value.split_whitespace().next().is_some_and(|word| {
                let word = word.trim_end_matches(|c: char| c.is_ascii_punctuation());
                !word.is_empty() && word.chars().all(|c| c.is_ascii_digit())
            });
        if !name.is_empty() && is_sensitive_name(name) && !count && !value.is_empty() && !value.contains("[redacted") {
            out.push_str(&rest[..colon + 1 + value_start]);
            out.push_str(&secret(value).to_string());
            rest = &rest[colon + 1 + value_start + value.len()..];
        } else {
            out.push_str(&rest[..=colon]);
            rest = &rest[colon + 1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_their_first_character_and_domain() {
        assert_eq!(mask_emails("owner jane.doe+x@example.co.uk said"), "owner j***@example.co.uk said");
        assert_eq!(mask_emails("a@b.c and @handle and x@localhost"), "a@b.c and @handle and x@localhost");
        assert_eq!(mask_emails("{\"email\":\"sam@corp.example.com\"}"), "{\"email\":\"s***@corp.example.com\"}");
        assert_eq!(mask_emails("a@x.io, b@y.io."), "a***@x.io, b***@y.io.");
    }

    #[test]
    fn header_style_credentials_are_masked_whole() {
        let body = "got headers\nAuthorization: Basic dXNlcjpwYXNz\ncookie: sid=abc123; theme=dark\nx-api-key: plain-key-value\nAccept: */*";
        let out = failure_summary(body);
        for secret in ["dXNlcjpwYXNz", "sid=abc123", "plain-key-value"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("Accept: */*") && out.contains("Authorization: [redacted"), "{out}");
        // Inside a JSON string the value ends with the string.
        let json = r#"{"error":{"message":"rejected api-key: k-0123456789, retry","code":"x"}}"#;
        let out = failure_summary(json);
        assert!(!out.contains("k-0123456789") && out.contains(", retry"), "{out}");
        let out = failure_summary(r#"{"message":"Cookie: session=s3cr3t-value"}"#);
        assert!(!out.contains("s3cr3t-value"), "{out}");
        // Counts stay readable.
        let out = failure_summary("max_tokens: 999999 > 64000; error code: 400; token: 0123abcdef9");
        assert!(out.starts_with("max_tokens: 999999 > 64000; error code: 400; token: [redacted"), "{out}");
    }

    #[test]
    fn the_generic_rules_apply_too() {
        let out = failure_summary(
            r#"{"message":"Bearer tok-abcdef123456 for owner@example.com","access_token":"at-1234567890"}"#,
        );
        assert!(!out.contains("tok-abcdef123456") && !out.contains("at-1234567890"), "{out}");
        assert!(!out.contains("owner@example.com") && out.contains("o***@example.com"), "{out}");
    }

    #[test]
    fn summaries_are_cut_at_4_kib_on_a_character_boundary() {
        let long = "é".repeat(5000);
        let out = failure_summary(&long);
        assert!(out.len() <= SUMMARY_MAX_BYTES && out.len() > SUMMARY_MAX_BYTES - 2);
        assert!(out.chars().all(|c| c == 'é'));
        assert_eq!(failure_summary("short"), "short");
    }
}
