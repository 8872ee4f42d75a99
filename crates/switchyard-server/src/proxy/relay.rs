//! A 2xx answer, relayed the way the client expects it: passed through or translated, whole or
//! streamed event by event, and always through the attempt's [`Scrubber`]. A stream's request
//! log line travels with its body and is written when the body ends.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use switchyard_dialects::Dialect;
use switchyard_dialects::ir::{ErrorInfo, StreamDecoder, StreamEncoder, StreamEvent};
use switchyard_dialects::sse::SseParser;

use super::attempt::{Answer, AnswerBody, AnswerStream, upstream_broke};
use super::pipeline::ClientCall;
use super::request_log::RequestLog;
use super::scrub::{Scrubber, StreamScrubber};

/// What a relayed stream produces before framing: bytes for the client, or the error that ends it.
enum Out {
    Bytes(Bytes),
    Error(ErrorInfo),
}

pub(super) async fn respond(call: &ClientCall, native: Dialect, answer: Answer, mut log: RequestLog) -> Response {
    let Answer { body, scrubber } = answer;
    let stream = match body {
        AnswerBody::Whole(bytes) => {
            // Secrets go before translation, so the translated answer never holds them either.
            let bytes = scrubber.credentials_bytes(bytes);
            let response = if native == call.dialect {
                ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
            } else {
                match native.response_to_ir(&bytes) {
                    Ok(neutral) => axum::Json(call.dialect.response_from_ir(&neutral)).into_response(),
                    Err(error) => {
                        let info = ErrorInfo { status: 502, kind: "server_error".into(), message: error.to_string() };
                        let info = scrubber.error_info(&info);
                        log.error = Some(info.message.clone());
                        call.error_info(&info)
                    }
                }
            };
            return finish_whole(response, log).await;
        }
        AnswerBody::Stream(stream) => stream,
    };
    let client = call.dialect;
    let out =
        if native == client { pass_through(stream, scrubber) } else { translate(native, client, stream, scrubber) };
    let mut response = Response::new(Body::from_stream(framed(client, out, log)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A whole answer's log line: status and size are known now. When a request log will be
/// written, the (in-memory) body is read back so the log holds what the client got.
pub(super) async fn finish_whole(response: Response, mut log: RequestLog) -> Response {
    log.status = response.status().as_u16();
    if log.sink.as_ref().is_some_and(|sink| sink.wants_response()) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        log.relayed(&bytes);
        return Response::from_parts(parts, Body::from(bytes));
    }
    let size = axum::body::HttpBody::size_hint(response.body()).exact().unwrap_or(0);
    log.sent(size as usize);
    response
}

/// Same dialect: bytes go out as complete events arrive, scrubbed at event boundaries.
fn pass_through(stream: AnswerStream, scrubber: Scrubber) -> futures::stream::BoxStream<'static, Out> {
    struct State {
        body: AnswerStream,
        scrub: StreamScrubber,
        scrubber: Scrubber,
        done: bool,
    }
    let state = State { body: stream, scrub: StreamScrubber::new(scrubber.clone()), scrubber, done: false };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            match state.body.next().await {
                Some(Ok(chunk)) => {
                    let ready = state.scrub.feed(&chunk);
                    if !ready.is_empty() {
                        return Some((vec![Out::Bytes(ready)], state));
                    }
                }
                Some(Err(error)) => {
                    // What was held back goes first, then the error frame ends the stream.
                    state.done = true;
                    let rest = state.scrub.finish();
                    let error = Out::Error(state.scrubber.error_info(&error));
                    return Some((vec![Out::Bytes(rest), error], state));
                }
                None => {
                    state.done = true;
                    return Some((vec![Out::Bytes(state.scrub.finish())], state));
                }
            }
        }
    })
    .flat_map(futures::stream::iter)
    .boxed()
}

/// Upstream SSE in `native` → neutral events → SSE in `client`, one chunk at a time. Each
/// complete event is scrubbed before it is decoded.
fn translate(
    native: Dialect,
    client: Dialect,
    body: AnswerStream,
    scrubber: Scrubber,
) -> futures::stream::BoxStream<'static, Out> {
    struct State {
        body: AnswerStream,
        parser: SseParser,
        decoder: Box<dyn StreamDecoder>,
        encoder: Box<dyn StreamEncoder>,
        scrubber: Scrubber,
        done: bool,
    }
    let state = State {
        body,
        parser: SseParser::new(),
        decoder: native.decoder(),
        encoder: client.encoder(),
        scrubber,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            let mut events = Vec::new();
            match state.body.next().await {
                Some(Ok(chunk)) => {
                    for sse in state.parser.feed(&chunk) {
                        let data = state.scrubber.credentials_text(&sse.data);
                        match state.decoder.decode(sse.event.as_deref(), &data) {
                            Ok(decoded) => events.extend(decoded),
                            Err(error) => {
                                events.push(StreamEvent::Error(upstream_broke(&error.to_string())));
                                break;
                            }
                        }
                    }
                }
                Some(Err(error)) => events.push(StreamEvent::Error(error)),
                None => {
                    state.done = true;
                    if let Some(sse) = state.parser.finish() {
                        let data = state.scrubber.credentials_text(&sse.data);
                        if let Ok(decoded) = state.decoder.decode(sse.event.as_deref(), &data) {
                            events.extend(decoded);
                        }
                    }
                    events.extend(state.decoder.finish());
                }
            }
            let mut out = Vec::new();
            let mut text = String::new();
            for event in &events {
                match event {
                    StreamEvent::Error(error) => {
                        state.done = true;
                        out.push(Out::Error(state.scrubber.error_info(error)));
                        break;
                    }
                    other => text.extend(state.encoder.encode(other)),
                }
            }
            if !text.is_empty() {
                out.insert(0, Out::Bytes(Bytes::from(text)));
            }
            if !out.is_empty() {
                return Some((out, state));
            }
        }
    })
    .flat_map(futures::stream::iter)
    .boxed()
}

/// The client's byte stream: errors become the dialect's error frame, and the log line counts
/// what went out and is written when the stream ends or is dropped.
fn framed(
    client: Dialect,
    out: futures::stream::BoxStream<'static, Out>,
    mut log: RequestLog,
) -> futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
    log.status = 200;
    out.filter_map(move |item| {
        let bytes = match item {
            Out::Bytes(bytes) if bytes.is_empty() => None,
            Out::Bytes(bytes) => Some(bytes),
            Out::Error(error) => {
                log.error = Some(error.message.clone());
                Some(Bytes::from(client.stream_error_frame(&error)))
            }
        };
        if let Some(bytes) = &bytes {
            log.relayed(bytes);
        }
        futures::future::ready(bytes.map(Ok))
    })
    .boxed()
}
