//! Server-sent events: an incremental parser that accepts bytes as they arrive (split anywhere,
//! `\n`, `\r\n` or `\r` line ends) and the framing of outgoing events.

/// One parsed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser. Feed it chunks; it returns the events completed so far.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an incomplete line (may end inside a UTF-8 sequence).
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(&mut events),
                b'\r' => {
                    self.end_line(&mut events);
                    self.after_cr = true;
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    /// End of input: a final event without its blank line still counts.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events);
        }
        self.end_line(&mut events);
        events.pop()
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(SseEvent { event: self.event.take(), data });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return; // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {} // id, retry: not used by these APIs
        }
    }
}

/// One outgoing event as wire text.
pub fn frame(event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events: Vec<SseEvent> = chunks.iter().flat_map(|c| parser.feed(c)).collect();
        events.extend(parser.finish());
        events
    }

    #[test]
    fn events_split_anywhere_parse_the_same() {
        let wire = b"event: message_start\ndata: {\"a\":1}\n\n: ping\n\ndata: x\ndata: y\n\n";
        let whole = parse_all(&[wire]);
        assert_eq!(
            whole,
            vec![
                SseEvent { event: Some("message_start".into()), data: "{\"a\":1}".into() },
                SseEvent { event: None, data: "x\ny".into() },
            ]
        );
        for cut in 0..wire.len() {
            assert_eq!(parse_all(&[&wire[..cut], &wire[cut..]]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn crlf_cr_and_missing_final_blank_line() {
        let crlf = parse_all(&[b"data: a\r\n\r\ndata: b\r\n\r\n"]);
        assert_eq!(crlf.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let split_crlf = parse_all(&[b"data: a\r", b"\n\r", b"\ndata: b"]);
        assert_eq!(split_crlf.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let cr = parse_all(&[b"data: a\r\rdata: b\r\r"]);
        assert_eq!(cr.len(), 2);
    }

    #[test]
    fn utf8_split_across_chunks() {
        let wire = "data: ÷×✓\n\n".as_bytes();
        let events = parse_all(&[&wire[..7], &wire[7..]]);
        assert_eq!(events[0].data, "÷×✓");
    }

    #[test]
    fn frames_round_trip() {
        let text = frame(Some("content_block_delta"), "{\"x\":1}") + &frame(None, "a\nb");
        assert_eq!(text, "event: content_block_delta\ndata: {\"x\":1}\n\ndata: a\ndata: b\n\n");
        let events = parse_all(&[text.as_bytes()]);
        assert_eq!(events[1].data, "a\nb");
    }
}
