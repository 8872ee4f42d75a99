//! `timeouts.client-body`: a request body must be complete within the limit, counted from the
//! moment its headers arrived. The body fails with [`BodyTimedOut`] when the time is up, and
//! [`answer_body_timeouts`] turns whatever the handler made of that failure into a 408.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::ApiError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Set on a request whose body has a deadline; tells the middleware whether it ran out.
#[derive(Clone)]
pub struct BodyDeadline {
    limit: Duration,
    expired: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("request body not complete within {0:?}")]
pub struct BodyTimedOut(Duration);

/// A request body that fails once its deadline passes.
pub struct DeadlineBody<B> {
    inner: B,
    /// `None` once the body ended (the deadline no longer matters) or expired.
    sleep: Option<Pin<Box<Sleep>>>,
    deadline: BodyDeadline,
}

impl<B: HttpBody> DeadlineBody<B> {
    /// Wraps `inner`; the returned [`BodyDeadline`] goes into the request's extensions.
    pub fn new(inner: B, limit: Duration) -> (Self, BodyDeadline) {
        let deadline = BodyDeadline { limit, expired: Arc::new(AtomicBool::new(false)) };
        // A request without a body (most GETs) needs no timer.
        let sleep = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(limit)));
        (Self { inner, sleep, deadline: deadline.clone() }, deadline)
    }
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.deadline.expired.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(BodyTimedOut(this.deadline.limit).into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() {
                this.sleep = None;
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some(sleep) = this.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.sleep = None;
            this.deadline.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut(this.deadline.limit).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: when the request's body ran out of time, the answer is a 408 whatever the
/// handler made of the failed read (a 400 "cannot read body", a 502, ...). HTTP/1 connections
/// are closed after it, since the rest of the body may still be on its way.
pub async fn answer_body_timeouts(request: Request, next: Next) -> Response {
    let deadline = request.extensions().get::<BodyDeadline>().cloned();
    let version = request.version();
    let response = next.run(request).await;
    match deadline {
        Some(deadline) if deadline.expired.load(Ordering::Relaxed) => {
            let seconds = deadline.limit.as_secs();
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {seconds}s (timeouts.client-body)"),
            )
            .into_response();
            if version < Version::HTTP_2 {
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
        _ => response,
    }
}

/// Wraps a request's body with the deadline when there is one.
pub fn with_deadline<B>(request: hyper::Request<B>, limit: Option<Duration>) -> Request
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(limit) = limit else { return request.map(Body::new) };
    let (mut parts, body) = request.into_parts();
    let (body, deadline) = DeadlineBody::new(body, limit);
    parts.extensions.insert(deadline);
    Request::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn a_stalled_body_fails_after_the_limit() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stalled = StreamBody::new(tokio_stream_from(rx));
        let (body, deadline) = DeadlineBody::new(stalled, Duration::from_millis(100));
        tx.send(Ok(Frame::data(Bytes::from_static(b"part")))).await.unwrap();
        let mut body = body;
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "part");
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("not complete"), "{error}");
        assert!(deadline.expired.load(Ordering::Relaxed));
        drop(tx);
    }

    #[tokio::test]
    async fn a_complete_body_is_untouched() {
        let (body, deadline) = DeadlineBody::new(Body::from("whole"), Duration::from_millis(50));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "whole");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!deadline.expired.load(Ordering::Relaxed));
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Unpin {
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
