//! `dialect_request`, `dialect_response`, `dialect_error`: the whole-body translators. The
//! first byte picks the dialect the rest is read as.

use switchyard_dialects::ir::{ChatRequest, ErrorInfo};
use switchyard_dialects::usage;
use switchyard_providers::exec::kiro::{self, BuildOptions};

use crate::support::{DIALECTS, assert_json_round_trip, assert_sse_text, dialect_of};

/// A client request body: decoded to the neutral form, encoded to every dialect (and Kiro's
/// AWS JSON), each output valid JSON; what a dialect's encoder writes, its own decoder reads.
pub fn dialect_request(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let source = dialect_of(selector);
    let Ok(request) = source.request_to_ir(body, "fuzz-model") else { return };
    let _ = usage::request_chars(&request);
    for target in DIALECTS {
        let Ok(encoded) = target.request_from_ir(&request) else { continue };
        assert_json_round_trip(&format!("{source:?} request as {target:?}"), &encoded);
        let wire = serde_json::to_vec(&encoded).expect("checked above");
        if let Err(error) = target.request_to_ir(&wire, &request.model) {
            panic!("{target:?} refuses the request its own encoder wrote ({error}): {encoded}");
        }
    }
    kiro_request(&request);
}

fn kiro_request(request: &ChatRequest) {
    let options = BuildOptions {
        model: &request.model,
        origin: "AI_EDITOR",
        profile_arn: None,
        now: "2026-01-01 00:00:00 UTC",
        conversation_id: "fuzz",
    };
    if let Ok(built) = kiro::build(request, &options) {
        let value = serde_json::to_value(&built.request).expect("a Kiro request always serializes");
        assert_json_round_trip("Kiro request", &value);
    }
}

/// An upstream answer body: decoded, encoded to every dialect, each output valid JSON that the
/// dialect's own decoder reads; the usage reader never panics on it.
pub fn dialect_response(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let source = dialect_of(selector);
    let _ = usage::from_body(source, body);
    let Ok(response) = source.response_to_ir(body) else { return };
    let _ = usage::response_chars(&response);
    for target in DIALECTS {
        let encoded = target.response_from_ir(&response);
        assert_json_round_trip(&format!("{source:?} response as {target:?}"), &encoded);
        let wire = serde_json::to_vec(&encoded).expect("checked above");
        if let Err(error) = target.response_to_ir(&wire) {
            panic!("{target:?} refuses the response its own encoder wrote ({error}): {encoded}");
        }
    }
}

/// An upstream error body with a status (two leading bytes): read as neutral, written as every
/// dialect's error body (valid JSON) and mid-stream error frame (valid SSE); a status outside
/// 100..=599 never comes out.
pub fn dialect_error(data: &[u8]) {
    let [selector, high, low, body @ ..] = data else { return };
    let source = dialect_of(*selector);
    let status = u16::from_be_bytes([*high, *low]);
    let error = source.error_to_ir(status, body);
    check_error(&format!("{source:?} error"), &error);
    let kind_status = ErrorInfo::status_for_kind(&error.kind);
    assert!((400..=599).contains(&kind_status), "kind {} maps to status {kind_status}", error.kind);
}

pub(crate) fn check_error(what: &str, error: &ErrorInfo) {
    for target in DIALECTS {
        let body = target.error_from_ir(error);
        assert_json_round_trip(&format!("{what} as {target:?}"), &body);
        assert_sse_text(target, &target.stream_error_frame(error));
    }
}
