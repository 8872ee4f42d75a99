//! HTTP surface of Switchyard: health, the management API (`/v0/management/...`) and, as later
//! work lands, the public API dialects, OAuth callbacks and the panel.

mod access_log;
mod callbacks;
mod error;
mod health;
mod management;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{LoginEngine, Refresher};
use switchyard_config::ConfigHandle;
use switchyard_providers::ConfigLookup;
use tokio::net::TcpListener;

pub use error::ApiError;

/// Everything the routes share. Cheap to clone behind an `Arc`.
pub struct AppState {
    pub config: Arc<ConfigHandle>,
    pub store: Arc<CredentialStore>,
    /// One HTTP client (and connection pool) for every upstream call.
    pub http: reqwest::Client,
    pub engine: Arc<LoginEngine>,
    pub refresher: Arc<Refresher>,
    management: management::Guard,
}

impl AppState {
    /// `management_password` is CPA's `MANAGEMENT_PASSWORD`: a key accepted in addition to
    /// `remote-management.secret-key`, which also allows remote management.
    pub fn new(
        config: Arc<ConfigHandle>,
        store: Arc<CredentialStore>,
        management_password: Option<String>,
    ) -> Arc<Self> {
        let http = reqwest::Client::new();
        let engine = LoginEngine::new(store.clone(), config.clone(), http.clone());
        let lookup = Arc::new(ConfigLookup(config.clone()));
        let refresher = Refresher::new(store.clone(), lookup, config.clone(), http.clone());
        Arc::new(Self {
            config,
            store,
            http,
            engine,
            refresher,
            management: management::Guard::new(management_password),
        })
    }
}

/// The whole application router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(callbacks::routes())
        .nest("/v0/management", management::routes(state.clone()))
        .layer(axum::middleware::from_fn(access_log::log_request))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves. Peer addresses are kept because
/// management access depends on whether the caller is local.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
