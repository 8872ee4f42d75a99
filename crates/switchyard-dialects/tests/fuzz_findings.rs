//! Regression tests for what fuzzing (`crates/switchyard-fuzz`, `fuzz/`) found in the dialects;
//! each input is also kept in `fuzz/regressions/<target>/`.

use switchyard_dialects::ir::{StopReason, StreamDecoder, StreamEvent, Usage};
use switchyard_dialects::sse::SseParser;
use switchyard_dialects::{Dialect, anthropic, gemini};

fn decode_anthropic(payloads: &[&str]) -> Vec<StreamEvent> {
    let mut decoder = anthropic::Decoder::new();
    let mut events = Vec::new();
    for payload in payloads {
        events.extend(decoder.decode(None, payload).unwrap());
    }
    events.extend(decoder.finish());
    events
}

const START: &str = r#"{"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":3}}}"#;
const STOP: &str = r#"{"type":"message_stop"}"#;

/// stream_decoder: an upstream repeating `content_block_stop` (or sending deltas after it) made
/// the decoder close a block twice and send deltas for a closed block.
#[test]
fn anthropic_decoder_drops_stops_and_deltas_of_blocks_that_are_not_open() {
    let events = decode_anthropic(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"not json"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        STOP,
    ]);
    let blocks: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| !matches!(e, StreamEvent::Start { .. } | StreamEvent::Usage(_) | StreamEvent::Finish { .. }))
        .collect();
    assert_eq!(
        blocks,
        [
            &StreamEvent::TextStart { index: 0 },
            &StreamEvent::TextDelta { index: 0, text: "hi".into() },
            &StreamEvent::BlockStop { index: 0 },
            &StreamEvent::ToolCallStart { index: 1, id: "t".into(), name: "f".into() },
            &StreamEvent::ToolCallDelta { index: 1, arguments: "{}".into() },
            &StreamEvent::BlockStop { index: 1 },
            &StreamEvent::Done,
        ]
    );
}

/// A block the upstream never stopped is stopped before `Done`, and a start reusing an open
/// block's index closes that block first.
#[test]
fn anthropic_decoder_closes_blocks_left_open() {
    let events = decode_anthropic(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"a"}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"b"}}"#,
        STOP,
    ]);
    let stops: Vec<usize> = events
        .iter()
        .filter_map(|e| if let StreamEvent::BlockStop { index } = e { Some(*index) } else { None })
        .collect();
    assert_eq!(stops, [0, 1]);
    let done = events.iter().position(|e| *e == StreamEvent::Done).unwrap();
    let last_stop = events.iter().rposition(|e| matches!(e, StreamEvent::BlockStop { .. })).unwrap();
    assert!(last_stop < done);
    assert!(events.contains(&StreamEvent::Finish { stop_reason: StopReason::EndTurn }));
}

/// stream_encoder: token counts near the ends of i64 (an upstream can send any number)
/// overflowed in the Anthropic, Gemini and OpenAI usage arithmetic.
#[test]
fn extreme_token_counts_saturate_instead_of_overflowing() {
    let usage = Usage {
        input_tokens: i64::MIN,
        output_tokens: i64::MAX,
        cached_input_tokens: i64::MAX,
        cache_creation_tokens: i64::MAX,
        reasoning_tokens: i64::MIN,
    };
    for dialect in [Dialect::OpenAiChat, Dialect::OpenAiResponses, Dialect::AnthropicMessages, Dialect::Gemini] {
        let mut encoder = dialect.encoder();
        let mut frames = Vec::new();
        for event in [
            StreamEvent::Start { id: "id".into(), model: "m".into() },
            StreamEvent::Usage(usage),
            StreamEvent::Finish { stop_reason: StopReason::EndTurn },
            StreamEvent::Usage(usage),
            StreamEvent::Done,
        ] {
            frames.extend(encoder.encode(&event));
        }
        let mut parser = SseParser::new();
        for event in parser.feed(frames.concat().as_bytes()) {
            if event.data != "[DONE]" {
                serde_json::from_str::<serde_json::Value>(&event.data).unwrap();
            }
        }
    }
    let big = br#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807}}}"#;
    let events = anthropic::Decoder::new().decode(None, std::str::from_utf8(big).unwrap()).unwrap();
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Usage(u) if u.input_tokens == i64::MAX)));
}

/// dialect_request: Gemini `contents` whose parts are all of unknown kinds decoded to a request
/// with no message, which every other dialect's upstream refuses; it is a 400 here now.
#[test]
fn gemini_request_without_any_known_part_is_refused() {
    let body = br#"{"contents":[{"role":"user","parts":[{"texQ":"hi"}]}],"systemInstruction":{"pZrts":[]}}"#;
    let error = gemini::request_to_ir(body, "gemini-2.5-pro").unwrap_err();
    assert!(error.to_string().contains("contents"), "{error}");
    let fine = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    assert_eq!(gemini::request_to_ir(fine, "gemini-2.5-pro").unwrap().messages.len(), 1);
}

/// dialect_request: an OpenAI Chat request holding only a system message became an Anthropic
/// (or Gemini) request with no message, which that upstream refuses; it is refused here with a
/// clear error instead.
#[test]
fn a_system_only_request_is_refused_for_anthropic_and_gemini() {
    let body = br#"{"model":"gpt-5","messages":[{"role":"system","content":"be brief"}]}"#;
    let request = Dialect::OpenAiChat.request_to_ir(body, "").unwrap();
    assert!(request.messages.is_empty());
    for dialect in [Dialect::AnthropicMessages, Dialect::Gemini] {
        let error = dialect.request_from_ir(&request).unwrap_err();
        assert!(error.to_string().contains("no message"), "{dialect:?}: {error}");
    }
    let chat = Dialect::OpenAiChat.request_from_ir(&request).unwrap();
    assert_eq!(chat["messages"][0]["role"], "system");
}

/// dialect_request: a Responses request with tools but no input became an OpenAI Chat request
/// with an empty `messages`, which Chat (and its upstreams) refuse; it is refused here instead.
#[test]
fn a_responses_request_without_input_is_refused_for_openai_chat() {
    let body = br#"{"model":"gpt-5","input":[],"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"required"}"#;
    let request = Dialect::OpenAiResponses.request_to_ir(body, "").unwrap();
    assert!(request.messages.is_empty() && request.system.is_empty());
    let error = Dialect::OpenAiChat.request_from_ir(&request).unwrap_err();
    assert!(error.to_string().contains("no message"), "{error}");
}

/// stream_decoder: an upstream repeating a reasoning item's `output_item.done` (and a tool call's
/// `output_item.added`) made the Responses decoder sign a thinking block it had closed and open
/// the tool call twice; repeats of a closed or open item are dropped now.
#[test]
fn responses_decoder_drops_repeated_item_events() {
    use switchyard_dialects::openai_responses;
    let events = [
        r#"{"type":"response.created","response":{"id":"resp_1","model":"gpt-5"}}"#,
        r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"reasoning","id":"rs_1"}}"#,
        r#"{"type":"response.reasoning_summary_text.delta","output_index":0,"item_id":"rs_1","delta":"think"}"#,
        r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"reasoning","id":"rs_1","encrypted_content":"sig"}}"#,
        r#"{"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":""}}"#,
        r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"reasoning","id":"rs_1","encrypted_content":"sig"}}"#,
        r#"{"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":""}}"#,
        r#"{"type":"response.output_item.done","output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{}"}}"#,
    ];
    let mut decoder = openai_responses::Decoder::new();
    let mut out = Vec::new();
    for event in events {
        out.extend(decoder.decode(None, event).unwrap());
    }
    let signatures = out.iter().filter(|e| matches!(e, StreamEvent::ThinkingSignature { .. })).count();
    let calls = out.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).count();
    assert_eq!((signatures, calls), (1, 1), "{out:?}");
}

/// dialect_request: a Gemini `inlineData` without `data` decoded to an image with no bytes, which
/// OpenAI Chat (and every upstream) refuses; it is a 400 naming the field now.
#[test]
fn gemini_inline_data_without_data_is_refused() {
    let body = br#"{"contents":[{"role":"user","parts":[{"text":"look"},{"inlineData":{"mimeType":"image/png","dcta":"iVBORw0KGgo="}}]}]}"#;
    let error = gemini::request_to_ir(body, "gemini-2.5-pro").unwrap_err();
    assert!(error.to_string().contains("inlineData.data"), "{error}");
    let fine =
        br#"{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]}]}"#;
    assert_eq!(gemini::request_to_ir(fine, "gemini-2.5-pro").unwrap().messages.len(), 1);
}

/// dialect_request: an Anthropic image whose `media_type` is no image type (or an OpenAI Chat data
/// URL without one) went to other dialects as an image that Gemini then refused; both decoders
/// refuse it now, naming the field.
#[test]
fn images_must_have_an_image_media_type() {
    let anthropic = br#"{"model":"c","max_tokens":8,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"imeg/apgn","data":"iVBORw0KGgo="}}]}]}"#;
    let error = Dialect::AnthropicMessages.request_to_ir(anthropic, "").unwrap_err();
    assert!(error.to_string().contains("media_type"), "{error}");
    let chat = br#"{"model":"g","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,iVBORw0KGgo="}}]}]}"#;
    let error = Dialect::OpenAiChat.request_to_ir(chat, "").unwrap_err();
    assert!(error.to_string().contains("image media type"), "{error}");
    let comma = br#"{"model":"g","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/,png;base64,iVBORw0KGgo="}}]}]}"#;
    assert!(Dialect::OpenAiChat.request_to_ir(comma, "").is_err());
    assert!(switchyard_dialects::ir::is_image_media_type("image/svg+xml"));
    assert!(
        !switchyard_dialects::ir::is_image_media_type("image/")
            && !switchyard_dialects::ir::is_image_media_type("image/a,b")
    );
    let fine = br#"{"model":"g","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}"#;
    assert_eq!(Dialect::OpenAiChat.request_to_ir(fine, "").unwrap().messages.len(), 1);
}

/// dialect_request: a request whose only text was empty became a Gemini turn of one empty text
/// part, which Gemini refuses; empty texts are left out now, and nothing left is a clear 400.
#[test]
fn an_empty_text_is_no_gemini_part() {
    let body = br#"{"model":"g","messages":[{"role":"user","content":""}]}"#;
    let request = Dialect::OpenAiChat.request_to_ir(body, "").unwrap();
    let error = Dialect::Gemini.request_from_ir(&request).unwrap_err();
    assert!(error.to_string().contains("no message"), "{error}");
    let body = br#"{"model":"g","messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"hi"}]}]}"#;
    let request = Dialect::OpenAiChat.request_to_ir(body, "").unwrap();
    let gemini = Dialect::Gemini.request_from_ir(&request).unwrap();
    assert_eq!(gemini["contents"][0]["parts"], serde_json::json!([{"text": "hi"}]));
}
