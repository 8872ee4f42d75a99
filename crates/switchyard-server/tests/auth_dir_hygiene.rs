//! Auth-dir entries that are not regular files (or are over the 1 MiB cap) over HTTP: listed
//! with their reason, never accounts, and their download answers a 409 at once — a symlink is
//! never followed, a FIFO never waited on.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use common::{json, start};
use reqwest::Method;
use serde_json::Value;

fn mkfifo(path: &std::path::Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a directory entry.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "{}", std::io::Error::last_os_error());
}

#[tokio::test]
async fn refused_entries_are_listed_with_their_reason_and_not_downloadable() {
    let server = start().await;
    let outside = server.auth_dir.parent().unwrap().join("outside-secret.json");
    std::fs::write(&outside, br#"{"type":"claude","access_token":"outside-token"}"#).unwrap();
    std::os::unix::fs::symlink(&outside, server.file("claude-link.json")).unwrap();
    mkfifo(&server.file("claude-fifo.json"));
    std::fs::write(server.file("claude-big.json"), vec![b' '; 2 * 1024 * 1024]).unwrap();
    std::fs::write(server.file("claude-ok.json"), br#"{"type":"claude","access_token":"t"}"#).unwrap();
    server.state.store.rescan().await.unwrap();

    let (status, body) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    assert_eq!(status, 200);
    let files = body["files"].as_array().unwrap();
    let entry = |name: &str| -> &Value {
        files.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {body}"))
    };
    for (name, reason) in [
        ("claude-link.json", "not a regular file (symlink)"),
        ("claude-fifo.json", "not a regular file (FIFO)"),
        ("claude-big.json", "larger than the 1 MiB cap"),
    ] {
        let file = entry(name);
        assert_eq!(file["status"], "error", "{file}");
        assert_eq!(file["status_message"], reason, "{file}");
        assert_eq!(file["unavailable"], true);
        assert_eq!(file["refused"], true);
        assert_eq!(file["type"], "unknown", "never read, so no type: {file}");
    }
    assert_eq!(entry("claude-ok.json")["status"], "active");
    assert!(!body.to_string().contains("outside-token"), "the link was followed: {body}");

    // Download: a precise 409, at once (the FIFO has no writer: a blocking open would hang).
    for (name, reason) in [
        ("claude-link.json", "not a regular file (symlink)"),
        ("claude-fifo.json", "not a regular file (FIFO)"),
        ("claude-big.json", "larger than the 1 MiB cap"),
    ] {
        let (status, body) =
            json(server.mgmt(Method::GET, &format!("/auth-files/download?name={name}")).send().await.unwrap()).await;
        assert_eq!(status, 409, "{name}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(name) && message.contains(reason), "{message}");
        assert!(!body.to_string().contains("outside-token"));
    }

    // Status and field edits are refused too, and nothing reaches the link's target.
    let (status, _) = json(
        server
            .mgmt(Method::PATCH, "/auth-files/status")
            .json(&serde_json::json!({"name": "claude-link.json", "disabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(std::fs::read(&outside).unwrap(), br#"{"type":"claude","access_token":"outside-token"}"#);
}

#[tokio::test]
async fn many_fifos_do_not_starve_file_io() {
    let server = start().await;
    // More FIFOs than the blocking pool has threads (512): with blocking opens, each read
    // would pin a thread forever and the listing / downloads below would never answer.
    for i in 0..600 {
        mkfifo(&server.file(&format!("fifo-{i}.json")));
    }
    server.state.store.rescan().await.unwrap();
    for i in (0..600).step_by(50) {
        let response =
            server.mgmt(Method::GET, &format!("/auth-files/download?name=fifo-{i}.json")).send().await.unwrap();
        assert_eq!(response.status(), 409);
    }
    std::fs::write(server.file("claude-ok.json"), br#"{"type":"claude","access_token":"t"}"#).unwrap();
    server.state.store.rescan().await.unwrap();
    let response = server.mgmt(Method::GET, "/auth-files/download?name=claude-ok.json").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, body) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    assert_eq!(body["files"].as_array().unwrap().len(), 601);
}
