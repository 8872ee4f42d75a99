//! The floor: the least a proxy can do on the same HTTP stack as Switchyard — read the request,
//! send it upstream with the same `reqwest` client settings (one pool, no proxy, `TCP_NODELAY`),
//! and stream the answer back through axum/hyper as its bytes arrive. No keys, routing, records,
//! translation or logging. It runs as a child process (`switchyard-bench floor-proxy ...`) on the
//! same pinned core and runtime shape as the gateway, so its `/proc` CPU and RSS compare 1:1.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;

/// The first argument that makes the bench binary run the floor proxy instead.
pub const SUBCOMMAND: &str = "floor-proxy";

struct Floor {
    client: reqwest::Client,
    /// Upstream origin, e.g. `https://127.0.0.1:41234`.
    upstream: String,
}

/// `floor-proxy <port> <upstream origin>`: serves until killed.
pub fn main(args: &[String]) -> anyhow::Result<()> {
    let [port, upstream] = args else { anyhow::bail!("usage: switchyard-bench {SUBCOMMAND} <port> <upstream>") };
    let port: u16 = port.parse().context("port")?;
    // The default multi-thread runtime, as `switchyard serve` uses (one worker per allowed core).
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let client = reqwest::Client::builder().no_proxy().tcp_nodelay(true).build()?;
        let state = Arc::new(Floor { client, upstream: upstream.trim_end_matches('/').to_owned() });
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

async fn forward(
    State(floor): State<Arc<Floor>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = floor.client.request(method, format!("{}{path}", floor.upstream)).body(body);
    for (name, value) in &headers {
        if name != header::HOST && name != header::CONTENT_LENGTH && name != header::CONNECTION {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            if let Some(kind) = answer.headers().get(header::CONTENT_TYPE) {
                response = response.header(header::CONTENT_TYPE, kind);
            }
            response.body(Body::from_stream(answer.bytes_stream())).unwrap_or_else(|_| bad_gateway())
        }
        Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response {
    (StatusCode::BAD_GATEWAY, "upstream failed").into_response()
}
