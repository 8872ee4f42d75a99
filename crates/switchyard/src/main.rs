//! The `switchyard` binary: parses the command line and wires the library crates together.

mod doctor;
mod import;
mod logging;
mod login;
mod providers;
mod setup;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use switchyard_auth::CredentialStore;
use switchyard_config::{Config, ConfigHandle};
use switchyard_server::AppState;
use tokio::net::TcpListener;

/// One local endpoint (OpenAI, Anthropic and Gemini APIs) for the AI coding subscriptions you
/// already pay for. Compatible with CLIProxyAPI's config.yaml, auth files and management API.
#[derive(Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
struct Cli {
    /// config.yaml to load and watch for changes. Without it Switchyard runs on its embedded
    /// default: 127.0.0.1:8317, auth files in ~/.cli-proxy-api, management API disabled.
    #[arg(short, long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Log lines as `text` or `json` (one object per line, e.g. the per-request line with
    /// request id, account `auth_index`, attempts and latency). Default: text, or json when the
    /// config sets `logging-to-file: true`.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<logging::LogFormat>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default when no command is given).
    Serve,
    /// Validate a config file (or the embedded default) and print its warnings; exit 2 if invalid.
    CheckConfig,
    /// Print the embedded default config.yaml, a commented starting point for your own.
    DefaultConfig,
    /// Check the auth dir: group/world-accessible modes, entries that are not regular files
    /// (symlinks, FIFOs, ...), files over 1 MiB, corrupt JSON, stale temp files. Only reports
    /// unless `--fix` (dir 0700, files 0600, stale temp files removed; refused and corrupt files
    /// are never touched).
    ///
    /// Exit codes: 0 nothing wrong (or everything fixed), 1 a problem remains, 2 config or I/O error.
    Doctor {
        /// Set the dir to 0700 and its files to 0600, and remove stale temp files.
        #[arg(long)]
        fix: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Add a provider account (browser, device-code, import or cookie login) and save the
    /// credential to the auth dir.
    ///
    /// `<login>` is a login name or alias from the list below, or an `oauth-providers` entry of
    /// the config; `--method` picks one of its methods (default: its first). Options a method
    /// asks for are flags (`--project-id`, ...); secrets such as cookies are read from stdin,
    /// never from the command line. Logging in again to an existing account replaces its tokens
    /// and keeps your settings (prefix, proxy_url, priority, note, disabled, ...).
    ///
    /// Exit codes: 0 saved, 2 usage or config error (unknown login, method or option) or bad
    /// input (a cookie or file that is unusable or already stored), 3 provider error (token
    /// exchange, identity, port in use, ...), 4 timed out or the device code expired, 5
    /// cancelled or consent denied (Ctrl-C cancels; nothing is saved).
    Login {
        /// Login name or alias (see the list below).
        provider: String,
        /// Login method (`browser`, `device`, ...); default: the login's first.
        #[arg(long, value_name = "METHOD")]
        method: Option<String>,
        /// Same as `--method device`.
        #[arg(long, conflicts_with = "method")]
        device: bool,
        /// Print the URL instead of opening a browser (SSH sessions, headless servers).
        #[arg(long)]
        no_browser: bool,
        /// Draw the device login's QR code even when stdout is not a terminal.
        #[arg(long)]
        qr: bool,
        /// Browser logins: port for the local callback listener instead of the provider's
        /// registered one (the provider must accept the resulting redirect URI).
        #[arg(long, value_name = "PORT")]
        callback_port: Option<u16>,
        /// Browser logins: seconds to wait for the browser to come back (device logins wait
        /// as long as their code lives).
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        timeout: u64,
    },
    /// List every provider: its login methods (kind, options), the upstream URLs it calls
    /// (`upstream-urls.<provider>.<name>` overrides each) and whether its accounts are served.
    Providers {
        /// Print the JSON `GET /v0/management/providers` answers.
        #[arg(long)]
        json: bool,
    },
    /// Add an account from a file you already have (e.g. a Vertex AI service-account key) and
    /// save it to the auth dir. Nothing is saved when the file is not what the import needs.
    ///
    /// Exit codes: 0 saved, 2 usage or bad input (the message says what is wrong with the file),
    /// 3 provider error.
    #[command(after_help = "Example: switchyard import vertex ./my-project-0123abcd.json --location europe-west4")]
    Import {
        /// Provider with an import (e.g. vertex).
        provider: String,
        /// The file to import; defaults to where the provider's own tool keeps it, if it has such a place.
        file: Option<PathBuf>,
        /// Import method, when the provider has several.
        #[arg(long, value_name = "METHOD")]
        method: Option<String>,
        /// Vertex: region of the account (us-central1 when not given; `global` for the global endpoint).
        #[arg(long, value_name = "REGION")]
        location: Option<String>,
        /// Model prefix stored with the account (Vertex file: vertex-<PREFIX>-<project>.json).
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Any other option the import asks for.
        #[arg(short = 'o', long = "option", value_name = "NAME=VALUE")]
        option: Vec<String>,
    },
    /// Point a coding tool at this Switchyard: write its config file (Claude Code
    /// ~/.claude/settings.json, Codex ~/.codex/config.toml, Gemini CLI ~/.gemini/.env and
    /// settings.json, OpenCode ~/.config/opencode/opencode.json).
    ///
    /// An existing file is merged into (only Switchyard's keys change) and kept as
    /// `<file>.bak-<stamp>`; a file that cannot be merged is left alone (exit 2).
    #[command(after_help = "Example: switchyard setup claude --model claude-sonnet-4-5 --dry-run")]
    Setup {
        /// The client to set up.
        #[arg(value_enum)]
        client: setup::Client,
        /// Switchyard's URL as the client reaches it (default: http://<host>:<port> of the config).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// The client key (default: the config's first `api-keys` entry).
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// Default model for the client.
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
        /// Print the change instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
}

/// mimalloc: the request path makes many small, short-lived allocations, and glibc's malloc was
/// a sixth of a pass-through request's CPU (bench/README.md, "Profile").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `login`'s option flags and its list of logins come from the provider registry.
    let matches = Cli::command().mut_subcommand("login", login::extend_command).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command.unwrap_or(Command::Serve) {
        Command::DefaultConfig => {
            print!("{}", switchyard_config::DEFAULT_YAML);
            ExitCode::SUCCESS
        }
        Command::CheckConfig => check_config(cli.config),
        Command::Doctor { fix, json } => match load_config(cli.config) {
            Ok((config, _)) => doctor::run(&config.get().auth_dir_path(), doctor::DoctorArgs { fix, json }),
            Err(message) => {
                eprintln!("switchyard: {message}");
                ExitCode::from(doctor::exit::ERROR)
            }
        },
        Command::Login { provider, method, device, no_browser, qr, callback_port, timeout } => {
            let config = match load_config(cli.config) {
                Ok((config, _)) => config,
                Err(message) => {
                    eprintln!("switchyard: {message}");
                    return ExitCode::from(login::exit::USAGE);
                }
            };
            let _ = logging::init_quiet();
            let options = matches.subcommand_matches("login").map(login::ask_values).unwrap_or_default();
            let args = login::LoginArgs {
                provider,
                method: if device { Some("device".into()) } else { method },
                no_browser,
                qr,
                callback_port,
                timeout: Duration::from_secs(timeout),
                options,
            };
            match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime.block_on(login::run(config, args)),
                Err(error) => {
                    eprintln!("switchyard: cannot start the async runtime: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Setup { client, base_url, key, model, dry_run } => match load_config(cli.config) {
            Ok((config, _)) => setup::run(&config.get(), setup::SetupArgs { client, base_url, key, model, dry_run }),
            Err(message) => {
                eprintln!("switchyard: {message}");
                ExitCode::from(2)
            }
        },
        Command::Providers { json } => match load_config(cli.config) {
            Ok((config, _)) => providers::run(&config.get(), json),
            Err(message) => {
                eprintln!("switchyard: {message}");
                ExitCode::from(2)
            }
        },
        Command::Import { provider, file, method, location, prefix, option } => {
            let config = match load_config(cli.config) {
                Ok((config, _)) => config,
                Err(message) => {
                    eprintln!("switchyard: {message}");
                    return ExitCode::from(login::exit::USAGE);
                }
            };
            let _ = logging::init_quiet();
            let mut options: Vec<(String, String)> = Vec::new();
            for pair in option {
                match pair.split_once('=') {
                    Some((name, value)) if !name.trim().is_empty() => {
                        options.push((name.trim().replace('-', "_"), value.to_owned()));
                    }
                    _ => {
                        eprintln!("switchyard: --option takes NAME=VALUE");
                        return ExitCode::from(login::exit::USAGE);
                    }
                }
            }
            options.extend(location.map(|value| ("location".to_owned(), value)));
            options.extend(prefix.map(|value| ("prefix".to_owned(), value)));
            let args = import::ImportArgs { provider, file, method, options };
            match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime.block_on(import::run(config, args)),
                Err(error) => {
                    eprintln!("switchyard: cannot start the async runtime: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let (config, warnings) = match load_config(cli.config) {
                Ok(loaded) => loaded,
                Err(message) => {
                    eprintln!("switchyard: {message}");
                    return ExitCode::from(2);
                }
            };
            let log_control = logging::init(&config, cli.log_format);
            for warning in &warnings {
                tracing::warn!("config: {warning}");
            }
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("switchyard: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config, log_control)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error:#}");
                    eprintln!("switchyard: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load_config(path: Option<PathBuf>) -> Result<(Arc<ConfigHandle>, Vec<String>), String> {
    match path {
        None => Ok((Arc::new(ConfigHandle::embedded()), Vec::new())),
        Some(path) => {
            let (handle, warnings) = ConfigHandle::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((Arc::new(handle), warnings.iter().map(ToString::to_string).collect()))
        }
    }
}

fn check_config(path: Option<PathBuf>) -> ExitCode {
    match load_config(path) {
        Ok((handle, warnings)) => {
            for warning in &warnings {
                println!("warning: {warning}");
            }
            let config = handle.get();
            println!(
                "ok: listens on {}:{}, auth dir {}, management {}",
                bind_host(&config),
                config.port,
                config.auth_dir_path().display(),
                if config.management_secret().is_some() { "enabled" } else { "disabled (no secret-key)" }
            );
            if let Some(notice) = switchyard_server::secret_key_notice(&config) {
                println!("note: {notice}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("invalid config: {message}");
            ExitCode::from(2)
        }
    }
}

/// CPA's `host: ""` means every interface.
fn bind_host(config: &Config) -> &str {
    if config.host.trim().is_empty() { "0.0.0.0" } else { config.host.trim() }
}

async fn serve(config: Arc<ConfigHandle>, log_control: logging::LogControl) -> anyhow::Result<()> {
    let initial = config.get();
    let auth_dir = initial.auth_dir_path();
    let store = CredentialStore::open(auth_dir.clone())
        .await
        .with_context(|| format!("cannot open the auth directory {}", auth_dir.display()))?;
    let _store_watcher = store.watch().context("cannot watch the auth directory")?;
    let _config_watcher = match config.path() {
        Some(_) => Some(config.watch(Duration::from_millis(150)).context("cannot watch the config file")?),
        None => None,
    };
    tokio::spawn(follow_config_changes(config.clone(), log_control));

    let management_password = std::env::var("MANAGEMENT_PASSWORD").ok().filter(|p| !p.is_empty());
    let state = AppState::new(config.clone(), store.clone(), management_password);
    // CPA checks every 5 s; the refresher renews each credential its provider's lead before expiry.
    let _refresh_loop = AbortOnDrop(state.refresher.spawn_background(Duration::from_secs(5)));
    let _account_sync = AbortOnDrop(state.spawn_account_sync());
    let _health_tasks: Vec<_> = state.spawn_health_tasks().into_iter().map(AbortOnDrop).collect();
    // The writer thread ends by itself once the last recorder is gone.
    let _usage_store = tokio::task::block_in_place(|| state.start_usage_store());
    let address = format!("{}:{}", bind_host(&initial), initial.port);
    let listener = TcpListener::bind(&address).await.with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address),
        auth_dir = %auth_dir.display(),
        credentials = store.list().len(),
        management = if state.config.get().management_secret().is_some() { "enabled" } else { "disabled" },
        "switchyard is serving"
    );
    if let Some(notice) = switchyard_server::secret_key_notice(&state.config.get()) {
        tracing::info!("{notice}");
    }
    if let Some(warning) = listener.local_addr().ok().and_then(|bound| switchyard_server::host_notice(&initial, bound))
    {
        tracing::warn!("{warning}");
    }
    switchyard_server::serve(listener, switchyard_server::app(state), config, shutdown_signal()).await?;
    tracing::info!("switchyard stopped");
    Ok(())
}

/// Stops a background task when serving ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies what can change live (log level) and says plainly what needs a restart.
async fn follow_config_changes(config: Arc<ConfigHandle>, log_control: logging::LogControl) {
    let mut changes = config.subscribe();
    let mut previous = config.get();
    while changes.changed().await.is_ok() {
        let current = changes.borrow_and_update().clone();
        log_control.apply(&current);
        if current.host != previous.host || current.port != previous.port || current.auth_dir != previous.auth_dir {
            tracing::warn!("host, port or auth-dir changed in the config: restart switchyard to apply them");
        }
        previous = current;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
