//! The one-shot local callback listener a CLI login runs on the provider's registered port: the
//! browser is redirected to it with the code, it hands the callback to the login's session and
//! shows a small page the user can close.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{CallbackParams, LoginError, SessionStore};

/// A running listener. Dropping it stops it; so does the first callback its session accepts.
pub struct CallbackListener {
    port: u16,
    shutdown: Arc<watch::Sender<bool>>,
}

impl CallbackListener {
    /// The port actually bound (resolves a requested port 0).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for CallbackListener {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

struct Shared {
    sessions: Arc<SessionStore>,
    provider: String,
    path: String,
    shutdown: Arc<watch::Sender<bool>>,
}

/// Binds `host:port` (port 0 = any free port) and serves `GET <path>?code=..&state=..` for
/// sessions of `provider`; every other path is 404. A taken port is
/// [`LoginError::PortInUse`].
pub async fn bind_callback_listener(
    host: &str,
    port: u16,
    path: &str,
    sessions: Arc<SessionStore>,
    provider: &str,
) -> Result<CallbackListener, LoginError> {
    let listener = TcpListener::bind((host, port)).await.map_err(|err| bind_error(host, port, err))?;
    let port = listener.local_addr().map_err(|err| bind_error(host, port, err))?.port();
    let shutdown = Arc::new(watch::channel(false).0);
    let shared = Arc::new(Shared {
        sessions,
        provider: provider.to_owned(),
        path: if path.starts_with('/') { path.to_owned() } else { format!("/{path}") },
        shutdown: shutdown.clone(),
    });
    // A fallback instead of a route: provider paths are matched literally, never as patterns.
    let app = Router::new().fallback(handle).with_state(shared);
    let mut stopped = shutdown.subscribe();
    tokio::spawn(async move {
        let signal = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        // Graceful: the request that triggered the shutdown still gets its page.
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
            tracing::warn!(error = %err, "OAuth callback listener failed");
        }
    });
    tracing::debug!(port, provider, "OAuth callback listener started");
    Ok(CallbackListener { port, shutdown })
}

fn bind_error(host: &str, port: u16, err: io::Error) -> LoginError {
    if err.kind() == io::ErrorKind::AddrInUse {
        LoginError::PortInUse { port, reason: err.to_string() }
    } else {
        LoginError::Provider(format!("cannot listen for the OAuth callback on {host}:{port}: {err}"))
    }
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    if uri.path() != shared.path {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    if method != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let (response, delivered) = deliver_and_render(&shared.sessions, &shared.provider, uri.query().unwrap_or(""));
    if delivered {
        shared.shutdown.send_replace(true);
    }
    response
}

/// Hands a browser callback (`code`/`state`/`error` in `query`) to `provider`'s session and
/// renders the page the browser shows. Also serves the main-port `/<provider>/callback` routes.
pub fn deliver_callback_page(sessions: &SessionStore, provider: &str, query: &str) -> Response {
    deliver_and_render(sessions, provider, query).0
}

/// The page, and whether the session accepted the callback.
fn deliver_and_render(sessions: &SessionStore, provider: &str, query: &str) -> (Response, bool) {
    let params = CallbackParams::from_query(query);
    let Some(state) = params.state.clone() else {
        return (page(StatusCode::BAD_REQUEST, "Authentication failed", "The callback carries no state."), false);
    };
    if params.code.is_none() && params.error.is_none() {
        return (page(StatusCode::BAD_REQUEST, "Authentication failed", "callback URL missing code"), false);
    }
    let error = params.error.clone();
    match sessions.deliver(&state, Some(provider), params) {
        Ok(()) => {
            let page = match error {
                Some(error) => {
                    page(StatusCode::OK, "Authentication failed", &format!("Authentication failed: {error}"))
                }
                None => page(StatusCode::OK, "Authentication successful!", "You can close this window."),
            };
            (page, true)
        }
        Err(err) => {
            let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            (page(status, "Authentication failed", &err.message()), false)
        }
    }
}

/// A small page that closes itself after 5 s. `message` is escaped; callers never pass the
/// code or state.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1><p>{message}</p>\n\
         <script>setTimeout(function () {{ window.close(); }}, 5000);</script></body></html>\n",
        title = escape_html(title),
        message = escape_html(message),
    );
    let headers = [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")];
    (status, headers, body).into_response()
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn listener(sessions: &Arc<SessionStore>) -> CallbackListener {
        bind_callback_listener("127.0.0.1", 0, "/auth/callback", sessions.clone(), "codex").await.unwrap()
    }

    async fn get(port: u16, path_and_query: &str) -> (u16, String) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client.get(format!("http://127.0.0.1:{port}{path_and_query}")).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Bounded wait until nothing accepts connections on `port` any more.
    async fn wait_closed(port: u16) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "listener on {port} still accepting");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn delivers_the_callback_answers_a_page_and_stops() {
        let sessions = Arc::new(SessionStore::new());
        let waiter = sessions.register("codex", "st1");
        let listener = listener(&sessions).await;
        let port = listener.port();
        assert_ne!(port, 0);

        let (status, body) = get(port, "/auth/callback?code=the-code&state=st1&scope=x").await;
        assert_eq!(status, 200);
        assert!(body.contains("Authentication successful!") && body.contains("You can close this window."));
        assert!(body.contains("window.close()"));
        assert!(!body.contains("the-code") && !body.contains("st1"), "{body}");

        let params = waiter.wait(Duration::from_secs(5)).await.unwrap();
        assert_eq!(params.code.as_deref(), Some("the-code"));
        assert_eq!(params.state.as_deref(), Some("st1"));
        wait_closed(port).await;
        drop(listener);
    }

    #[tokio::test]
    async fn refusals_keep_it_listening() {
        let sessions = Arc::new(SessionStore::new());
        let waiter = sessions.register("codex", "st1");
        let _other = sessions.register("anthropic", "st2");
        let listener = listener(&sessions).await;
        let port = listener.port();

        assert_eq!(get(port, "/favicon.ico").await.0, 404);
        assert_eq!(get(port, "/auth/callback/extra?code=c&state=st1").await.0, 404);
        let (status, body) = get(port, "/auth/callback?code=c&state=unknown").await;
        assert_eq!((status, body.contains("unknown or expired state")), (404, true));
        let (status, body) = get(port, "/auth/callback?code=c&state=st2").await;
        assert_eq!((status, body.contains("provider does not match state")), (400, true));
        assert_eq!(get(port, "/auth/callback?code=c").await.0, 400);
        let (status, body) = get(port, "/auth/callback?state=st1").await;
        assert_eq!((status, body.contains("callback URL missing code")), (400, true));

        let (status, body) = get(port, "/auth/callback?error=%3Cscript%3Ebad%26%22&state=st1").await;
        assert_eq!(status, 200);
        assert!(body.contains("Authentication failed: &lt;script&gt;bad&amp;&quot;"), "{body}");
        assert!(!body.contains("<script>bad"));
        let params = waiter.wait(Duration::from_secs(5)).await.unwrap();
        assert_eq!(params.error.as_deref(), Some("<script>bad&\""));
        wait_closed(port).await;
    }

    #[tokio::test]
    async fn dropping_stops_it_and_a_taken_port_is_reported() {
        let sessions = Arc::new(SessionStore::new());
        let listener = listener(&sessions).await;
        let port = listener.port();
        match bind_callback_listener("127.0.0.1", port, "/cb", sessions.clone(), "codex").await {
            Err(LoginError::PortInUse { port: p, reason }) => assert_eq!((p, reason.is_empty()), (port, false)),
            other => panic!("expected PortInUse, got {:?}", other.map(|l| l.port())),
        }
        drop(listener);
        wait_closed(port).await;
    }

    #[test]
    fn escapes_html() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
