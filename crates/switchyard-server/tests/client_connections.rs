//! Client connections against the real server on loopback: header, body and idle timeouts, the
//! per-IP cap, h2c and graceful shutdown. Raw `TcpStream`s play the slow or greedy clients.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{Options, TestServer, start_with};
use switchyard_config::ConfigHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: every limit in these tests is 1 s.
const CLOSE_BOUND: Duration = Duration::from_secs(10);
const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

async fn with_yaml(extra_yaml: &str) -> TestServer {
    start_with(Options { extra_yaml, ..Default::default() }).await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap()
}

/// Whether the server closed `stream` (EOF or reset) within `bound`; bytes it sent are skipped.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Sends `request` and reads one response (headers and a `Content-Length` body); `None` when
/// the server closed the connection without answering.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Option<String> {
    if stream.write_all(request).await.is_err() {
        return None;
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    return Some(text);
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.expect("the server neither answered nor closed")
}

async fn healthy(stream: &mut TcpStream) -> bool {
    exchange(stream, HEALTH_REQUEST).await.is_some_and(|r| r.starts_with("HTTP/1.1 200") && r.contains("\"ok\""))
}

#[tokio::test]
async fn slowloris_connections_are_closed_after_the_header_timeout_while_normal_clients_are_served() {
    let server = with_yaml("timeouts:\n  client-header: 1\n  client-idle: 30\n").await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for i in 0..50 {
        let mut stream = connect(&server).await;
        // Every fifth one never sends a byte; the others start a request and never finish it.
        if i % 5 != 0 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n").await.unwrap();
        }
        slow.push(stream);
    }

    let slow_clients = async {
        // Trickling more header lines does not buy more time.
        tokio::time::sleep(Duration::from_millis(400)).await;
        for stream in slow.iter_mut() {
            let _ = stream.write_all(b"X-Trickle: 1\r\n").await;
        }
        let mut closed = 0;
        for stream in slow.iter_mut() {
            if closed_within(stream, CLOSE_BOUND).await {
                closed += 1;
            }
        }
        (closed, started.elapsed())
    };
    let normal_client = async {
        let mut served = 0;
        while started.elapsed() < Duration::from_millis(2500) {
            let response = server.client.get(server.url("/healthz")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            served += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        served
    };
    let ((closed, elapsed), served) = tokio::join!(slow_clients, normal_client);
    assert_eq!(closed, 50, "every slow connection is closed by the server");
    assert!(elapsed >= Duration::from_millis(900), "not before the 1 s header limit: {elapsed:?}");
    assert!(served >= 10, "the normal client was served throughout ({served} requests)");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_client_idle() {
    let server = with_yaml("timeouts:\n  client-header: 30\n  client-idle: 1\n").await;
    let mut stream = connect(&server).await;
    assert!(healthy(&mut stream).await);
    let idle_from = Instant::now();
    assert!(closed_within(&mut stream, CLOSE_BOUND).await, "idle connection still open");
    assert!(idle_from.elapsed() >= Duration::from_millis(900), "closed before the idle limit");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout() {
    // hyper's own header timer would also run while the connection waits for its next request.
    let server = with_yaml("timeouts:\n  client-header: 1\n  client-idle: 30\n").await;
    let mut stream = connect(&server).await;
    assert!(healthy(&mut stream).await);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(healthy(&mut stream).await, "the keep-alive connection was closed while idle");
}

#[tokio::test]
async fn a_stalled_request_body_is_answered_408() {
    let server = with_yaml("timeouts:\n  client-body: 1\n").await;
    let mut stream = connect(&server).await;
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                Content-Length: 200\r\n\r\n{\"model\": \"gpt-4o\",";
    let response = exchange(&mut stream, head.as_bytes()).await.expect("an answer, not a dropped connection");
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("timeouts.client-body"), "the answer names the limit: {response}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "{response}");
    assert!(closed_within(&mut stream, CLOSE_BOUND).await);

    // A complete body is read and handled normally (no account serves it, but it is no 408).
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = connect(&server).await;
    let response = exchange(&mut stream, request.as_bytes()).await.unwrap();
    assert!(!response.starts_with("HTTP/1.1 408"), "{response}");
}

#[tokio::test]
async fn the_per_ip_cap_refuses_the_extra_connection_until_one_closes() {
    let server = with_yaml("max-connections-per-ip: 5\n").await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = connect(&server).await;
        assert!(healthy(&mut stream).await);
        held.push(stream);
    }
    let mut sixth = connect(&server).await;
    assert_eq!(exchange(&mut sixth, HEALTH_REQUEST).await, None, "the sixth connection is served");
    // The five keep working.
    assert!(healthy(&mut held[0]).await);

    drop(held.pop());
    let deadline = Instant::now() + CLOSE_BOUND;
    loop {
        let mut again = connect(&server).await;
        if healthy(&mut again).await {
            break;
        }
        assert!(Instant::now() < deadline, "a closed connection never gave its place back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let server = with_yaml("").await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_and_closes_idle_ones() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            "finished"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(switchyard_server::serve(listener, app, Arc::new(ConfigHandle::embedded()), async move {
            let _ = stopped.await;
        }));

    let mut idle = TcpStream::connect(address).await.unwrap();
    let health = b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n";
    assert!(exchange(&mut idle, health).await.unwrap().contains("finished"));

    let in_flight = tokio::spawn(reqwest::get(format!("http://{address}/slow")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();

    let response = in_flight.await.unwrap().expect("the in-flight request was cut");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    assert!(closed_within(&mut idle, CLOSE_BOUND).await, "the idle connection was kept open");
    tokio::time::timeout(CLOSE_BOUND, server).await.expect("serve did not return").unwrap().unwrap();
    assert!(TcpStream::connect(address).await.is_err(), "still accepting after shutdown");
}
