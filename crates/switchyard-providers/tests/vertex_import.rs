//! The Vertex service-account import through the real engine and store: the file CPA writes,
//! every bad key refused with a precise message and nothing saved (an existing file untouched),
//! re-imports keeping user fields, and how the provider presents the import to the registry.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{Imported, Login, LoginEngine, LoginError, LoginOptions};
use switchyard_config::ConfigHandle;
use switchyard_providers::executor::TokenSource;
use switchyard_providers::{AskKind, LoginKind, Registry, by_id};
use switchyard_testkit::google_sa::{self, EC_PRIVATE_KEY, TEST_PRIVATE_KEY};
use tempfile::TempDir;

const PROJECT: &str = "acme-prod-42";
const EMAIL: &str = "switchyard@acme-prod-42.iam.gserviceaccount.com";
const FILE: &str = "vertex-acme-prod-42.json";

struct Env {
    dir: TempDir,
    engine: Arc<LoginEngine>,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open(dir.path().join("auths")).await.unwrap();
        let engine =
            LoginEngine::new(store, Arc::new(ConfigHandle::embedded()), Arc::new(switchyard_http::HttpClients::new()));
        Env { dir, engine }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("auths").join(name)
    }

    /// Every file in the auth dir with its bytes.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.dir.path().join("auths"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    }

    async fn import(&self, file: Option<&[u8]>, options: &[(&str, &str)]) -> Result<Imported, LoginError> {
        let login = match Registry::new(&Default::default()).login("vertex", None, &reqwest::Client::new()).await {
            Ok(Some(Login::Import(login))) => login,
            _ => panic!("vertex has an import login"),
        };
        let options: LoginOptions = options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.engine.import(&*login, file, &options).await
    }
}

fn key() -> Map<String, Value> {
    google_sa::service_account(PROJECT, EMAIL)
}

fn bytes(map: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec_pretty(map).unwrap()
}

fn with(mut map: Map<String, Value>, field: &str, value: Value) -> Map<String, Value> {
    map.insert(field.into(), value);
    map
}

fn without(mut map: Map<String, Value>, field: &str) -> Map<String, Value> {
    map.remove(field);
    map
}

#[tokio::test]
async fn a_good_key_becomes_cpas_vertex_file() {
    let env = Env::new().await;
    let imported = env.import(Some(&bytes(&key())), &[]).await.unwrap();
    assert_eq!(imported.file_name, FILE);

    let on_disk: Value = serde_json::from_slice(&std::fs::read(env.path(FILE)).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        json!({
            "service_account": Value::Object(key()),
            "project_id": PROJECT,
            "email": EMAIL,
            "location": "us-central1",
            "type": "vertex",
            "label": format!("{PROJECT} ({EMAIL})"),
        }),
        "exactly CPA's fields, the whole key kept, no token"
    );
    let mode = std::fs::metadata(env.path(FILE)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(imported.credential.str_field("location"), Some("us-central1"));
}

#[tokio::test]
async fn location_and_prefix_shape_the_file() {
    let env = Env::new().await;
    let imported = env.import(Some(&bytes(&key())), &[("location", " europe-west4 "), ("prefix", "vx")]).await.unwrap();
    assert_eq!(imported.file_name, "vertex-vx-acme-prod-42.json");
    let fields = imported.credential.fields();
    assert_eq!(fields["location"], "europe-west4");
    assert_eq!(fields["prefix"], "vx");

    // CPA's sanitiser for odd project ids: `/`, `\`, `:` → `_`, space → `-`.
    let odd = with(key(), "project_id", json!("org:team/a b"));
    assert_eq!(env.import(Some(&bytes(&odd)), &[]).await.unwrap().file_name, "vertex-org_team_a-b.json");
}

/// One bad input and what the refusal must say.
struct Bad {
    what: &'static str,
    file: Option<Vec<u8>>,
    options: Vec<(&'static str, &'static str)>,
    says: &'static [&'static str],
}

fn bad(what: &'static str, file: Vec<u8>, says: &'static [&'static str]) -> Bad {
    Bad { what, file: Some(file), options: Vec::new(), says }
}

fn bad_inputs() -> Vec<Bad> {
    let oauth_client = json!({"installed": {"client_id": "1234-abc.apps.googleusercontent.com",
        "client_secret": "GOCSPX-not-a-real-secret-0000", "redirect_uris": ["http://localhost"]}});
    let user = json!({"type": "authorized_user", "client_id": "x", "client_secret": "y", "refresh_token": "1//0g-rt"});
    let truncated_pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
    vec![
        bad(
            "not JSON",
            b"{\n  \"type\": \"service_account\",\n  \"private_key\": ]\n}".to_vec(),
            &["invalid json: the service-account key is not valid JSON (expected value at line 3 column "],
        ),
        bad("a JSON array", b"[1, 2]".to_vec(), &["invalid json: ", "must be a JSON object, not an array"]),
        bad(
            "an OAuth client file",
            serde_json::to_vec(&oauth_client).unwrap(),
            &["invalid service account: this is an OAuth client file"],
        ),
        bad(
            "a user credential",
            serde_json::to_vec(&user).unwrap(),
            &["invalid service account: this is a user credential"],
        ),
        bad("no type", bytes(&without(key(), "type")), &["invalid service account: `type` is missing"]),
        bad(
            "another type",
            bytes(&with(key(), "type", json!("api_key"))),
            &["invalid service account: `type` is \"api_key\", expected \"service_account\""],
        ),
        bad("a numeric type", bytes(&with(key(), "type", json!(7))), &["`type` is a number"]),
        bad(
            "no private key",
            bytes(&without(key(), "private_key")),
            &["invalid service account: private_key is missing"],
        ),
        bad("a blank private key", bytes(&with(key(), "private_key", json!("  "))), &["private_key is missing"]),
        bad(
            "a private key without PEM",
            bytes(&with(key(), "private_key", json!("MIIEvQIBADANBgkq"))),
            &["invalid service account: private_key is not an RSA private key in PEM form: no PEM block"],
        ),
        bad(
            "an EC key",
            bytes(&with(key(), "private_key", json!(EC_PRIVATE_KEY))),
            &["private_key is not an RSA private key in PEM form: the PEM block holds no RSA key"],
        ),
        bad(
            "a truncated RSA key",
            bytes(&with(key(), "private_key", json!(truncated_pem))),
            &["private_key is not an RSA private key in PEM form: "],
        ),
        bad(
            "no client_email",
            bytes(&without(key(), "client_email")),
            &["invalid service account: client_email is missing"],
        ),
        bad("no project_id", bytes(&without(key(), "project_id")), &["project_id missing: "]),
        Bad {
            what: "a location that is no region",
            file: Some(bytes(&key())),
            options: vec![("location", "us-central1.evil.example")],
            says: &["invalid location: \"us-central1.evil.example\" is not a region name"],
        },
        Bad {
            what: "a prefix with a slash",
            file: Some(bytes(&key())),
            options: vec![("prefix", "../x")],
            says: &["invalid prefix: \"../x\""],
        },
        Bad { what: "no file", file: None, options: Vec::new(), says: &["file required"] },
    ]
}

#[tokio::test]
async fn every_bad_key_is_refused_precisely_and_nothing_is_saved() {
    let env = Env::new().await;
    for case in bad_inputs() {
        let error = env.import(case.file.as_deref(), &case.options).await.err().unwrap_or_else(|| {
            panic!("{}: imported", case.what);
        });
        let LoginError::InvalidInput(message) = &error else { panic!("{}: {error:?}", case.what) };
        for expected in case.says {
            assert!(message.contains(expected), "{}: {message:?} lacks {expected:?}", case.what);
        }
        for secret in ["MII", "GOCSPX", "1//0g", "-----END"] {
            assert!(!message.contains(secret), "{}: {message:?} echoes key material", case.what);
        }
        assert!(env.snapshot().is_empty(), "{}: something was saved", case.what);
    }
}

#[tokio::test]
async fn a_bad_import_leaves_the_existing_file_untouched() {
    let env = Env::new().await;
    env.import(Some(&bytes(&key())), &[]).await.unwrap();
    let before = env.snapshot();
    let broken = with(key(), "private_key", json!(EC_PRIVATE_KEY));
    let error = env.import(Some(&bytes(&broken)), &[("location", "europe-west4")]).await.unwrap_err();
    assert!(matches!(error, LoginError::InvalidInput(_)), "{error:?}");
    assert_eq!(env.snapshot(), before, "the stored account is byte for byte what it was");
}

#[tokio::test]
async fn importing_again_replaces_the_key_and_keeps_user_fields() {
    let env = Env::new().await;
    env.import(Some(&bytes(&key())), &[]).await.unwrap();
    let mut edited: Map<String, Value> = serde_json::from_slice(&std::fs::read(env.path(FILE)).unwrap()).unwrap();
    edited.insert("priority".into(), json!(7));
    edited.insert("disabled".into(), json!(true));
    std::fs::write(env.path(FILE), serde_json::to_vec(&edited).unwrap()).unwrap();

    let rotated = with(key(), "private_key_id", json!("1111111111111111111111111111111111111111"));
    let imported = env.import(Some(&bytes(&rotated)), &[("location", "global")]).await.unwrap();
    assert_eq!(imported.file_name, FILE);
    let fields = imported.credential.fields();
    assert_eq!(fields["location"], "global");
    assert_eq!(fields["service_account"]["private_key_id"], "1111111111111111111111111111111111111111");
    assert_eq!((&fields["priority"], &fields["disabled"]), (&json!(7), &json!(true)), "user fields survive");
}

#[tokio::test]
async fn an_exported_vertex_file_imports_as_its_key() {
    let env = Env::new().await;
    env.import(Some(&bytes(&key())), &[("location", "asia-northeast1")]).await.unwrap();
    let exported = std::fs::read(env.path(FILE)).unwrap();
    let other = Env::new().await;
    let imported = other.import(Some(&exported), &[]).await.unwrap();
    assert_eq!(imported.file_name, FILE);
    assert_eq!(imported.credential.fields()["service_account"], Value::Object(key()));
}

#[tokio::test]
async fn the_provider_offers_one_import_and_serves_from_the_file() {
    let vertex = by_id("vertex").unwrap();
    let methods = vertex.login_methods();
    assert_eq!(methods.len(), 1);
    let method = &methods[0];
    assert_eq!((method.id, method.kind, method.login.name()), ("service-account", LoginKind::Import, "vertex"));
    let asks: Vec<(&str, AskKind, bool, Option<&str>)> =
        method.asks.iter().map(|a| (a.name, a.kind, a.required, a.default)).collect();
    assert_eq!(
        asks,
        vec![
            ("file", AskKind::File, true, None),
            ("location", AskKind::Text, false, Some("us-central1")),
            ("prefix", AskKind::Text, false, None),
        ]
    );
    let endpoints: Vec<(&str, &str)> = vertex.endpoints().iter().map(|e| (e.name, e.default)).collect();
    assert_eq!(
        endpoints,
        vec![("api", "https://{location}-aiplatform.googleapis.com"), ("token", "https://oauth2.googleapis.com/token")]
    );
    assert_eq!(vertex.executor().unwrap().token_source(), TokenSource::Credential);
    assert!(vertex.refresher().is_none(), "tokens live in memory; nothing in the file is ever refreshed");
}

#[test]
fn raw_service_account_uploads_are_recognised_and_nothing_else() {
    let registry = Registry::new(&Default::default());
    let import = registry.import_for_upload(&key()).expect("a raw key is recognised");
    assert_eq!(import.spec().name, "vertex");
    let claude = json!({"type": "claude", "access_token": "x"});
    assert!(registry.import_for_upload(claude.as_object().unwrap()).is_none());
    let vertex_file = json!({"type": "vertex", "service_account": Value::Object(key())});
    assert!(registry.import_for_upload(vertex_file.as_object().unwrap()).is_none(), "a vertex file is stored as is");
    assert!(TEST_PRIVATE_KEY.starts_with("-----BEGIN PRIVATE KEY-----"), "the test key is PKCS#8 like Google's");
}
