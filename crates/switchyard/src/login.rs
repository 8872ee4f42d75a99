//! `switchyard login <provider>`: a browser login from the terminal, with a paste fallback for
//! machines the browser cannot reach.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_auth::CredentialStore;
use switchyard_auth::login::{Login, LoginEngine, LoginError, LoginOptions, StartOptions, parse_callback_input};
use switchyard_config::ConfigHandle;
use switchyard_providers::Registry;

/// Exit codes, documented in `switchyard login --help`.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const USAGE: u8 = 2;
    pub const PROVIDER_ERROR: u8 = 3;
    pub const TIMEOUT: u8 = 4;
    pub const CANCELLED: u8 = 5;
}

pub struct LoginArgs {
    pub provider: String,
    pub no_browser: bool,
    pub callback_port: Option<u16>,
    pub timeout: Duration,
    pub options: LoginOptions,
}

fn exit_code_for(error: &LoginError) -> u8 {
    match error {
        LoginError::Timeout => exit::TIMEOUT,
        LoginError::Cancelled | LoginError::Denied(_) => exit::CANCELLED,
        _ => exit::PROVIDER_ERROR,
    }
}

pub async fn run(config: Arc<ConfigHandle>, args: LoginArgs) -> ExitCode {
    let current = config.get();
    let registry = Registry::new(&current);
    let http = reqwest::Client::new();
    let login = match registry.login(&args.provider, None, &http).await {
        Ok(Some(Login::Browser(login))) => login,
        Ok(Some(other)) => {
            eprintln!("`switchyard login {}` is not available from the command line yet", other.name());
            return ExitCode::from(exit::USAGE);
        }
        Ok(None) => {
            eprintln!("unknown provider `{}`; available: {}", args.provider, registry.login_names().join(", "));
            return ExitCode::from(exit::USAGE);
        }
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(exit_code_for(&error));
        }
    };
    let auth_dir = current.auth_dir_path();
    let store = match CredentialStore::open(auth_dir.clone()).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("cannot open the auth directory {}: {error}", auth_dir.display());
            return ExitCode::from(exit::USAGE);
        }
    };
    let engine = LoginEngine::new(store, config.clone(), http);
    let options =
        StartOptions { listen: true, callback_port: args.callback_port, timeout: args.timeout, options: args.options };
    let started = match engine.start(login.clone(), options).await {
        Ok(started) => started,
        Err(error) => {
            eprintln!("{error}");
            if let LoginError::PortInUse { port, .. } = &error {
                eprintln!("Another program holds port {port}; free it or pass --callback-port to pick another.");
            }
            return ExitCode::from(exit_code_for(&error));
        }
    };

    let port = started.listener_port.unwrap_or_default();
    println!("Open this URL to log in to {}:\n\n{}\n", login.spec().name, started.url);
    let opened = !args.no_browser && open::that_detached(&started.url).is_ok();
    if !opened {
        println!(
            "If this machine has no browser, open the URL elsewhere. The browser then redirects to\n\
             http://localhost:{port}/...; either forward that port first (ssh -L {port}:127.0.0.1:{port} <this host>)\n\
             or paste the final URL from the browser's address bar here and press Enter."
        );
    } else {
        println!("A browser was opened. If it cannot reach this machine, paste the final URL here and press Enter.");
    }
    let _ = std::io::stdout().flush();

    spawn_paste_reader(engine.clone(), started.state.clone(), login.spec().name.to_owned());
    let waiting = tokio::spawn(show_progress(args.timeout));
    let outcome = tokio::select! {
        outcome = engine.wait(&started.state) => outcome,
        _ = tokio::signal::ctrl_c() => {
            engine.sessions().cancel(&started.state);
            Err(LoginError::Cancelled)
        }
    };
    waiting.abort();
    match outcome {
        Ok(file_name) => {
            let path: PathBuf = auth_dir.join(&file_name);
            eprintln!();
            println!("Logged in. Credential saved to {}", path.display());
            ExitCode::from(exit::SUCCESS)
        }
        Err(error) => {
            eprintln!("\nLogin failed: {error}");
            ExitCode::from(exit_code_for(&error))
        }
    }
}

/// Reads pasted callback URLs from stdin (on a plain thread: stdin reads block) and hands each
/// to the login session, exactly like the local listener would.
fn spawn_paste_reader(engine: Arc<LoginEngine>, state: String, provider: String) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match parse_callback_input(line) {
                Ok(params) => match engine.sessions().deliver(&state, Some(&provider), params) {
                    Ok(()) => break,
                    Err(error) => eprintln!("That URL was not accepted: {}", error.message()),
                },
                Err(error) => eprintln!("That does not look like the callback URL: {error}"),
            }
        }
    });
}

/// A waiting line with the time left, redrawn in place on a terminal.
async fn show_progress(timeout: Duration) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let left = timeout.saturating_sub(started.elapsed()).as_secs();
        eprint!("\rWaiting for the login to finish… {:02}:{:02} left ", left / 60, left % 60);
        let _ = std::io::stderr().flush();
    }
}
