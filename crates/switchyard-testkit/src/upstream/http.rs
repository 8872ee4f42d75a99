//! A minimal HTTP/1.1 server side: one request per connection, answered with `Connection: close`.
//! Hand-written rather than axum so a test controls the wire exactly: hold the headers back, pace
//! a stream event by event, and cut the connection mid-body without the final chunk (which a
//! client must report as an error, not as the end of the stream).

use std::io;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::RecordedRequest;

const MAX_HEAD: usize = 1024 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What the mock sends back.
pub(super) enum Reply {
    /// A complete body with `Content-Length`.
    Full { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// A chunked body, one chunk per event, paced by [`Pacing`].
    Stream { status: u16, headers: Vec<(String, String)>, events: Vec<Vec<u8>> },
    /// Close the connection without answering.
    Hangup,
}

/// Timing knobs applied while writing a reply.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Pacing {
    pub header_delay: Duration,
    pub event_delay: Duration,
    /// Cut the connection after this many stream events.
    pub drop_after: Option<usize>,
}

/// Reads one request; `None` when the client closed before sending one.
pub(super) async fn read_request(socket: &mut TcpStream) -> io::Result<Option<RecordedRequest>> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(invalid("closed inside the request head")) };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method =
        Method::from_bytes(request_line.next().unwrap_or_default().as_bytes()).map_err(|_| invalid("bad method"))?;
    let target = request_line.next().ok_or_else(|| invalid("no request target"))?.to_owned();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("bad header line"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid("bad header name"))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| invalid("bad header value"))?;
        headers.append(name, value);
    }
    if headers.contains_key("transfer-encoding") {
        // Executors send complete bodies; a chunked request would be a bug worth seeing.
        return Err(invalid("chunked request bodies are not supported by the mock"));
    }
    let length = match headers.get("content-length") {
        Some(v) => v.to_str().ok().and_then(|v| v.parse::<usize>().ok()).ok_or_else(|| invalid("bad length"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(invalid("request body too large"));
    }
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("closed inside the request body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target, None),
    };
    Ok(Some(RecordedRequest {
        method,
        path,
        query,
        headers,
        body: Bytes::from(body),
        received: std::time::Instant::now(),
    }))
}

/// Writes `reply`. A dropped stream ends without the terminating chunk, then the socket closes.
pub(super) async fn write_reply(socket: &mut TcpStream, reply: Reply, pacing: Pacing) -> io::Result<()> {
    tokio::time::sleep(pacing.header_delay).await;
    match reply {
        Reply::Hangup => socket.shutdown().await,
        Reply::Full { status, headers, body } => {
            let mut out = head(status, &headers, &[("content-length", &body.len().to_string())]);
            out.extend_from_slice(&body);
            socket.write_all(&out).await?;
            socket.shutdown().await
        }
        Reply::Stream { status, headers, events } => {
            socket.write_all(&head(status, &headers, &[("transfer-encoding", "chunked")])).await?;
            for (sent, event) in events.iter().enumerate() {
                if pacing.drop_after == Some(sent) {
                    return socket.shutdown().await;
                }
                if sent > 0 {
                    tokio::time::sleep(pacing.event_delay).await;
                }
                let mut chunk = format!("{:x}\r\n", event.len()).into_bytes();
                chunk.extend_from_slice(event);
                chunk.extend_from_slice(b"\r\n");
                socket.write_all(&chunk).await?;
            }
            socket.write_all(b"0\r\n\r\n").await?;
            socket.shutdown().await
        }
    }
}

fn head(status: u16, headers: &[(String, String)], framing: &[(&str, &str)]) -> Vec<u8> {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    let all = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).chain(framing.iter().copied());
    for (name, value) in all.chain([("connection", "close")]) {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}
