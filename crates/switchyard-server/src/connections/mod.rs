//! The accept loop: one hyper connection (HTTP/1.1 or h2c) per client, with the client-side
//! limits from the live config (header, body and idle timeouts, the per-IP cap) and graceful
//! shutdown.

mod activity;
mod body_deadline;
mod per_ip;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, Version};
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use switchyard_config::ConfigHandle;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use activity::{Activity, Expired, InFlight, Limits, WatchedStream};
pub(crate) use body_deadline::answer_body_timeouts;
use per_ip::{ConnectionSlot, PerIpLimiter};

use crate::browser_policy::BoundAddr;

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
/// Limits are read from `config` as each connection is accepted, so a reload applies to new
/// connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: Arc<ConfigHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limiter = Arc::new(PerIpLimiter::default());
    // The host guard compares `Host` with it (`0.0.0.0` and `::` mean every interface).
    let bound = listener.local_addr().ok().map(BoundAddr);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` resolves when the last one ends.
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                accept_failed(error).await;
                continue;
            }
        };
        let config = config.get();
        // Refused: the socket is dropped (closed) at once, before any byte is read.
        let Some(slot) = limiter.try_acquire(peer.ip(), config.max_connections_per_ip) else { continue };
        let limits = Limits::from_config(&config.timeouts);
        let connection = Connection { peer, bound, limits, _slot: slot, _open: open_rx.clone() };
        tokio::spawn(connection.run(stream, app.clone(), stop_rx.clone()));
    }
    drop(listener);
    stop_tx.send_replace(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// Errors of one connection attempt (aborted, reset) are the peer's business; anything else
/// (EMFILE, ENOBUFS) would spin the loop, so it pauses a moment, as axum's server does.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::*;
    if matches!(error.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused) {
        return;
    }
    tracing::error!(%error, "cannot accept client connections; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

struct Connection {
    peer: SocketAddr,
    bound: Option<BoundAddr>,
    limits: Limits,
    _slot: ConnectionSlot,
    _open: watch::Receiver<()>,
}

impl Connection {
    async fn run(self, stream: TcpStream, app: Router, mut stop: watch::Receiver<bool>) {
        // Nagle's algorithm would hold back small SSE writes until the client's delayed ACK
        // (~40 ms per event); stream frames must leave as soon as they are produced.
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = TokioIo::new(WatchedStream::new(stream, activity.clone()));
        let service = RequestService {
            app,
            peer: self.peer,
            bound: self.bound,
            activity: activity.clone(),
            body_limit: self.limits.body,
        };
        let mut builder = Builder::new(TokioExecutor::new());
        // Our own header timeout (see `activity`) replaces hyper's, which would also end idle
        // keep-alive connections.
        builder.http1().header_read_timeout(None);
        let mut connection = pin!(builder.serve_connection_with_upgrades(io, service));
        let mut closing = false;
        loop {
            let deadline = activity.deadline(&self.limits);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(peer = %self.peer, %error, "client connection ended with an error");
                    }
                    return;
                }
                Ok(_) = stop.wait_for(|stop| *stop), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = activity.changed() => {}
                () = sleep_until(deadline) => {
                    // The state may have changed since the deadline was taken.
                    let Some((at, expired)) = activity.deadline(&self.limits) else { continue };
                    if at > tokio::time::Instant::now() {
                        continue;
                    }
                    match expired {
                        Expired::Idle if !closing => {
                            tracing::debug!(peer = %self.peer, "closing an idle client connection (timeouts.client-idle)");
                            connection.as_mut().graceful_shutdown();
                            closing = true;
                        }
                        // Headers never came, or the connection stayed idle after being asked
                        // to close: drop it (closes the socket).
                        _ => {
                            tracing::debug!(peer = %self.peer, ?expired, "closing a client connection that sent no complete request in time");
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<(tokio::time::Instant, Expired)>) {
    match deadline {
        Some((at, _)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Hands each request to the router with the peer address (`ConnectInfo`), the bound address and the body
/// deadline, and keeps the connection busy until the response body is done.
#[derive(Clone)]
struct RequestService {
    app: Router,
    peer: SocketAddr,
    bound: Option<BoundAddr>,
    activity: Arc<Activity>,
    body_limit: Option<Duration>,
}

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started(request.version() == Version::HTTP_2);
        let mut request = body_deadline::with_deadline(request, self.body_limit);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(bound) = self.bound {
            request.extensions_mut().insert(bound);
        }
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(request).await.unwrap_or_else(|never| match never {});
            Ok(response.map(|body| Body::new(BusyBody { inner: body, _in_flight: in_flight })))
        })
    }
}

/// A response body that keeps its connection counted as busy until hyper is done with it.
struct BusyBody {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
