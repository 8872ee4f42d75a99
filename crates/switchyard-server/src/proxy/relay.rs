//! A 2xx answer, relayed the way the client expects it: passed through or translated, whole or
//! streamed event by event, and always through the attempt's [`Scrubber`]. On the way the token
//! usage is picked up (from the neutral form when translated; by [`StreamWatch`] or one look at
//! the whole body when passed through). A stream's request log line travels with its body and
//! is written when the body ends or the client goes away.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use switchyard_dialects::ir::{ErrorInfo, StreamDecoder, StreamEncoder, StreamEvent, Usage};
use switchyard_dialects::sse::SseParser;
use switchyard_dialects::{Dialect, usage};
use switchyard_usage::metrics::ActiveStream;

use super::attempt::{Answer, AnswerBody, AnswerStream, upstream_broke};
use super::pipeline::ClientCall;
use super::request_log::RequestLog;
use super::scrub::{Scrubber, StreamScrubber};
use super::stream_watch::{Seen, StreamWatch};

/// What a relayed stream produces before framing: bytes for the client, what they said about
/// tokens and failures, or the error that ends the stream.
enum Out {
    Bytes(Bytes),
    /// The upstream's latest usage.
    Usage(Usage),
    /// Answer text (or, passed through, bytes) relayed: the estimate's measure without usage.
    Text(usize),
    /// The upstream's own error event, relayed as is (passed through).
    UpstreamError {
        message: String,
        body: String,
    },
    Error(ErrorInfo),
}

pub(super) async fn respond(call: &ClientCall, native: Dialect, answer: Answer, mut log: RequestLog) -> Response {
    let Answer { body, scrubber } = answer;
    log.tokens.answered = log.generate;
    let stream = match body {
        AnswerBody::Whole(bytes) => {
            // Secrets go before translation, so the translated answer never holds them either.
            let bytes = scrubber.credentials_bytes(bytes);
            let response = if native == call.dialect {
                log.tokens.reported = usage::from_body(native, &bytes);
                if log.tokens.reported.is_none() && log.generate {
                    // An answer without usage (rare): its text, for the estimate.
                    let neutral = native.response_to_ir(&bytes);
                    log.tokens.answer_chars = neutral.map_or(bytes.len(), |r| usage::response_chars(&r));
                }
                ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
            } else {
                match native.response_to_ir(&bytes) {
                    Ok(neutral) => {
                        log.tokens.reported = Some(neutral.usage).filter(|u| *u != Usage::default());
                        log.tokens.answer_chars = usage::response_chars(&neutral);
                        axum::Json(call.dialect.response_from_ir(&neutral)).into_response()
                    }
                    Err(error) => {
                        log.tokens.answered = false;
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
    let out = if native == client {
        pass_through(stream, scrubber, native)
    } else {
        translate(native, client, stream, scrubber)
    };
    let mut response = Response::new(Body::from_stream(Relayed::new(client, out, log)));
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

/// Same dialect: bytes go out as complete events arrive, scrubbed at event boundaries; the
/// [`StreamWatch`] looks at them for usage and error events.
fn pass_through(
    stream: AnswerStream,
    scrubber: Scrubber,
    dialect: Dialect,
) -> futures::stream::BoxStream<'static, Out> {
    struct State {
        body: AnswerStream,
        scrub: StreamScrubber,
        scrubber: Scrubber,
        watch: StreamWatch,
        done: bool,
    }
    /// What the watch saw in the bytes, then the bytes (so the log knows before the client).
    fn relayed(dialect: Dialect, bytes: Bytes, seen: Seen, out: &mut Vec<Out>) {
        out.push(Out::Text(bytes.len()));
        if let Some(usage) = seen.usage {
            out.push(Out::Usage(usage));
        }
        if let Some(body) = seen.error {
            let message = dialect.error_to_ir(0, body.as_bytes()).message;
            out.push(Out::UpstreamError { message, body });
        }
        out.push(Out::Bytes(bytes));
    }
    let state = State {
        body: stream,
        scrub: StreamScrubber::new(scrubber.clone()),
        scrubber,
        watch: StreamWatch::new(dialect),
        done: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            let mut out = Vec::new();
            match state.body.next().await {
                Some(Ok(chunk)) => {
                    let ready = state.scrub.feed(chunk);
                    if ready.is_empty() {
                        continue;
                    }
                    let seen = state.watch.feed(&ready);
                    relayed(dialect, ready, seen, &mut out);
                }
                Some(Err(error)) => {
                    // What was held back goes first, then the error frame ends the stream.
                    state.done = true;
                    let rest = state.scrub.finish();
                    let mut seen = state.watch.feed(&rest);
                    seen.usage = seen.usage.or(state.watch.finish().usage);
                    relayed(dialect, rest, seen, &mut out);
                    out.push(Out::Error(state.scrubber.error_info(&error)));
                }
                None => {
                    state.done = true;
                    let rest = state.scrub.finish();
                    let mut seen = state.watch.feed(&rest);
                    let last = state.watch.finish();
                    seen.usage = last.usage.or(seen.usage);
                    seen.error = seen.error.or(last.error);
                    relayed(dialect, rest, seen, &mut out);
                }
            }
            return Some((out, state));
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
            // Usage and answer size first (the log knows before the client), then the frames,
            // then the error that ends the stream.
            let mut out = Vec::new();
            let mut text = String::new();
            let mut answer_chars = 0;
            let mut failed = None;
            for event in &events {
                match event {
                    StreamEvent::Error(error) => {
                        state.done = true;
                        failed = Some(Out::Error(state.scrubber.error_info(error)));
                        break;
                    }
                    StreamEvent::Usage(usage) => out.push(Out::Usage(*usage)),
                    StreamEvent::TextDelta { text, .. } | StreamEvent::ThinkingDelta { text, .. } => {
                        answer_chars += text.len();
                    }
                    StreamEvent::ToolCallStart { name, .. } => answer_chars += name.len(),
                    StreamEvent::ToolCallDelta { arguments, .. } => answer_chars += arguments.len(),
                    _ => {}
                }
                text.extend(state.encoder.encode(event));
            }
            if answer_chars > 0 {
                out.push(Out::Text(answer_chars));
            }
            if !text.is_empty() {
                out.push(Out::Bytes(Bytes::from(text)));
            }
            out.extend(failed);
            if !out.is_empty() {
                return Some((out, state));
            }
        }
    })
    .flat_map(futures::stream::iter)
    .boxed()
}

/// The client's byte stream: errors become the dialect's error frame, and the request log
/// counts what went out, takes the tokens and failures the relay saw, and is written when the
/// stream ends or is dropped (a drop before the end: the client went away). While it lives the
/// stream counts as active in the metrics.
struct Relayed {
    client: Dialect,
    out: futures::stream::BoxStream<'static, Out>,
    log: RequestLog,
    _active: Option<ActiveStream>,
    ended: bool,
}

impl Relayed {
    fn new(client: Dialect, out: futures::stream::BoxStream<'static, Out>, mut log: RequestLog) -> Self {
        log.status = 200;
        let active = log.sink.as_ref().map(|sink| sink.stream_started());
        Self { client, out, log, _active: active, ended: false }
    }
}

impl Stream for Relayed {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let Some(item) = futures::ready!(this.out.poll_next_unpin(cx)) else {
                this.ended = true;
                return Poll::Ready(None);
            };
            let bytes = match item {
                Out::Bytes(bytes) if bytes.is_empty() => continue,
                Out::Bytes(bytes) => bytes,
                Out::Usage(usage) => {
                    // A later all-zero report (some decoders start with one) keeps what came before.
                    if usage != Usage::default() {
                        this.log.tokens.reported = Some(usage);
                    }
                    continue;
                }
                Out::Text(chars) => {
                    this.log.tokens.answer_chars += chars;
                    continue;
                }
                Out::UpstreamError { message, body } => {
                    this.log.error = Some(message);
                    this.log.upstream_error = Some(body);
                    continue;
                }
                Out::Error(error) => {
                    this.log.error = Some(error.message.clone());
                    Bytes::from(this.client.stream_error_frame(&error))
                }
            };
            this.log.relayed(&bytes);
            return Poll::Ready(Some(Ok(bytes)));
        }
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        if !self.ended {
            self.log.client_gone();
        }
    }
}
