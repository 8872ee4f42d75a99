//! `kiro_event_stream`: the AWS event-stream reader under Kiro's answers and the builder that
//! turns its events into neutral stream events.

use aws_smithy_types::event_stream::Message;
use switchyard_providers::exec::kiro::{Fold, FrameError, FrameReader, ResponseBuilder, event_of};

use crate::dialects::check_error;
use crate::streams::{assert_block_order, encode_everywhere};
use crate::support::{DIALECTS, assert_json_round_trip, chunks};

/// The bytes as one event stream: fed whole, in chunks (split points from the data) and byte by
/// byte, the reader finds the same frames and the same failure (a bad CRC or length is an
/// error, never a panic); the frames' events go through the response builder, the fold and
/// every dialect's encoder.
pub fn kiro_event_stream(data: &[u8]) {
    let whole = read_all([data]);
    let split = read_all(chunks(data));
    assert_eq!(outcome(&split), outcome(&whole), "chunked event stream reads differently");
    let bytewise = read_all(data.chunks(1));
    assert_eq!(outcome(&bytewise), outcome(&whole), "byte-by-byte event stream reads differently");

    let (messages, _) = whole;
    let thinking = data.first().is_some_and(|b| b & 1 == 1);
    let mut builder = ResponseBuilder::new("fuzz-id".into(), "fuzz-model".into(), data.len(), thinking);
    let mut fold = Fold::default();
    let mut events = Vec::new();
    for message in &messages {
        let Ok(event) = event_of(message) else { break };
        let step = builder.push(event);
        fold.absorb(step.clone());
        events.extend(step);
    }
    let last = builder.finish();
    fold.absorb(last.clone());
    events.extend(last);
    assert_block_order("Kiro response builder", &events);
    match fold.finish() {
        Ok(response) => {
            for target in DIALECTS {
                assert_json_round_trip(&format!("Kiro response as {target:?}"), &target.response_from_ir(&response));
            }
        }
        Err(error) => check_error("Kiro stream error", &error),
    }
    encode_everywhere(&events);
}

type Read = (Vec<Message>, Result<(), FrameError>);

fn read_all<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Read {
    let mut reader = FrameReader::new();
    let mut messages = Vec::new();
    for chunk in chunks {
        match reader.feed(chunk) {
            Ok(frames) => messages.extend(frames),
            Err(error) => return (messages, Err(error)),
        }
    }
    let end = reader.finish();
    (messages, end)
}

/// What must not depend on the split: the frames of a stream that reads to its end, or the
/// kind of failure of one that does not. (A failing chunk drops the frames it completed
/// before the bad one, so the frames before a failure depend on where the chunk began.)
fn outcome(read: &Read) -> Result<&[Message], std::mem::Discriminant<FrameError>> {
    match read {
        (messages, Ok(())) => Ok(messages),
        (_, Err(error)) => Err(std::mem::discriminant(error)),
    }
}
