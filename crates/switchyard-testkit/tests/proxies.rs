//! The testkit proxies speak their protocols correctly: checked with reqwest as the client (its
//! HTTP-proxy and SOCKS5 connectors) and, for `CONNECT`, by hand.

use axum::Router;
use axum::routing::get;
use switchyard_testkit::proxy::{MockProxy, ProxiedRequest, SocksAddress, Via};
use switchyard_testkit::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn origin_app() -> Router {
    Router::new().route("/hello", get(|| async { "hello from the origin" }))
}

fn through(proxy: &str) -> reqwest::Client {
    reqwest::Client::builder().no_proxy().proxy(reqwest::Proxy::all(proxy).unwrap()).build().unwrap()
}

#[tokio::test]
async fn http_proxy_forwards_absolute_form_requests_and_checks_credentials() {
    let origin = serve(origin_app()).await;
    let proxy = MockProxy::http(Some(("alice", "s3cret"))).await;

    let ok =
        through(&proxy.url_as("http", Some(("alice", "s3cret")))).get(origin.url("/hello?x=1")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "hello from the origin");
    assert_eq!(origin.requests_to("/hello")[0].query.as_deref(), Some("x=1"));
    assert!(
        origin.requests()[0].headers.get("proxy-authorization").is_none(),
        "hop-by-hop credentials stay at the proxy"
    );

    let refused =
        through(&proxy.url_as("http", Some(("alice", "wrong")))).get(origin.url("/hello")).send().await.unwrap();
    assert_eq!(refused.status(), 407);
    assert_eq!(origin.count("/hello"), 1, "a refused request never reaches the origin");

    let target = format!("127.0.0.1:{}", origin.port());
    let seen = proxy.seen();
    assert_eq!(
        seen[0],
        ProxiedRequest {
            target: target.clone(),
            via: Via::Forward { method: "GET".into(), uri: format!("{}/hello?x=1", origin.base()) },
            credentials: Some(("alice".into(), "s3cret".into())),
            accepted: true,
        }
    );
    assert_eq!((seen[1].accepted, seen[1].credentials.clone()), (false, Some(("alice".into(), "wrong".into()))));
}

#[tokio::test]
async fn http_proxy_tunnels_connect() {
    let origin = serve(origin_app()).await;
    let proxy = MockProxy::http(None).await;
    let target = format!("127.0.0.1:{}", origin.port());

    let mut tunnel = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    tunnel.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        tunnel.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    tunnel
        .write_all(format!("GET /hello HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tunnel.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("hello from the origin"), "{answer}");
    assert_eq!(proxy.seen()[0], ProxiedRequest { target, via: Via::Connect, credentials: None, accepted: true });
}

#[tokio::test]
async fn socks5_proxy_connects_by_ipv4_domain_and_ipv6_with_rfc1929_auth() {
    let origin = serve(origin_app()).await;
    let proxy = MockProxy::socks5(Some(("bob", "pw"))).await;
    let credentials = Some(("bob", "pw"));
    let port = origin.port();

    // socks5: the client resolves, the proxy gets an IPv4 address.
    let answer = through(&proxy.url_as("socks5", credentials)).get(origin.url("/hello")).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "hello from the origin");
    // socks5h: the proxy resolves the name.
    let by_name = format!("http://localhost:{port}/hello");
    let answer = through(&proxy.url_as("socks5h", credentials)).get(&by_name).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "hello from the origin");

    // IPv6: reqwest cannot name an IPv6 literal to a SOCKS proxy, so this client is by hand.
    let v6 = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    let v6_port = v6.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(v6, origin_app()).await.unwrap() });
    let mut socks = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    socks.write_all(&[5, 1, 2]).await.unwrap();
    assert_eq!(read::<2>(&mut socks).await, [5, 2], "username/password chosen");
    socks.write_all(&[1, 3, b'b', b'o', b'b', 2, b'p', b'w']).await.unwrap();
    assert_eq!(read::<2>(&mut socks).await, [1, 0], "credentials accepted");
    let mut request = vec![5, 1, 0, 4];
    request.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    request.extend_from_slice(&v6_port.to_be_bytes());
    socks.write_all(&request).await.unwrap();
    let reply = read::<4>(&mut socks).await;
    assert_eq!(reply[..2], [5, 0], "connected");
    let bound_len = if reply[3] == 4 { 16 } else { 4 };
    let mut bound = vec![0; bound_len + 2];
    socks.read_exact(&mut bound).await.unwrap();
    socks.write_all(b"GET /hello HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    socks.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("hello from the origin"), "{answer}");

    let wrong = through(&proxy.url_as("socks5", Some(("bob", "nope")))).get(origin.url("/hello")).send().await;
    assert!(wrong.is_err(), "refused credentials fail the connect");
    let no_auth = through(&proxy.url_as("socks5", None)).get(origin.url("/hello")).send().await;
    assert!(no_auth.is_err(), "a client without credentials finds no acceptable method");

    let seen = proxy.seen();
    let bob = Some(("bob".to_owned(), "pw".to_owned()));
    assert_eq!(
        seen[0],
        ProxiedRequest {
            target: format!("127.0.0.1:{port}"),
            via: Via::Socks(SocksAddress::Ipv4),
            credentials: bob.clone(),
            accepted: true
        }
    );
    assert_eq!(
        seen[1],
        ProxiedRequest {
            target: format!("localhost:{port}"),
            via: Via::Socks(SocksAddress::Domain),
            credentials: bob.clone(),
            accepted: true
        }
    );
    assert_eq!(
        seen[2],
        ProxiedRequest {
            target: format!("[::1]:{v6_port}"),
            via: Via::Socks(SocksAddress::Ipv6),
            credentials: bob,
            accepted: true
        }
    );
    assert_eq!((seen[3].via.clone(), seen[3].accepted), (Via::SocksAuthRefused, false));
    assert_eq!(seen.len(), 4, "the client without credentials never got to a request");
    assert_eq!(origin.count("/hello"), 2);
}

#[tokio::test]
async fn socks5_proxy_without_auth() {
    let origin = serve(origin_app()).await;
    let proxy = MockProxy::socks5(None).await;
    let answer = through(&proxy.url()).get(origin.url("/hello")).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "hello from the origin");
    assert_eq!(proxy.seen()[0].credentials, None);
}

async fn read<const N: usize>(stream: &mut tokio::net::TcpStream) -> [u8; N] {
    let mut buf = [0; N];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}
