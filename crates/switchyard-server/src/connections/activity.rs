//! What one client connection is doing, for its header and idle deadlines.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for its next
//! request, so it would cap `client-idle` at `client-header`. We track the two stages ourselves:
//! a connection is *waiting* (no request in flight) or *busy*; a waiting connection that has
//! started sending the next request (bytes arrived) is held to the header limit, one that is
//! silent to the idle limit.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use switchyard_config::Timeouts;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The client-side limits of one connection, read from the config when it was accepted.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header: Option<Duration>,
    pub body: Option<Duration>,
    pub idle: Option<Duration>,
}

impl Limits {
    pub fn from_config(timeouts: &Timeouts) -> Self {
        Self {
            header: Timeouts::limit(timeouts.client_header),
            body: Timeouts::limit(timeouts.client_body),
            idle: Timeouts::limit(timeouts.client_idle),
        }
    }
}

/// Which limit ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// A request's headers did not arrive in time (or a fresh connection sent none).
    Header,
    /// A keep-alive connection sat without a request.
    Idle,
}

pub struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    in_flight: usize,
    /// When the connection was accepted or its last request finished.
    waiting_since: Instant,
    /// First bytes of the next request while waiting.
    next_request_started: Option<Instant>,
    requests: u64,
    /// HTTP/2 frames (pings, window updates, settings) arrive between requests, so bytes on
    /// an h2 connection do not mean a request is being sent.
    http2: bool,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                waiting_since: Instant::now(),
                next_request_started: None,
                requests: 0,
                http2: false,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("connection activity lock")
    }

    /// Resolves when the deadline may have moved.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn bytes_arrived(&self) {
        let mut state = self.lock();
        if state.in_flight == 0 && state.next_request_started.is_none() {
            state.next_request_started = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A request's headers are complete; the connection is busy until the guard drops (the
    /// response body was sent or abandoned).
    pub fn request_started(self: &Arc<Self>, http2: bool) -> InFlight {
        {
            let mut state = self.lock();
            state.in_flight += 1;
            state.requests += 1;
            state.http2 |= http2;
            state.next_request_started = None;
        }
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When this connection must close, and why; `None` while a request is in flight or when
    /// the stage has no limit.
    pub fn deadline(&self, limits: &Limits) -> Option<(Instant, Expired)> {
        let state = self.lock();
        if state.in_flight > 0 {
            return None;
        }
        let header = |from: Instant| limits.header.map(|limit| (from + limit, Expired::Header));
        let idle = || limits.idle.map(|limit| (state.waiting_since + limit, Expired::Idle));
        if state.requests == 0 {
            // A fresh connection owes us its first request's headers from the moment we accepted it.
            return header(state.waiting_since).or_else(idle);
        }
        match state.next_request_started {
            Some(started) if !state.http2 => header(started),
            _ => idle(),
        }
    }
}

/// One request in flight on a connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.0.lock();
            state.in_flight -= 1;
            if state.in_flight == 0 {
                state.waiting_since = Instant::now();
                state.next_request_started = None;
            }
        }
        self.0.changed.notify_one();
    }
}

/// The client's socket, telling [`Activity`] when bytes arrive.
pub struct WatchedStream {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl WatchedStream {
    pub fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self { stream, activity }
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits =
        Limits { header: Some(Duration::from_secs(10)), body: None, idle: Some(Duration::from_secs(90)) };

    /// The stage that applies now and roughly how long it has left.
    fn stage(activity: &Activity, limits: &Limits) -> Option<(u64, Expired)> {
        activity.deadline(limits).map(|(at, why)| ((at - Instant::now()).as_secs_f64().round() as u64, why))
    }

    #[tokio::test]
    async fn stages() {
        let activity = Activity::new();
        assert_eq!(stage(&activity, &LIMITS), Some((10, Expired::Header)), "a fresh connection owes headers");

        let request = activity.request_started(false);
        assert_eq!(activity.deadline(&LIMITS), None, "no deadline while a request is in flight");
        activity.bytes_arrived();
        assert_eq!(activity.deadline(&LIMITS), None, "body bytes do not start the header clock");
        drop(request);
        assert_eq!(stage(&activity, &LIMITS), Some((90, Expired::Idle)));

        activity.bytes_arrived();
        assert_eq!(stage(&activity, &LIMITS), Some((10, Expired::Header)), "the next request has begun");
        drop(activity.request_started(false));
        assert_eq!(stage(&activity, &LIMITS), Some((90, Expired::Idle)));
    }

    #[tokio::test]
    async fn http2_bytes_between_requests_keep_the_idle_limit() {
        let activity = Activity::new();
        drop(activity.request_started(true));
        activity.bytes_arrived();
        assert_eq!(stage(&activity, &LIMITS), Some((90, Expired::Idle)));
    }

    #[tokio::test]
    async fn limits_that_are_off() {
        let activity = Activity::new();
        let none = Limits { header: None, body: None, idle: None };
        assert_eq!(activity.deadline(&none), None);
        // Header limit off: a fresh, silent connection still goes when idle too long.
        let idle_only = Limits { header: None, ..LIMITS };
        assert_eq!(stage(&activity, &idle_only), Some((90, Expired::Idle)));
    }
}
