//! `sse_parser`: the incremental SSE parser.

use switchyard_dialects::sse::{SseParser, frame};

use crate::support::{chunks, parse_sse};

/// The events of the whole input equal those of the same input fed in chunks (split points
/// derived from the data) and fed one byte at a time; every event re-framed with
/// [`frame`] parses back to itself when its fields can be framed (no line breaks in the name,
/// no `\r` in the data).
pub fn sse_parser(data: &[u8]) {
    let whole = parse_sse([data]);
    let split = parse_sse(chunks(data));
    assert_eq!(split, whole, "chunked input parses differently");
    let bytewise = parse_sse(data.chunks(1));
    assert_eq!(bytewise, whole, "byte-by-byte input parses differently");

    for event in &whole {
        let name = event.event.as_deref();
        if name.is_some_and(|n| n.contains(['\n', '\r'])) || event.data.contains('\r') {
            continue;
        }
        let wire = frame(name, &event.data);
        let mut parser = SseParser::new();
        let again = parser.feed(wire.as_bytes());
        assert_eq!(parser.finish(), None, "a framed event leaves a partial event: {wire:?}");
        assert_eq!(again.as_slice(), std::slice::from_ref(event), "a framed event parses differently: {wire:?}");
    }
}
