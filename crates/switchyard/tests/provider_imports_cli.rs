//! iFlow's logins and Kiro's imports from the real `switchyard` binary, against the loopback
//! mocks of `switchyard-testkit`: the iFlow browser login through the local listener on the
//! port `oauth-callback-ports` names, the iFlow cookie read from stdin (saved, refused as a
//! duplicate, refused without BXAuth; never echoed), and the Kiro IDE token file imported from a
//! path or from its default place under HOME. Each run ends in the saved file (name, `type`, key
//! fields, 0600) or a precise refusal with nothing written, and the documented exit code.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Home, free_port, open_in_browser, param};
use switchyard_testkit::iflow::{self, MockIflow};

const IFLOW_FILE: &str = "iflow-iflow-user@example.com.json";
const PLATFORM_ACCOUNT: &str = "cookie-user@example.com";

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iflow_browser_login_listens_on_the_configured_port_and_saves_the_api_key() {
    let mock = MockIflow::start().await;
    let port = free_port();
    let home = Home::new(&format!("{}oauth-callback-ports:\n  iflow: {port}\n", mock.upstream_urls_yaml()));
    let mut login = home.spawn(&["login", "iflow", "--no-browser"]);
    let url = login.url().await;
    assert!(url.starts_with(&mock.url(iflow::AUTHORIZE_PATH)), "{url}");
    // iFlow's page reads `redirect`; it points at the listener on the configured port.
    assert_eq!(param(&url, "redirect"), Some(format!("http://localhost:{port}/oauth2callback")));
    let (status, page) = open_in_browser(&url).await;
    assert_eq!(status, 200, "{page}");

    let finished = login.finish().await;
    finished.assert_exit(0);
    let file = home.saved(&finished, IFLOW_FILE);
    assert_eq!(file["type"], "iflow");
    assert_eq!(file["email"], "iflow-user@example.com");
    let api_key = mock.oauth_api_key();
    assert_eq!(file["api_key"], api_key.as_str(), "the key getUserInfo handed out");
    assert!(mock.key_is_live(&api_key));
    for key in ["access_token", "refresh_token", "expired", "last_refresh"] {
        assert!(file[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {file}");
    }
    assert_eq!(file["cookie"], "", "an OAuth file has no cookie");
    assert!(!finished.shows(&api_key) && !finished.shows("mock-iflow-"), "no key, code or token is printed");
    assert_eq!(home.auth_files(), [IFLOW_FILE]);
}

/// What a user copies from the browser: the session's whole Cookie header.
fn browser_cookie(bxauth: &str) -> String {
    format!("theme=dark; BXAuth={bxauth}; _ga=GA1.2.123456789.1700000000; lang=zh-CN")
}

/// `cookie` and its BXAuth value appear nowhere in the run's output.
fn assert_cookie_not_shown(finished: &support::Finished, cookie: &str, bxauth: &str) {
    assert!(!finished.shows(cookie) && !finished.shows(bxauth), "the cookie leaked:\n{finished}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iflow_cookie_from_stdin_saves_a_timestamped_file_and_a_second_paste_is_a_duplicate() {
    let mock = MockIflow::start().await;
    let bxauth = mock.add_cookie_account(PLATFORM_ACCOUNT);
    let cookie = browser_cookie(&bxauth);
    let home = Home::new(&mock.upstream_urls_yaml());

    let before = unix_now();
    let finished = home.run(&["login", "iflow", "--method", "cookie"], &format!("{cookie}\n")).await;
    let after = unix_now();
    finished.assert_exit(0);
    assert_cookie_not_shown(&finished, &cookie, &bxauth);
    let [name] = <[String; 1]>::try_from(home.auth_files()).unwrap_or_else(|f| panic!("one file: {f:?}"));
    let seconds: u64 = name
        .strip_prefix(&format!("iflow-{PLATFORM_ACCOUNT}-"))
        .and_then(|rest| rest.strip_suffix(".json"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("iflow-<email>-<unix s>.json: {name}"));
    assert!((before..=after).contains(&seconds), "{seconds} is the login's time ({before}..={after})");

    let file = home.saved(&finished, &name);
    assert_eq!(file["type"], "iflow");
    assert_eq!(file["email"], PLATFORM_ACCOUNT);
    let api_key = mock.cookie_api_key(&bxauth).unwrap();
    assert_eq!(file["api_key"], api_key.as_str(), "the key the platform issued for this login");
    assert!(mock.key_is_live(&api_key));
    assert_eq!(file["expired"].as_str(), mock.cookie_expire_time(&bxauth).as_deref());
    assert_eq!(file["cookie"], format!("BXAuth={bxauth};"), "only BXAuth is kept of the cookie");
    assert_eq!((file["access_token"].clone(), file["refresh_token"].clone()), (json!(""), json!("")));
    assert!(!finished.shows(&api_key), "the key is not printed");

    // The same cookie again: refused naming the file that has it; nothing is written or asked.
    let snapshot = home.snapshot();
    let platform_calls = mock.count(iflow::API_KEY_PATH);
    let again = home.run(&["login", "iflow", "--method", "cookie"], &format!("{cookie}\n")).await;
    again.assert_exit(2);
    assert!(
        again.stderr.contains(&format!("Login failed: duplicate: this account is already stored as {name}")),
        "{again}"
    );
    assert_cookie_not_shown(&again, &cookie, &bxauth);
    assert_eq!(home.snapshot(), snapshot, "nothing new written");
    assert_eq!(mock.count(iflow::API_KEY_PATH), platform_calls, "the platform was not asked again");
    assert_eq!(mock.cookie_api_key(&bxauth).as_deref(), Some(api_key.as_str()), "the saved key still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iflow_cookies_without_bxauth_or_signed_out_are_refused_with_exit_2() {
    let mock = MockIflow::start().await;
    let home = Home::new(&mock.upstream_urls_yaml());

    let no_bxauth = "theme=dark; SESSIONID=s3cr3t-session-value-0123; lang=zh-CN";
    let finished = home.run(&["login", "iflow", "--method", "cookie"], &format!("{no_bxauth}\n")).await;
    finished.assert_exit(2);
    assert_eq!(finished.stderr.trim_end(), "Login failed: cookie missing BXAuth field", "{finished}");
    assert!(!finished.shows("s3cr3t-session-value-0123"), "the cookie leaked:\n{finished}");
    assert!(mock.requests().is_empty(), "nothing reached the platform");

    let empty = home.run(&["login", "iflow", "--method", "cookie"], "\n").await;
    empty.assert_exit(2);
    assert!(empty.stderr.contains("needs the Cookie of a signed-in platform.iflow.cn session"), "{empty}");

    // A session that was logged out: the platform's refusal, not the cookie, is shown.
    let bxauth = mock.add_cookie_account(PLATFORM_ACCOUNT);
    mock.kill_cookie(&bxauth);
    let cookie = browser_cookie(&bxauth);
    let signed_out = home.run(&["login", "iflow", "--method", "cookie"], &format!("{cookie}\n")).await;
    signed_out.assert_exit(2);
    assert!(signed_out.stderr.contains("Login failed: iFlow platform refused the cookie: "), "{signed_out}");
    assert_cookie_not_shown(&signed_out, &cookie, &bxauth);
    assert!(home.snapshot().is_empty(), "{:?}", home.auth_files());
}

const PROFILE: &str = "arn:aws:codewhisperer:us-east-1:000000000000:profile/IMPORTED01";
/// An unsigned JWT whose claims are `{"email":"ide@example.com"}` (the IDE's tokens are
/// sometimes JWTs; the email names the file).
const IDE_JWT: &str = "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImlkZUBleGFtcGxlLmNvbSJ9.c2ln";

/// The Kiro IDE's token cache after a Google sign-in (camelCase, as the IDE writes it).
fn ide_social_token() -> Value {
    json!({
        "accessToken": "aoaAAAAAGimported-access",
        "refreshToken": "aorAAAAAGimported-refresh",
        "expiresAt": "2030-01-02T03:04:05.000Z",
        "authMethod": "social",
        "provider": "Google",
        "profileArn": PROFILE,
    })
}

/// Runs `switchyard <args>` (no stdin).
async fn run(home: &Home, args: &[&str]) -> support::Finished {
    home.run(args, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiro_import_of_an_ide_token_file_saves_the_snake_case_file() {
    let home = Home::new("");
    let token = ide_social_token();
    let path = home.write("Downloads/kiro-auth-token.json", &serde_json::to_vec_pretty(&token).unwrap());
    let finished = run(&home, &["import", "kiro", path.to_str().unwrap()]).await;
    finished.assert_exit(0);
    let name = "kiro-google-IMPORTED01.json";
    assert!(
        finished.stdout.contains(&format!("Imported. Credential saved to {}", home.auth_dir().join(name).display()))
    );
    assert!(finished.stdout.contains(&format!("  file: {name}")), "{finished}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(home.auth_dir().join(name)).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let file: Value = serde_json::from_slice(&std::fs::read(home.auth_dir().join(name)).unwrap()).unwrap();
    for (key, value) in [
        ("type", "kiro"),
        ("access_token", "aoaAAAAAGimported-access"),
        ("refresh_token", "aorAAAAAGimported-refresh"),
        ("profile_arn", PROFILE),
        ("auth_method", "social"),
        ("provider", "Google"),
        ("region", "us-east-1"),
    ] {
        assert_eq!(file[key], value, "{key}: {file}");
    }
    assert!(file["expires_at"].as_str().is_some_and(|t| t.starts_with("2030-01-02")), "{file}");
    let camel: Vec<&String> =
        file.as_object().unwrap().keys().filter(|k| k.chars().any(|c| c.is_uppercase())).collect();
    assert!(camel.is_empty(), "only snake_case members: {camel:?}");
    assert!(!finished.shows("aoaAAAAAGimported-access") && !finished.shows("aorAAAAAGimported-refresh"));

    // The same token file again: its refresh token is stored already.
    let snapshot = home.snapshot();
    let again = run(&home, &["import", "kiro", path.to_str().unwrap()]).await;
    again.assert_exit(2);
    assert!(again.stderr.contains(&format!("duplicate: this account is already stored as {name}")), "{again}");
    assert!(again.stderr.contains("Nothing was saved."), "{again}");
    assert_eq!(home.snapshot(), snapshot);

    // Not the IDE's file: a precise refusal, nothing saved.
    let ours = home.write("ours.json", br#"{"type": "kiro", "access_token": "x"}"#);
    let refused = run(&home, &["import", "kiro", ours.to_str().unwrap()]).await;
    refused.assert_exit(2);
    assert!(refused.stderr.contains("this is already a Switchyard/CLIProxyAPI auth file"), "{refused}");
    assert_eq!(home.snapshot(), snapshot);
}

/// The IDE's cache after a Builder ID sign-in, at its default place under HOME.
fn write_default_ide_token(home: &Home) {
    let token = json!({
        "accessToken": IDE_JWT,
        "refreshToken": "aorAAAAAGbuilder-refresh",
        "expiresAt": "2030-01-02T03:04:05.000Z",
        "authMethod": "IdC",
        "provider": "BuilderId",
        "clientId": "imported-client-id",
        "clientSecret": "imported-client-secret",
        "region": "us-east-1",
    });
    home.write(".aws/sso/cache/kiro-auth-token.json", &serde_json::to_vec(&token).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiro_import_without_a_file_reads_the_ides_default_path_under_home() {
    let home = Home::new("");
    let missing = run(&home, &["import", "kiro"]).await;
    missing.assert_exit(2);
    let default = home.dir.path().join(".aws/sso/cache/kiro-auth-token.json");
    assert!(missing.stderr.contains(&format!("cannot read {}", default.display())), "{missing}");

    write_default_ide_token(&home);
    let finished = run(&home, &["import", "kiro"]).await;
    finished.assert_exit(0);
    let name = "kiro-builderid-ide@example.com.json";
    assert_eq!(home.auth_files(), [name]);
    assert!(finished.stdout.contains("  email: ide@example.com"), "{finished}");
    let file: Value = serde_json::from_slice(&std::fs::read(home.auth_dir().join(name)).unwrap()).unwrap();
    for (key, value) in [
        ("type", "kiro"),
        ("auth_method", "builder-id"),
        ("client_id", "imported-client-id"),
        ("client_secret", "imported-client-secret"),
        ("region", "us-east-1"),
        ("email", "ide@example.com"),
    ] {
        assert_eq!(file[key], value, "{key}: {file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiro_login_with_the_import_method_reads_the_default_path_too() {
    let home = Home::new("");
    write_default_ide_token(&home);
    let finished = run(&home, &["login", "kiro", "--method", "import"]).await;
    finished.assert_exit(0);
    let file = home.saved(&finished, "kiro-builderid-ide@example.com.json");
    assert_eq!(file["auth_method"], "builder-id");
    assert_eq!(file["refresh_token"], "aorAAAAAGbuilder-refresh");
}
