//! Real forward proxies on loopback, for tests of outbound proxy support: an HTTP proxy
//! (`CONNECT` tunnels and absolute-form plain-HTTP forwarding, optional Basic credentials) and a
//! SOCKS5 proxy (RFC 1928 `CONNECT` with IPv4, domain and IPv6 addresses; no auth or RFC 1929
//! username/password). Each records what it was asked to reach, and with which credentials.
//! Dropping one stops it and every connection it holds.

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How a client asked a proxy for its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// HTTP `CONNECT host:port` (a tunnel).
    Connect,
    /// A plain-HTTP request in absolute form (`GET http://host:port/path`), forwarded.
    Forward { method: String, uri: String },
    /// SOCKS5 `CONNECT` with this address type.
    Socks(SocksAddress),
    /// A SOCKS5 client whose RFC 1929 credentials were refused (no request followed).
    SocksAuthRefused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocksAddress {
    Ipv4,
    /// The client left name resolution to the proxy (`socks5h`).
    Domain,
    Ipv6,
}

/// One request a proxy saw (also refused ones: `accepted` says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `host:port` the client wanted to reach, as it named it.
    pub target: String,
    pub via: Via,
    /// `Proxy-Authorization: Basic` or the RFC 1929 username and password, decoded.
    pub credentials: Option<(String, String)>,
    /// Whether the proxy let it through (credentials right, or none required).
    pub accepted: bool,
}

type Seen = Arc<Mutex<Vec<ProxiedRequest>>>;

/// A running proxy. Dropping it stops it.
pub struct MockProxy {
    addr: SocketAddr,
    scheme: &'static str,
    seen: Seen,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for MockProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockProxy {
    /// An HTTP proxy; with `credentials`, requests without them get `407`.
    pub async fn http(credentials: Option<(&str, &str)>) -> Self {
        let required = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
        Self::start("http", move |stream, seen| serve_http(stream, seen, required.clone())).await
    }

    /// A SOCKS5 proxy; with `credentials` it only offers (and checks) RFC 1929 auth.
    pub async fn socks5(credentials: Option<(&str, &str)>) -> Self {
        let required = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
        Self::start("socks5", move |stream, seen| {
            let required = required.clone();
            async move {
                // A broken handshake just ends the connection, as a real proxy would.
                let _ = serve_socks(stream, seen, required).await;
            }
        })
        .await
    }

    /// A "proxy" that accepts connections and never says a word: a hung proxy or a black-holed
    /// link. `scheme` is only what [`MockProxy::url`] shows.
    pub async fn silent(scheme: &'static str) -> Self {
        Self::start(scheme, |stream, _| async move {
            let _held = stream;
            std::future::pending::<()>().await;
        })
        .await
    }

    async fn start<F, Fut>(scheme: &'static str, serve: F) -> Self
    where
        F: Fn(TcpStream, Seen) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let seen = Seen::default();
        let recorded = seen.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted_count = connections.clone();
        let task = tokio::spawn(async move {
            // Connections live in the set, so stopping the proxy closes them too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        accepted_count.fetch_add(1, Ordering::Relaxed);
                        connections.spawn(serve(stream, recorded.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        MockProxy { addr, scheme, seen, connections, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The URL with another scheme (`socks5h`, ...) and, optionally, `user:pass@`.
    pub fn url_as(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, pass)) => format!("{scheme}://{user}:{pass}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// TCP connections accepted so far (a [`MockProxy::silent`] proxy records nothing else).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Everything asked of the proxy so far, oldest first.
    pub fn seen(&self) -> Vec<ProxiedRequest> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn record(seen: &Seen, request: ProxiedRequest) {
    seen.lock().unwrap_or_else(PoisonError::into_inner).push(request);
}

// ---- HTTP proxy ----

type ProxyBody = BoxBody<Bytes, hyper::Error>;

async fn serve_http(stream: TcpStream, seen: Seen, required: Option<(String, String)>) {
    let service = hyper::service::service_fn(move |request| handle_http(request, seen.clone(), required.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

async fn handle_http(
    request: Request<Incoming>,
    seen: Seen,
    required: Option<(String, String)>,
) -> Result<Response<ProxyBody>, Infallible> {
    let credentials = request.headers().get(header::PROXY_AUTHORIZATION).and_then(basic_credentials);
    let accepted = required.is_none() || credentials == required;
    let connect = request.method() == Method::CONNECT;
    let target = if connect {
        request.uri().authority().map(|a| a.to_string())
    } else {
        request.uri().authority().map(|a| match a.port_u16() {
            Some(_) => a.to_string(),
            None => format!("{}:80", a.host()),
        })
    };
    let Some(target) = target else {
        // Origin-form: this is a proxy, not an origin server.
        return Ok(plain(StatusCode::BAD_REQUEST, "absolute-form URI or CONNECT expected"));
    };
    let via = if connect {
        Via::Connect
    } else {
        Via::Forward { method: request.method().to_string(), uri: request.uri().to_string() }
    };
    record(&seen, ProxiedRequest { target: target.clone(), via, credentials, accepted });
    if !accepted {
        let mut response = plain(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "proxy credentials required");
        response.headers_mut().insert(header::PROXY_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"testkit\""));
        return Ok(response);
    }
    if connect {
        let Ok(upstream) = TcpStream::connect(&target).await else {
            return Ok(plain(StatusCode::BAD_GATEWAY, "cannot reach the target"));
        };
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(request).await {
                let (mut client, mut upstream) = (TokioIo::new(upgraded), upstream);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        return Ok(Response::new(Empty::new().map_err(|never| match never {}).boxed()));
    }
    Ok(forward(request, &target).await.unwrap_or_else(|| plain(StatusCode::BAD_GATEWAY, "cannot reach the target")))
}

/// Sends an absolute-form request on to its origin in origin form, hop-by-hop headers removed,
/// and streams the answer back.
async fn forward(request: Request<Incoming>, target: &str) -> Option<Response<ProxyBody>> {
    let upstream = TcpStream::connect(target).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await.ok()?;
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    parts.uri = parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse().ok()?;
    for hop in [header::PROXY_AUTHORIZATION, header::CONNECTION, header::TE, header::TRAILER, header::UPGRADE] {
        parts.headers.remove(hop);
    }
    parts.headers.remove("proxy-connection");
    parts.headers.remove("keep-alive");
    let response = sender.send_request(Request::from_parts(parts, body)).await.ok()?;
    Some(response.map(BodyExt::boxed))
}

fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut response =
        Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}

fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

// ---- SOCKS5 proxy (RFC 1928, RFC 1929) ----

const SOCKS_VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const REPLY_OK: u8 = 0x00;
const REPLY_REFUSED: u8 = 0x05;
const REPLY_COMMAND: u8 = 0x07;
const REPLY_ADDRESS: u8 = 0x08;

async fn serve_socks(mut client: TcpStream, seen: Seen, required: Option<(String, String)>) -> std::io::Result<()> {
    // Greeting: VER NMETHODS METHODS...
    let [version, count] = read_array(&mut client).await?;
    if version != SOCKS_VERSION {
        return Ok(());
    }
    let mut methods = vec![0; usize::from(count)];
    client.read_exact(&mut methods).await?;
    let wanted = if required.is_some() { USER_PASS } else { NO_AUTH };
    if !methods.contains(&wanted) {
        client.write_all(&[SOCKS_VERSION, NO_ACCEPTABLE]).await?;
        return Ok(());
    }
    client.write_all(&[SOCKS_VERSION, wanted]).await?;

    let mut credentials = None;
    if wanted == USER_PASS {
        // RFC 1929: VER(1) ULEN UNAME PLEN PASSWD.
        let [_, user_len] = read_array(&mut client).await?;
        let user = read_string(&mut client, user_len).await?;
        let [pass_len] = read_array(&mut client).await?;
        let pass = read_string(&mut client, pass_len).await?;
        credentials = Some((user, pass));
    }
    let accepted = required.is_none() || credentials == required;
    if wanted == USER_PASS {
        client.write_all(&[0x01, if accepted { 0x00 } else { 0x01 }]).await?;
    }

    if !accepted {
        record(&seen, ProxiedRequest { target: String::new(), via: Via::SocksAuthRefused, credentials, accepted });
        return Ok(());
    }
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    let [_, command, _, address_type] = read_array(&mut client).await?;
    let (host, address) = match address_type {
        0x01 => (Ipv4Addr::from(read_array::<4>(&mut client).await?).to_string(), SocksAddress::Ipv4),
        0x03 => {
            let [len] = read_array(&mut client).await?;
            (read_string(&mut client, len).await?, SocksAddress::Domain)
        }
        0x04 => (Ipv6Addr::from(read_array::<16>(&mut client).await?).to_string(), SocksAddress::Ipv6),
        _ => return reply(&mut client, REPLY_ADDRESS).await,
    };
    let port = u16::from_be_bytes(read_array(&mut client).await?);
    let target = match address {
        SocksAddress::Ipv6 => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    record(&seen, ProxiedRequest { target: target.clone(), via: Via::Socks(address), credentials, accepted });
    if command != CMD_CONNECT {
        return reply(&mut client, REPLY_COMMAND).await;
    }
    let mut upstream = match TcpStream::connect((host.as_str(), port)).await {
        Ok(upstream) => upstream,
        Err(_) => return reply(&mut client, REPLY_REFUSED).await,
    };
    let bound = upstream.local_addr()?;
    let mut answer = vec![SOCKS_VERSION, REPLY_OK, 0x00];
    match bound {
        SocketAddr::V4(v4) => {
            answer.push(0x01);
            answer.extend_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            answer.push(0x04);
            answer.extend_from_slice(&v6.ip().octets());
        }
    }
    answer.extend_from_slice(&bound.port().to_be_bytes());
    client.write_all(&answer).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// A failure reply (bound address 0.0.0.0:0), then the connection ends.
async fn reply(client: &mut TcpStream, code: u8) -> std::io::Result<()> {
    client.write_all(&[SOCKS_VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]).await
}

async fn read_array<const N: usize>(stream: &mut TcpStream) -> std::io::Result<[u8; N]> {
    let mut buf = [0; N];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn read_string(stream: &mut TcpStream, len: u8) -> std::io::Result<String> {
    let mut buf = vec![0; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    String::from_utf8(buf).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))
}
