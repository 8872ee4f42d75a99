//! HTTP surface of Switchyard: health, the public API dialects, the management API
//! (`/v0/management/...`), Prometheus `/metrics`, OAuth callbacks and, as later work lands, the
//! panel.

mod access_log;
mod account_health;
mod browser_policy;
mod callbacks;
mod connections;
mod control_panel;
mod cors;
mod error;
mod health;
mod host_guard;
mod management;
mod metrics;
mod proxy;
mod quota;
mod usage;

use std::sync::Arc;

use axum::Router;
use switchyard_auth::login::{LoginEngine, Refresher};
use switchyard_auth::{CredentialStore, StoreEvent};
use switchyard_config::ConfigHandle;
use switchyard_http::{ClientError, HttpClients};
use switchyard_providers::{ConfigLookup, Registry};
use switchyard_router::{Account, AccountKind, Router as AccountRouter, accounts_from, file_account};

pub use account_health::HealthService;
pub use browser_policy::host_notice;
pub use connections::serve;
pub use error::ApiError;
pub use management::{capabilities_json, secret_key_notice};
pub use quota::QuotaService;
pub use usage::UsageState;

/// Everything the routes share. Cheap to clone behind an `Arc`.
pub struct AppState {
    pub config: Arc<ConfigHandle>,
    pub store: Arc<CredentialStore>,
    /// Every outbound call's HTTP client: one pooled client per distinct proxy, shared by the
    /// API attempts, the login engine and the refresher.
    pub http_clients: Arc<HttpClients>,
    pub engine: Arc<LoginEngine>,
    pub refresher: Arc<Refresher>,
    /// The accounts behind the public API and their cooldowns; kept in step with the auth dir
    /// and config by [`AppState::spawn_account_sync`].
    pub router: Arc<AccountRouter>,
    /// Request counters per account, the usage queue and the log directory.
    pub usage: Arc<UsageState>,
    /// Evidence about every account and inspection runs.
    pub health: Arc<HealthService>,
    /// The providers' quota fetchers and every account's last reading.
    pub quota: Arc<QuotaService>,
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
        let http_clients = Arc::new(HttpClients::new());
        let engine = LoginEngine::new(store.clone(), config.clone(), http_clients.clone());
        let lookup = Arc::new(ConfigLookup(config.clone()));
        let refresher = Refresher::new(store.clone(), lookup, config.clone(), http_clients.clone());
        let usage = Arc::new(UsageState::new(switchyard_usage::log_dir(&config)));
        let health = Arc::new(HealthService::default());
        refresher.set_observer(Arc::new(account_health::feed::RefreshFeed {
            store: store.clone(),
            book: health.book.clone(),
            config: config.clone(),
        }));
        let state = Arc::new(Self {
            config,
            store,
            http_clients,
            engine,
            refresher,
            router: Arc::new(AccountRouter::new()),
            usage,
            health,
            quota: Arc::new(QuotaService::default()),
            management: management::Guard::new(management_password),
        });
        state.sync_accounts();
        state
    }

    /// The client for calls that belong to no account (login discovery): the global `proxy-url`.
    pub async fn global_http(&self) -> Result<reqwest::Client, ClientError> {
        self.http_clients.global(&self.config.get()).await
    }

    /// Rebuilds the router's accounts from the auth files and config (health state is kept).
    /// Only servable accounts serve models: those whose provider has an executor and that do
    /// not need a re-login.
    pub fn sync_accounts(&self) {
        let stored = self.store.list();
        let files = stored.iter().filter_map(|s| s.credential().map(|c| (s.name.as_str(), c)));
        let mut accounts = accounts_from(files, &self.config.get());
        for account in &mut accounts {
            self.mark_relogin(account);
        }
        self.router.set_accounts(accounts);
    }

    /// Marks an auth file's account whose refresh token was refused (the refresher knows them).
    fn mark_relogin(&self, account: &mut Account) {
        if account.unservable.is_none()
            && let AccountKind::OAuth { file } = &account.kind
            && let Some(reason) = self.refresher.state(file).and_then(|state| state.needs_relogin)
        {
            account.unservable = Some(format!("needs re-login: {reason}"));
        }
    }

    /// Whether the router's accounts of these saved files are what the files say now. A token
    /// refresh saves its file without changing its account, and a refresh wave saves hundreds:
    /// each rebuilding every account of thousands was most of the wave's cost.
    fn accounts_current(&self, saved: &[String]) -> bool {
        let config = self.config.get();
        let registry = Registry::new(&config);
        saved.iter().all(|name| {
            let stored = self.store.get(name);
            let built = stored.as_ref().and_then(|stored| file_account(name, stored.credential()?, &config, &registry));
            let built = built.map(|mut account| {
                self.mark_relogin(&mut account);
                account
            });
            built == self.router.account(name)
        })
    }

    /// Follows auth-dir and config changes, and the refresher's re-login marks (which change
    /// no file), so routing always sees the current servable accounts.
    pub fn spawn_account_sync(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let state = self.clone();
        // Subscribed before the task runs, so no change made right after this call is missed.
        let mut files = state.store.subscribe();
        let mut config = state.config.subscribe();
        let mut relogin = state.refresher.relogin_changes();
        tokio::spawn(async move {
            loop {
                // The files saved since the last sync; anything else (a removal, missed
                // events, config, re-login marks) rebuilds every account.
                let mut saved = Vec::new();
                let mut rebuild = false;
                tokio::select! {
                    event = files.recv() => match event {
                        Ok(StoreEvent::Upserted(name)) => saved.push(name),
                        Ok(StoreEvent::Removed(_)) | Err(RecvError::Lagged(_)) => rebuild = true,
                        Err(RecvError::Closed) => return,
                    },
                    changed = config.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        rebuild = true;
                    }
                    changed = relogin.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        rebuild = true;
                    }
                }
                // One sync for everything already queued.
                loop {
                    match files.try_recv() {
                        Ok(StoreEvent::Upserted(name)) => saved.push(name),
                        Ok(StoreEvent::Removed(_)) | Err(TryRecvError::Lagged(_)) => rebuild = true,
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                // Off the request workers: with thousands of accounts a rebuild takes milliseconds.
                let sync = state.clone();
                let synced = tokio::task::spawn_blocking(move || {
                    if rebuild || !sync.accounts_current(&saved) {
                        sync.sync_accounts();
                    }
                });
                if synced.await.is_err() {
                    return;
                }
            }
        })
    }
}

impl AppState {
    /// The health machinery's background work: following re-logins (old evidence dropped,
    /// accounts an auth issue disabled enabled again), the inspection schedule
    /// (`health.inspection-interval-minutes`) and the quota schedule
    /// (`quota.refresh-interval-seconds`). Abort the handles to stop it.
    pub fn spawn_health_tasks(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            account_health::actions::spawn_relogin_watch(self.store.clone(), self.health.book.clone()),
            account_health::inspection::spawn_schedule(self.clone()),
            quota::spawn_schedule(self.clone()),
        ]
    }
}

/// The whole application router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(callbacks::routes())
        .merge(control_panel::routes())
        .merge(metrics::routes())
        .merge(proxy::routes(state.clone()))
        .nest("/v0/management", management::routes(state.clone()))
        // Paths no router claims (`/v0/management/` with its trailing slash among them).
        .fallback(|| async { ApiError::not_found("not found") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::allow_browsers))
        // Outside CORS: a refused Host gets no CORS headers either.
        .layer(axum::middleware::from_fn_with_state(state.clone(), host_guard::require_allowed_host))
        .layer(axum::middleware::from_fn(connections::answer_body_timeouts))
        .layer(axum::middleware::from_fn(access_log::log_request))
        .with_state(state)
}
