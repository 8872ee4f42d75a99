//! Log setup: `RUST_LOG` wins; otherwise the config's `debug` flag picks the level, and a config
//! reload that flips it takes effect without a restart. Lines are text, or one JSON object each
//! (fields at the top level) with `--log-format json` or `logging-to-file: true`, for collectors.
//! With `logging-to-file: true` the same lines (JSON) also go to `main.log` in the log directory
//! (rotated, capped by `logs-max-total-size-mb`) through a writer thread, so logging never waits
//! on the disk; both keys follow config reloads.

use std::sync::Arc;

use switchyard_config::{Config, ConfigHandle};
use switchyard_usage::log_writer::{FileLogSettings, LogFileWriter, MAX_FILE_BYTES};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

pub struct LogControl {
    /// `None` when `RUST_LOG` fixed the filter.
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    files: Arc<FileLogSettings>,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The flag wins; without it `logging-to-file: true` asks for JSON (machine-read logs).
    fn pick(flag: Option<LogFormat>, config: &Config) -> LogFormat {
        flag.unwrap_or(if config.logging_to_file { LogFormat::Json } else { LogFormat::Text })
    }
}

fn filter_for(config: &Config) -> EnvFilter {
    // Dependencies stay at info even in debug mode: hyper's debug output is noise for users.
    let level = if config.debug { "debug" } else { "info" };
    EnvFilter::new(format!(
        "info,switchyard={level},switchyard_server={level},switchyard_auth={level},switchyard_config={level}"
    ))
}

pub fn init(config_handle: &ConfigHandle, format: Option<LogFormat>) -> LogControl {
    let config = &config_handle.get();
    let files = Arc::new(FileLogSettings::default());
    files.apply(config.logging_to_file, config.logs_max_total_size_mb);
    let file_writer =
        match LogFileWriter::spawn(switchyard_usage::log_dir(config_handle), files.clone(), MAX_FILE_BYTES) {
            Ok(writer) => Some(writer),
            Err(error) => {
                eprintln!("switchyard: cannot start the log file writer: {error}");
                None
            }
        };
    let file_layer = file_writer.map(|writer| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .with_writer(move || writer.line())
    });
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let (filter, dynamic) = match from_env {
        Some(spec) => (EnvFilter::new(spec), false),
        None => (filter_for(config), true),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let json = LogFormat::pick(format, config) == LogFormat::Json;
    let text_layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let json_layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with((!json).then_some(text_layer))
        .with(json.then_some(json_layer))
        .with(file_layer)
        .try_init();
    LogControl { handle: dynamic.then_some(handle), files }
}

impl LogControl {
    pub fn apply(&self, config: &Config) {
        self.files.apply(config.logging_to_file, config.logs_max_total_size_mb);
        if let Some(handle) = &self.handle
            && handle.reload(filter_for(config)).is_err()
        {
            tracing::warn!("could not change the log level");
        }
    }
}

/// What interactive commands log without `RUST_LOG`: warnings and errors, except the login
/// engine's "login failed" warning, which the command itself prints as `Login failed: ...`.
const QUIET_FILTER: &str = "warn,switchyard_auth::login::engine=error";

/// For interactive commands: warnings and errors only (or `RUST_LOG`), so the terminal shows the
/// command's own messages.
pub fn init_quiet() -> Result<(), tracing_subscriber::util::TryInitError> {
    let filter = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| QUIET_FILTER.into());
    tracing_subscriber::registry()
        .with(EnvFilter::new(filter))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false))
        .try_init()
}
