//! The Kiro event-stream decoder on the recorded fixture (`switchyard-testkit/fixtures/kiro`,
//! written by the mock with `aws_smithy_eventstream` and independently decoded by botocore in
//! `tests/sdk/test_kiro_eventstream.py`): split at every byte boundary it gives the same Anthropic
//! SSE; a flipped byte is a CRC error; a cut is a truncation.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_dialects::Dialect;
use switchyard_dialects::sse::SseParser;
use switchyard_providers::exec::kiro::{FrameError, FrameReader, KiroEvent, ResponseBuilder, event_of};
use switchyard_testkit::kiro::{FIXTURE_DIR, Frame, encode, fixture_frames, sidecar};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(FIXTURE_DIR).join(name)
}

/// The recorded stream; with `KIRO_WRITE_FIXTURES=1` it is (re)written from the mock first (run
/// only `the_recorded_stream_is_what_the_mock_writes` then, so no two tests write at once).
fn recorded() -> Vec<u8> {
    if std::env::var_os("KIRO_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(FIXTURE_DIR).unwrap();
        std::fs::write(fixture_path("text.eventstream"), encode(&fixture_frames())).unwrap();
        let text = serde_json::to_string_pretty(&sidecar(&fixture_frames())).unwrap() + "\n";
        std::fs::write(fixture_path("text.events.json"), text).unwrap();
    }
    std::fs::read(fixture_path("text.eventstream")).expect("the recorded fixture exists")
}

/// Bytes, fed in the given pieces, to Anthropic SSE text (or the error the stream ends with).
fn decode(pieces: &[&[u8]]) -> Result<String, FrameError> {
    let mut reader = FrameReader::new();
    let mut builder = ResponseBuilder::new("msg_fixture".into(), "kiro-claude-sonnet-4-5".into(), 400, true);
    let mut encoder = Dialect::AnthropicMessages.encoder();
    let mut out = String::new();
    for piece in pieces {
        for frame in reader.feed(piece)? {
            for event in builder.push(event_of(&frame)?) {
                out.extend(encoder.encode(&event));
            }
        }
    }
    reader.finish()?;
    for event in builder.finish() {
        out.extend(encoder.encode(&event));
    }
    Ok(out)
}

fn sse(text: &str) -> Vec<Value> {
    let mut parser = SseParser::new();
    let mut events = parser.feed(text.as_bytes());
    events.extend(parser.finish());
    events.iter().map(|e| serde_json::from_str(&e.data).unwrap()).collect()
}

#[test]
fn the_recorded_stream_is_what_the_mock_writes_and_its_sidecar_matches() {
    assert_eq!(recorded(), encode(&fixture_frames()), "regenerate with KIRO_WRITE_FIXTURES=1");
    let sidecar_file: Value =
        serde_json::from_slice(&std::fs::read(fixture_path("text.events.json")).unwrap()).unwrap();
    assert_eq!(sidecar_file, sidecar(&fixture_frames()));
    assert_eq!(sidecar_file["frames"].as_array().unwrap().len(), fixture_frames().len());
}

#[test]
fn the_recorded_stream_decodes_to_thinking_text_a_tool_call_and_usage() {
    let events = sse(&decode(&[&recorded()]).unwrap());
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    let mut blocks: Vec<(String, String)> = Vec::new();
    for event in &events {
        match event["type"].as_str().unwrap() {
            "content_block_start" => {
                let block = &event["content_block"];
                let kind = block["type"].as_str().unwrap().to_owned();
                let head =
                    if kind == "tool_use" { format!("{}:{}", block["id"], block["name"]) } else { String::new() };
                blocks.push((kind, head));
            }
            "content_block_delta" => {
                let delta = &event["delta"];
                let text = delta["text"].as_str().or(delta["thinking"].as_str()).or(delta["partial_json"].as_str());
                blocks.last_mut().unwrap().1.push_str(text.unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(
        blocks,
        [
            ("thinking".to_owned(), "The user wants a greeting and the weather.".to_owned()),
            ("text".to_owned(), "Hello! Let me check the weather — ☀️ maybe.".to_owned()),
            (
                "tool_use".to_owned(),
                "\"tooluse_fixture01\":\"get_weather\"{\"city\": \"Paris\", \"unit\": \"C\"}".to_owned()
            ),
        ]
    );
    let delta = events.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 17);
    assert_eq!(delta["usage"]["input_tokens"], 42);
}

#[test]
fn splitting_the_stream_at_any_byte_changes_nothing() {
    let bytes = recorded();
    let whole = decode(&[&bytes]).unwrap();
    for cut in 0..=bytes.len() {
        let (a, b) = bytes.split_at(cut);
        assert_eq!(decode(&[a, b]).unwrap(), whole, "split at byte {cut}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode(&singles).unwrap(), whole, "one byte at a time");
    for size in [2, 3, 7, 13, 64] {
        let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
        assert_eq!(decode(&chunks).unwrap(), whole, "chunks of {size}");
    }
}

#[test]
fn a_flipped_payload_byte_fails_the_message_crc() {
    let mut bytes = recorded();
    let first = Frame::text("<thinking>The user wants a greeting").encode();
    assert!(bytes.starts_with(&first));
    // A byte inside the first frame's payload (just before its message CRC).
    bytes[first.len() - 5] ^= 0x20;
    let error = decode(&[&bytes]).unwrap_err();
    assert!(matches!(error, FrameError::Corrupt(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("Kiro event stream frame is corrupt: message checksum"), "{text}");
    // Split anywhere, the same error and nothing decoded before it from that frame.
    for cut in [1, 11, 12, first.len() - 1] {
        let (a, b) = bytes.split_at(cut);
        assert_eq!(decode(&[a, b]).unwrap_err(), error, "split at {cut}");
    }
}

#[test]
fn a_corrupt_prelude_is_refused_before_waiting_for_its_length() {
    let mut bytes = recorded();
    bytes[9] ^= 0x01; // inside the prelude CRC
    let error = decode(&[&bytes]).unwrap_err();
    assert!(error.to_string().contains("prelude checksum"), "{error}");

    let mut huge = recorded();
    huge[0] = 0x7f; // announces ~2 GB
    assert_eq!(
        decode(&[&huge]).unwrap_err(),
        FrameError::BadLength(u32::from_be_bytes([0x7f, huge[1], huge[2], huge[3]]))
    );
    assert_eq!(decode(&[&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]]).unwrap_err(), FrameError::BadLength(3));
}

#[test]
fn a_stream_cut_mid_frame_is_a_truncation_not_an_end() {
    let bytes = recorded();
    let first = Frame::text("<thinking>The user wants a greeting").encode().len();
    for cut in [5, first + 3, first + 20, bytes.len() - 1] {
        let error = decode(&[&bytes[..cut]]).unwrap_err();
        assert!(matches!(error, FrameError::Truncated(_)), "cut at {cut}: {error:?}");
        assert!(error.to_string().starts_with("Kiro event stream ended in the middle of a frame"), "{error}");
    }
    assert!(decode(&[&bytes[..first]]).is_ok(), "a cut at a frame boundary is a clean end");
}

#[test]
fn frames_are_read_by_type_and_malformed_payloads_are_errors() {
    let read = |frame: Frame| {
        let mut reader = FrameReader::new();
        let frames = reader.feed(&frame.encode()).unwrap();
        assert_eq!(frames.len(), 1);
        event_of(&frames[0])
    };
    assert_eq!(
        read(Frame::exception("ThrottlingException", "slow down")).unwrap(),
        KiroEvent::Error { kind: "ThrottlingException".into(), message: "slow down".into() }
    );
    assert_eq!(
        read(Frame::event("assistantResponseEvent", json!({"_type": "error", "message": "bad"}))).unwrap(),
        KiroEvent::Error { kind: "error".into(), message: "bad".into() }
    );
    assert_eq!(
        read(Frame::event("toolUseEvent", json!({"toolUseId": "t", "name": "n", "input": {"a": 1}, "stop": true})))
            .unwrap(),
        KiroEvent::ToolUse { id: "t".into(), name: "n".into(), input: "{\"a\":1}".into(), stop: true }
    );
    assert_eq!(read(Frame::usage(5, 6)).unwrap(), KiroEvent::Usage { input_tokens: Some(5), output_tokens: Some(6) });
    assert_eq!(read(Frame::stop("end_turn")).unwrap(), KiroEvent::Stop { reason: Some("end_turn".into()) });
    assert_eq!(read(Frame::event("meteringEvent", json!({"usage": 0.1}))).unwrap(), KiroEvent::Ignored);
    let error = read(Frame::event("assistantResponseEvent", json!("not an object"))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Kiro event stream frame is corrupt: the payload of the assistantResponseEvent event is not a JSON object"
    );
}
