//! The per-request [`UsageRecord`] (monitoring) and what its token counts come from: the
//! upstream's reported usage when there was one, else the 4-characters-per-token estimate of
//! the request's and answer's text ([`switchyard_dialects::usage`]).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchyard_dialects::ir::Usage;
use switchyard_dialects::usage::estimate_tokens;
use switchyard_usage::{Tokens, UsageRecord};

use super::sink::Finished;

/// What a request's answer said about tokens, and what the estimate needs when it said nothing.
#[derive(Debug, Default, Clone)]
pub struct TokenTally {
    /// The latest usage the upstream reported.
    pub reported: Option<Usage>,
    /// A generation's answer was relayed (whole or partly): without reported usage, its
    /// tokens are estimated. Errors and token counts cost nothing.
    pub answered: bool,
    /// Characters of the request's text (bytes of its body when it was passed through unparsed).
    pub request_chars: usize,
    /// Characters of the answer's text (bytes relayed when a stream was passed through unparsed).
    pub answer_chars: usize,
}

impl TokenTally {
    pub fn tokens(&self) -> Tokens {
        let count = |n: i64| n.max(0) as u64;
        match self.reported {
            Some(usage) => Tokens {
                input: count(usage.input_tokens),
                output: count(usage.output_tokens),
                cached: count(usage.cached_input_tokens),
                cache_creation: count(usage.cache_creation_tokens),
                reasoning: count(usage.reasoning_tokens),
                estimated: false,
            },
            None if self.answered => Tokens {
                input: estimate_tokens(self.request_chars),
                output: estimate_tokens(self.answer_chars),
                estimated: true,
                ..Tokens::default()
            },
            None => Tokens::default(),
        }
    }
}

/// A hash of a client key for records: the first 16 hex characters of its SHA-256. The key
/// itself is never kept.
pub fn client_key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// Why the request failed, made fit to store: the upstream's error body (or the break reason,
/// or our own error) with credentials and emails masked, at most 4 KiB.
pub fn failure(done: &Finished<'_>) -> Option<String> {
    if !done.failed() {
        return None;
    }
    let text = done.upstream_error.or(done.error).unwrap_or("request failed");
    Some(switchyard_redact::failure_summary(text))
}

pub fn usage_record(done: &Finished<'_>, started_at: DateTime<Utc>, endpoint: &str) -> UsageRecord {
    UsageRecord {
        timestamp: started_at,
        request_id: done.request_id.to_owned(),
        client_key: done.client_key.to_owned(),
        client_key_hash: done.client_key_hash.to_owned(),
        requested_model: done.requested_model.to_owned(),
        upstream_model: done.upstream_model.to_owned(),
        provider: done.provider.to_owned(),
        auth_index: done.auth_index.to_owned(),
        account: done.account.to_owned(),
        endpoint: endpoint.to_owned(),
        dialect_in: done.dialect_in.to_owned(),
        dialect_out: done.dialect_out.to_owned(),
        stream: done.stream,
        status: done.status,
        latency_ms: done.latency_ms,
        ttfb_ms: done.ttfb_ms,
        tokens: done.tokens.clone(),
        attempts: done.attempts,
        failure: failure(done),
    }
}

/// The usage queue's `tokens` object (CPA's names) for `tokens`.
pub fn queue_tokens(tokens: &Tokens) -> Value {
    json!({
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "reasoning_tokens": tokens.reasoning,
        "cached_tokens": tokens.cached,
        "cache_read_tokens": tokens.cached,
        // Reported by the upstream (an estimate knows nothing about the cache).
        "cache_read_tokens_present": !tokens.estimated && tokens.total() > 0,
        "cache_creation_tokens": tokens.cache_creation,
        "total_tokens": tokens.total(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_usage_wins_and_the_estimate_needs_an_answer() {
        let reported = Usage { input_tokens: 12, output_tokens: 30, cached_input_tokens: 4, ..Usage::default() };
        let tally = TokenTally { reported: Some(reported), answered: true, request_chars: 400, answer_chars: 400 };
        let tokens = tally.tokens();
        assert_eq!((tokens.input, tokens.output, tokens.cached, tokens.estimated), (12, 30, 4, false));

        let tally = TokenTally { reported: None, answered: true, request_chars: 41, answer_chars: 8 };
        let tokens = tally.tokens();
        assert_eq!((tokens.input, tokens.output, tokens.estimated), (11, 2, true));

        let tally = TokenTally { reported: None, answered: false, request_chars: 41, answer_chars: 0 };
        assert_eq!(tally.tokens(), Tokens::default(), "no answer, nothing estimated");
    }

    #[test]
    fn key_hashes_are_16_hex_chars_and_never_the_key() {
        let hash = client_key_hash("sk-client-0123456789");
        assert_eq!(hash.len(), 16);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(hash, client_key_hash("sk-client-0123456788"));
    }
}
