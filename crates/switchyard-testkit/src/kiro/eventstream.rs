//! Kiro's answers as AWS event-stream frames, written with `aws_smithy_eventstream`'s
//! `write_message_to` (prelude and message CRCs included), the way AWS's own services frame them:
//! `:message-type` `event` with `:event-type` and `:content-type: application/json`, or
//! `exception` with `:exception-type`.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::{Value, json};

/// One frame of a scripted answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// An event: its `:event-type` and JSON payload.
    Event { event_type: String, payload: Value },
    /// An exception (`:message-type: exception`), e.g. `ThrottlingException`.
    Exception { kind: String, message: String },
}

impl Frame {
    pub fn event(event_type: &str, payload: Value) -> Frame {
        Frame::Event { event_type: event_type.into(), payload }
    }

    /// `assistantResponseEvent {"content"}`.
    pub fn text(content: &str) -> Frame {
        Frame::event("assistantResponseEvent", json!({ "content": content }))
    }

    /// `toolUseEvent`: one fragment of a tool call's input (JSON text).
    pub fn tool_use(id: &str, name: &str, input: &str, stop: bool) -> Frame {
        let mut payload = json!({"toolUseId": id, "name": name});
        if !input.is_empty() {
            payload["input"] = input.into();
        }
        if stop {
            payload["stop"] = true.into();
        }
        Frame::event("toolUseEvent", payload)
    }

    /// `supplementaryWebLinksEvent` carrying token counts.
    pub fn usage(input_tokens: i64, output_tokens: i64) -> Frame {
        Frame::event(
            "supplementaryWebLinksEvent",
            json!({"supplementaryWebLinks": [], "inputTokens": input_tokens, "outputTokens": output_tokens}),
        )
    }

    /// `messageStopEvent {"stopReason"}`.
    pub fn stop(reason: &str) -> Frame {
        Frame::event("messageStopEvent", json!({ "stopReason": reason }))
    }

    pub fn exception(kind: &str, message: &str) -> Frame {
        Frame::Exception { kind: kind.into(), message: message.into() }
    }

    fn message(&self) -> Message {
        let string =
            |name: &str, value: &str| Header::new(name.to_owned(), HeaderValue::String(value.to_owned().into()));
        match self {
            Frame::Event { event_type, payload } => Message::new(payload.to_string().into_bytes())
                .add_header(string(":event-type", event_type))
                .add_header(string(":content-type", "application/json"))
                .add_header(string(":message-type", "event")),
            Frame::Exception { kind, message } => Message::new(json!({ "message": message }).to_string().into_bytes())
                .add_header(string(":exception-type", kind))
                .add_header(string(":content-type", "application/json"))
                .add_header(string(":message-type", "exception")),
        }
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_message_to(&self.message(), &mut out).expect("a scripted frame fits in an event stream frame");
        out
    }

    /// The frame as the fixture sidecar describes it: its headers and JSON payload.
    pub fn describe(&self) -> Value {
        match self {
            Frame::Event { event_type, payload } => json!({
                "headers": {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                "payload": payload,
            }),
            Frame::Exception { kind, message } => json!({
                "headers": {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"},
                "payload": {"message": message},
            }),
        }
    }
}

/// Every frame's bytes, in order.
pub fn encode(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(Frame::encode).collect()
}

/// The answer the API mock sends unless told otherwise: two text pieces, a metering event
/// (which carries credits, not tokens) and the stop event. No token usage: Kiro often sends none.
pub fn default_frames() -> Vec<Frame> {
    vec![
        Frame::text("Hello"),
        Frame::text(" from Kiro!"),
        Frame::event("meteringEvent", json!({"unit": "credit", "unitPlural": "credits", "usage": 0.0123})),
        Frame::stop("end_turn"),
    ]
}

/// The recorded fixture's frames (`fixtures/kiro/text.eventstream`): text split across events,
/// a `<thinking>` block, a tool call in fragments, usage and the stop event.
pub fn fixture_frames() -> Vec<Frame> {
    vec![
        Frame::text("<thinking>The user wants a greeting"),
        Frame::text(" and the weather.</thinking>\n\nHello! "),
        Frame::text("Let me check the weather — ☀️ maybe."),
        Frame::tool_use("tooluse_fixture01", "get_weather", "{\"city\": \"Par", false),
        Frame::tool_use("tooluse_fixture01", "get_weather", "is\", \"unit\": \"C\"}", false),
        Frame::tool_use("tooluse_fixture01", "get_weather", "", true),
        Frame::event("followupPromptEvent", json!({"followupPrompt": {"content": "Ask about tomorrow"}})),
        Frame::usage(42, 17),
        Frame::stop("tool_use"),
    ]
}
