//! `switchyard login <login> [--method M]`: any login method of any provider from the terminal.
//! Browser logins wait for the local callback (or a pasted URL), device logins show a code, a
//! QR code and the time left, imports and cookies read what the user hands in. Which flags a
//! method takes comes from its `asks` in the registry; nothing here knows a provider.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Arg, ArgMatches, Command};
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{
    BrowserLogin, DeviceLogin, ImportLogin, Login, LoginEngine, LoginError, LoginOptions, SessionStore, StartOptions,
    parse_callback_input,
};
use switchyard_config::ConfigHandle;
use switchyard_http::HttpClients;
use switchyard_providers::{Ask, AskKind, LoginKind, LoginMethod, Registry};

use crate::terminal;

/// Exit codes, documented in `switchyard login --help`.
pub mod exit {
    pub const SUCCESS: u8 = 0;
    pub const USAGE: u8 = 2;
    pub const PROVIDER_ERROR: u8 = 3;
    pub const TIMEOUT: u8 = 4;
    pub const CANCELLED: u8 = 5;
}

/// Ask names every provider may use, so their flags exist whatever the registry holds today;
/// the asks the registry declares are added to them (see [`ask_flags`]).
const KNOWN_ASKS: &[&str] = &["project_id", "start_url", "region", "alias", "location", "prefix"];
/// Flags of `switchyard login` itself; an ask cannot take these names.
const RESERVED: &[&str] = &["provider", "method", "device", "no-browser", "qr", "callback-port", "timeout", "config"];

pub struct LoginArgs {
    pub provider: String,
    pub method: Option<String>,
    pub no_browser: bool,
    /// Draw the QR code even when stdout is not a terminal.
    pub qr: bool,
    pub callback_port: Option<u16>,
    pub timeout: Duration,
    /// The ask flags given on the command line, by ask name.
    pub options: LoginOptions,
}

/// `--project-id` for the ask `project_id`.
fn flag_of(ask: &str) -> String {
    ask.replace('_', "-")
}

/// Every ask any built-in login method declares, by name (Secret asks are read from stdin,
/// never from argv, so they have no flag).
fn declared_asks() -> Vec<(String, Ask, String)> {
    let mut asks = Vec::new();
    for provider in switchyard_providers::all() {
        for method in provider.login_methods() {
            for ask in method.asks.iter().filter(|a| a.kind != AskKind::Secret) {
                asks.push((ask.name.to_owned(), *ask, format!("{} --method {}", method.login.name(), method.id)));
            }
        }
    }
    asks
}

/// One `--<ask>` flag per ask name: the known ones and every one the registry declares, with
/// help naming the login methods that take it.
pub fn ask_flags() -> Vec<Arg> {
    let declared = declared_asks();
    let mut names: Vec<String> = KNOWN_ASKS.iter().map(|n| (*n).to_owned()).collect();
    for (name, ..) in &declared {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
        .into_iter()
        .filter(|name| !RESERVED.contains(&flag_of(name).as_str()))
        .map(|name| {
            let users: Vec<&(String, Ask, String)> = declared.iter().filter(|(n, ..)| *n == name).collect();
            let help = match users.first() {
                Some((_, ask, _)) => {
                    let methods: Vec<&str> = users.iter().map(|(.., m)| m.as_str()).collect();
                    format!("{} (for {})", ask.label, methods.join("; "))
                }
                None => format!("Login option `{name}` (no built-in login asks for it yet)"),
            };
            let file = users.iter().any(|(_, ask, _)| ask.kind == AskKind::File);
            Arg::new(name.clone())
                .long(flag_of(&name))
                .value_name(if file { "PATH" } else { "VALUE" })
                .help(help)
                .help_heading("Login options")
        })
        .collect()
}

/// The ask flags found in `matches`, by ask name.
pub fn ask_values(matches: &ArgMatches) -> LoginOptions {
    let mut options = LoginOptions::new();
    for arg in ask_flags() {
        let id = arg.get_id().as_str().to_owned();
        if let Ok(Some(value)) = matches.try_get_one::<String>(&id) {
            options.insert(id, value.clone());
        }
    }
    options
}

/// The names a login answers to (its own, then its aliases).
fn names_of(login: &Login) -> Vec<&str> {
    let (name, aliases) = match login {
        Login::Browser(l) => (l.spec().name, l.spec().aliases),
        Login::Device(l) => (l.spec().name, l.spec().aliases),
        Login::Import(l) => (l.spec().name, l.spec().aliases),
    };
    std::iter::once(name).chain(aliases.iter().copied()).collect()
}

/// The generated part of `switchyard login --help`: every login, its methods and their flags.
pub fn login_catalogue() -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for provider in switchyard_providers::all() {
        let methods = provider.login_methods();
        for method in &methods {
            let names = names_of(&method.login);
            let login = match &names[..] {
                [name] => (*name).to_owned(),
                [name, aliases @ ..] => format!("{name} ({})", aliases.join(", ")),
                [] => continue,
            };
            let asks: Vec<String> = method
                .asks
                .iter()
                .map(|ask| match ask.kind {
                    AskKind::Secret => format!("{} from stdin", ask.name),
                    _ if ask.required => format!("--{}", flag_of(ask.name)),
                    _ => format!("[--{}]", flag_of(ask.name)),
                })
                .collect();
            let default = Registry::new(&Default::default())
                .method(names[0], None)
                .ok()
                .flatten()
                .is_some_and(|default| default.id == method.id);
            let kind = kind_name(method.kind);
            let mut text = if method.id == kind { kind.to_owned() } else { format!("{} ({kind})", method.id) };
            if default {
                text.push('*');
            }
            if !asks.is_empty() {
                text.push_str(&format!(" {}", asks.join(" ")));
            }
            match rows.iter_mut().find(|(l, _)| *l == login) {
                Some((_, list)) => list.push(text),
                None => rows.push((login, vec![text])),
            }
        }
    }
    let width = rows.iter().map(|(login, _)| login.len()).max().unwrap_or(0);
    let mut out = String::from("Logins and their methods (* = the default, used without --method):\n");
    for (login, methods) in rows {
        out.push_str(&format!("  {login:width$}  {}\n", methods.join(", ")));
    }
    out.push_str("  and every `oauth-providers` entry of the config: browser\n");
    out
}

/// How a login kind is called in help texts and tables (as in the capability JSON).
pub fn kind_name(kind: LoginKind) -> &'static str {
    match kind {
        LoginKind::Browser => "browser",
        LoginKind::Device => "device",
        LoginKind::Import => "import",
        LoginKind::Cookie => "cookie",
    }
}

fn exit_code_for(error: &LoginError) -> u8 {
    match error {
        LoginError::Timeout | LoginError::DeviceCodeExpired => exit::TIMEOUT,
        LoginError::Cancelled | LoginError::Denied(_) => exit::CANCELLED,
        // What the user handed in is unusable or stored already: trying again cannot help
        // (as `switchyard import` answers the same errors).
        LoginError::InvalidInput(_) | LoginError::Duplicate { .. } => exit::USAGE,
        _ => exit::PROVIDER_ERROR,
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("switchyard login: {message}");
    ExitCode::from(exit::USAGE)
}

/// The given options checked against what `method` asks: no flag it does not take, every
/// required one present (defaults filled in), Secret asks read from stdin.
async fn options_for(login: &str, method: &LoginMethod, mut given: LoginOptions) -> Result<LoginOptions, String> {
    let what = format!("`{login} --method {}`", method.id);
    let takes: Vec<String> =
        method.asks.iter().filter(|a| a.kind != AskKind::Secret).map(|a| format!("--{}", flag_of(a.name))).collect();
    if let Some(name) =
        given.keys().find(|name| !method.asks.iter().any(|a| a.name == *name && a.kind != AskKind::Secret))
    {
        let accepted = if takes.is_empty() { "no options".to_owned() } else { takes.join(", ") };
        return Err(format!("--{} is not an option of {what}; it takes {accepted}", flag_of(name)));
    }
    let not_given: Vec<&Ask> =
        method.asks.iter().filter(|a| a.kind != AskKind::Secret && !given.contains_key(a.name)).collect();
    for ask in not_given {
        match ask.default {
            Some(default) => {
                given.insert(ask.name.to_owned(), default.to_owned());
            }
            None if ask.required => return Err(format!("{what} needs --{} ({})", flag_of(ask.name), ask.label)),
            None => {}
        }
    }
    // Secrets last, so nobody pastes a cookie for a command that then fails on a missing flag.
    for ask in method.asks.iter().filter(|a| a.kind == AskKind::Secret) {
        let value = read_secret(ask).await?;
        if value.is_empty() && ask.required {
            return Err(format!("{what} needs the {} (read from stdin); nothing was given", ask.label));
        }
        if !value.is_empty() {
            given.insert(ask.name.to_owned(), value);
        }
    }
    Ok(given)
}

/// A secret (a cookie) from stdin, never from argv, where `ps` and shell history would see it.
async fn read_secret(ask: &Ask) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        eprint!("{} (paste it and press Enter): ", ask.label);
        let _ = std::io::stderr().flush();
    }
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| format!("cannot read stdin: {e}"))?
    .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(line.trim().to_owned())
}

pub async fn run(config: Arc<ConfigHandle>, args: LoginArgs) -> ExitCode {
    let current = config.get();
    let registry = Registry::new(&current);
    // Logins reach the provider through the global `proxy-url`, as the server's do.
    let http_clients = Arc::new(HttpClients::new());
    let http = match http_clients.global(&current).await {
        Ok(http) => http,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let name = args.provider.clone();
    // A built-in login: its method, with what it asks. A configured provider: its browser login.
    let (login, asks, options) = match registry.method(&name, args.method.as_deref()) {
        Err(error) => return usage(&error.to_string()),
        Ok(Some(method)) => match options_for(&name, &method, args.options.clone()).await {
            Ok(options) => (method.login, method.asks, options),
            Err(message) => return usage(&message),
        },
        Ok(None) => {
            if let Some(flag) = args.options.keys().next() {
                return usage(&format!("--{} is not an option of `{name}`; it takes no options", flag_of(flag)));
            }
            match registry.login(&name, args.method.as_deref(), &http).await {
                Ok(Some(login)) => (login, &[][..], LoginOptions::new()),
                Ok(None) => {
                    let known = registry.login_names().join(", ");
                    return usage(&format!("unknown provider `{name}`; available: {known}"));
                }
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::from(exit_code_for(&error));
                }
            }
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
    let engine = LoginEngine::new(store, config.clone(), http_clients);
    let mut interrupt = terminal::Interrupt::new();
    let outcome = match login {
        Login::Browser(login) => browser(&engine, login, &args, options, &mut interrupt).await,
        Login::Device(login) => device(&engine, login, &args, options, &mut interrupt).await,
        Login::Import(login) => import(&engine, login.as_ref(), asks, options).await,
    };
    match outcome {
        Ok(file_name) => {
            let path: PathBuf = auth_dir.join(&file_name);
            println!("Logged in. Credential saved to {}", path.display());
            ExitCode::from(exit::SUCCESS)
        }
        Err(error) => {
            eprintln!("Login failed: {error}");
            ExitCode::from(exit_code_for(&error))
        }
    }
}

/// A browser login: the local callback listener (unless the provider redirects to a custom
/// scheme), the URL to open, and a pasted URL as the fallback.
async fn browser(
    engine: &Arc<LoginEngine>,
    login: Arc<dyn BrowserLogin>,
    args: &LoginArgs,
    options: LoginOptions,
    interrupt: &mut terminal::Interrupt,
) -> Result<String, LoginError> {
    let start = StartOptions { listen: true, callback_port: args.callback_port, timeout: args.timeout, options };
    let started = engine.start(login.clone(), start).await.inspect_err(|error| {
        if let LoginError::PortInUse { port, .. } = error {
            eprintln!("Another program holds port {port}; free it or pass --callback-port to pick another.");
        }
    })?;
    println!("Open this URL to log in to {}:\n\n{}\n", login.spec().name, started.url);
    let opened = !args.no_browser && open::that_detached(&started.url).is_ok();
    match started.listener_port {
        None => println!(
            "This login ends on a page of the provider's app ({}), which nothing on this machine can\n\
             receive: when the browser gets there (or says it cannot open it), copy that URL from the\n\
             address bar, paste it here and press Enter.",
            started.redirect_uri
        ),
        Some(port) if !opened => println!(
            "If this machine has no browser, open the URL elsewhere. The browser then redirects to\n\
             http://localhost:{port}/...; either forward that port first (ssh -L {port}:127.0.0.1:{port} <this host>)\n\
             or paste the final URL from the browser's address bar here and press Enter."
        ),
        Some(_) => {
            println!("A browser was opened. If it cannot reach this machine, paste the final URL here and press Enter.")
        }
    }
    let _ = std::io::stdout().flush();

    spawn_paste_reader(engine.clone(), started.state.clone(), login.spec().name.to_owned());
    let deadline = Instant::now() + args.timeout;
    wait(engine, &started.state, "Waiting for the login to finish…", deadline, interrupt).await
}

/// A device login: the code, where to enter it (with a QR code of the URL), the time left.
async fn device(
    engine: &Arc<LoginEngine>,
    login: Arc<dyn DeviceLogin>,
    args: &LoginArgs,
    options: LoginOptions,
    interrupt: &mut terminal::Interrupt,
) -> Result<String, LoginError> {
    let name = login.spec().name.to_owned();
    let started = engine.start_device(login, options).await?;
    let uri = started.display_uri().to_owned();
    println!("To log in to {name}, open this page and confirm the code {}:\n\n{uri}\n", started.user_code);
    println!("Code: {}", started.user_code);
    if args.qr || std::io::stdout().is_terminal() {
        match terminal::qr_code(&uri) {
            Some(qr) => println!("\nOr scan it:\n{qr}"),
            None => println!("(the address is too long for a QR code)"),
        }
    }
    println!("The code expires in {}.", terminal::minutes_seconds(started.expires_in));
    if !args.no_browser && open::that_detached(&uri).is_ok() {
        println!("A browser was opened on that page.");
    }
    let _ = std::io::stdout().flush();
    let deadline = Instant::now() + started.expires_in;
    wait(engine, &started.state, "Waiting for you to confirm the code…", deadline, interrupt).await
}

/// An import or cookie login: the file a File ask names is read, the rest are options.
async fn import(
    engine: &LoginEngine,
    login: &dyn ImportLogin,
    asks: &[Ask],
    mut options: LoginOptions,
) -> Result<String, LoginError> {
    let file_ask = asks.iter().find(|ask| ask.kind == AskKind::File && options.contains_key(ask.name));
    let file = match file_ask.and_then(|ask| options.remove(ask.name)) {
        Some(path) => {
            // A File ask's default may live under HOME (`~/.aws/sso/cache/...`).
            let path = crate::import::expand_home(&path);
            let read = tokio::fs::read(&path).await;
            Some(read.map_err(|e| LoginError::InvalidInput(format!("cannot read {}: {e}", path.display())))?)
        }
        None => None,
    };
    let imported = engine.import(login, file.as_deref(), &options).await?;
    Ok(imported.file_name)
}

/// Waits for the session to end; Ctrl-C cancels it (nothing is saved). On a terminal the time
/// left is redrawn in place.
async fn wait(
    engine: &Arc<LoginEngine>,
    state: &str,
    waiting: &str,
    deadline: Instant,
    interrupt: &mut terminal::Interrupt,
) -> Result<String, LoginError> {
    let progress = tokio::spawn(terminal::show_progress(waiting.to_owned(), deadline));
    let outcome = tokio::select! {
        outcome = engine.wait(state) => outcome,
        () = interrupt.recv() => {
            // A login already saving cannot be cancelled; it then ends on its own.
            if engine.sessions().cancel(state) { Err(LoginError::Cancelled) } else { engine.wait(state).await }
        }
    };
    progress.abort();
    terminal::end_progress();
    outcome
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
            match deliver_pasted(engine.sessions(), &state, &provider, line) {
                Ok(()) => break,
                Err(refusal) => eprintln!("{refusal}"),
            }
        }
    });
}

/// Hands one pasted line to the session of `state`, or says why it was not taken (the login
/// then keeps waiting). A URL carrying another login's state is refused here, as the listener
/// and the management API refuse it, instead of failing this login with a state mismatch.
fn deliver_pasted(sessions: &SessionStore, state: &str, provider: &str, line: &str) -> Result<(), String> {
    let params = parse_callback_input(line).map_err(|e| format!("That does not look like the callback URL: {e}"))?;
    if params.state.as_deref().is_some_and(|pasted| pasted != state) {
        return Err("That URL was not accepted: it belongs to another login (its state does not match); \
                    paste the URL this login ended on."
            .into());
    }
    sessions.deliver(state, Some(provider), params).map_err(|e| format!("That URL was not accepted: {}", e.message()))
}

/// Adds the generated parts to `switchyard login`: the ask flags and the login catalogue.
pub fn extend_command(login: Command) -> Command {
    let after = format!(
        "{}\nIf the browser runs on another machine, paste the URL it ends on (even an error page at \
         http://localhost:...) into this terminal and press Enter.",
        login_catalogue()
    );
    login.args(ask_flags()).after_help(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_ask_has_a_flag_and_no_ask_shadows_a_login_flag() {
        let flags: Vec<String> = ask_flags().iter().filter_map(|a| a.get_long().map(str::to_owned)).collect();
        for known in KNOWN_ASKS {
            assert!(flags.contains(&flag_of(known)), "--{} missing", flag_of(known));
        }
        for (name, ask, method) in declared_asks() {
            assert!(!RESERVED.contains(&flag_of(&name).as_str()), "{method} asks `{name}`, a flag of login itself");
            assert!(flags.contains(&flag_of(&name)), "{method}: no flag for {}", ask.name);
        }
        let unique: std::collections::HashSet<&String> = flags.iter().collect();
        assert_eq!(unique.len(), flags.len(), "one flag per ask name: {flags:?}");
    }

    #[test]
    fn the_catalogue_lists_every_builtin_login() {
        let text = login_catalogue();
        for provider in switchyard_providers::all() {
            for method in provider.login_methods() {
                assert!(text.contains(method.login.name()), "{} missing:\n{text}", method.login.name());
            }
        }
    }

    /// An import taking a JSON key file and a `location`.
    struct KeyImport;

    #[async_trait::async_trait]
    impl ImportLogin for KeyImport {
        fn spec(&self) -> switchyard_auth::login::ImportSpec<'_> {
            switchyard_auth::login::ImportSpec { name: "keyed", aliases: &[] }
        }

        async fn import(
            &self,
            _ctx: &switchyard_auth::login::LoginContext,
            input: switchyard_auth::login::ImportInput<'_>,
        ) -> Result<switchyard_auth::login::LoginOutcome, LoginError> {
            let file = input.file.ok_or_else(|| LoginError::InvalidInput("a key file is required".into()))?;
            let key: serde_json::Value = serde_json::from_slice(file)
                .map_err(|_| LoginError::InvalidInput("the key file is not JSON".into()))?;
            let mut credential = switchyard_auth::Credential::new("keyed");
            credential.fields_mut().insert("project_id".into(), key["project_id"].clone());
            for (name, value) in input.options {
                credential.fields_mut().insert(name.clone(), value.clone().into());
            }
            Ok(switchyard_auth::login::LoginOutcome { file_name: "keyed-p1.json".into(), credential })
        }
    }

    #[tokio::test]
    async fn imports_read_the_file_their_file_ask_names_and_pass_the_other_options() {
        const ASKS: &[Ask] = &[
            Ask { name: "file", label: "Key file", kind: AskKind::File, required: true, default: None },
            Ask { name: "location", label: "Location", kind: AskKind::Text, required: false, default: None },
        ];
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("key.json");
        std::fs::write(&key, br#"{"project_id": "p1"}"#).unwrap();
        let store = CredentialStore::open(tmp.path().join("auths")).await.unwrap();
        let engine = LoginEngine::new(store, Arc::new(ConfigHandle::embedded()), Arc::new(HttpClients::new()));
        let options: LoginOptions = [("file", key.display().to_string()), ("location", "eu".to_owned())]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();

        assert_eq!(import(&engine, &KeyImport, ASKS, options.clone()).await.unwrap(), "keyed-p1.json");
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("auths/keyed-p1.json")).unwrap()).unwrap();
        assert_eq!(saved["project_id"], "p1");
        assert_eq!(saved["location"], "eu");
        assert!(saved.get("file").is_none(), "the path is read, not stored");

        let mut missing = options;
        missing.insert("file".into(), "/nonexistent/key.json".into());
        let error = import(&engine, &KeyImport, ASKS, missing).await.unwrap_err();
        assert!(matches!(&error, LoginError::InvalidInput(m) if m.starts_with("cannot read /nonexistent/key.json")));
        assert_eq!(exit_code_for(&error), exit::USAGE);
    }

    #[tokio::test]
    async fn a_pasted_url_of_another_login_is_refused_and_the_login_keeps_waiting() {
        let sessions = SessionStore::new();
        let waiter = sessions.register("kiro", "s-right");
        let url = |state: &str| format!("kiro://kiro.kiroAgent/authenticate-success?code=c-1&state={state}");

        let refused = deliver_pasted(&sessions, "s-right", "kiro", &url("s-other")).unwrap_err();
        assert!(refused.contains("it belongs to another login (its state does not match)"), "{refused}");
        assert!(!refused.contains("c-1") && !refused.contains("s-other"), "no code or state in {refused}");
        let garbage = deliver_pasted(&sessions, "s-right", "kiro", "not a callback").unwrap_err();
        assert!(garbage.starts_with("That does not look like the callback URL"), "{garbage}");

        deliver_pasted(&sessions, "s-right", "kiro", &url("s-right")).unwrap();
        let params = waiter.wait(Duration::from_secs(5)).await.unwrap();
        assert_eq!((params.code.as_deref(), params.state.as_deref()), (Some("c-1"), Some("s-right")));
        let again = deliver_pasted(&sessions, "s-right", "kiro", &url("s-right")).unwrap_err();
        assert_eq!(again, "That URL was not accepted: oauth callback already received");
    }

    #[test]
    fn unusable_or_stored_input_is_exit_2_like_import() {
        assert_eq!(exit_code_for(&LoginError::Duplicate { existing_file: "iflow-a.json".into() }), exit::USAGE);
        assert_eq!(exit_code_for(&LoginError::InvalidInput("cookie missing BXAuth field".into())), exit::USAGE);
        assert_eq!(exit_code_for(&LoginError::Provider("HTTP 502".into())), exit::PROVIDER_ERROR);
        assert_eq!(exit_code_for(&LoginError::Denied("access_denied".into())), exit::CANCELLED);
    }

    #[tokio::test]
    async fn options_are_checked_against_the_methods_asks() {
        const ASKS: &[Ask] = &[
            Ask { name: "start_url", label: "Start URL", kind: AskKind::Text, required: true, default: None },
            Ask { name: "region", label: "Region", kind: AskKind::Text, required: false, default: Some("us-east-1") },
        ];
        let kimi = Registry::new(&Default::default()).method("kimi", None).unwrap().unwrap();
        let method = LoginMethod { asks: ASKS, id: "idc", ..kimi };
        let given = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();

        let filled = options_for("x", &method, given(&[("start_url", "https://d.awsapps.com/start")])).await.unwrap();
        assert_eq!(filled.get("region").map(String::as_str), Some("us-east-1"), "defaults are filled in");
        let missing = options_for("x", &method, given(&[])).await.unwrap_err();
        assert_eq!(missing, "`x --method idc` needs --start-url (Start URL)");
        let unknown = options_for("x", &method, given(&[("start_url", "u"), ("project_id", "p")])).await.unwrap_err();
        assert_eq!(unknown, "--project-id is not an option of `x --method idc`; it takes --start-url, --region");
    }
}
