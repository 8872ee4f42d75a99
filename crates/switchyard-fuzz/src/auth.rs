//! `pasted_callback`, `auth_file`: what users hand to the login code and the store.

use serde_json::{Map, Value};
use switchyard_auth::login::{DeliverError, SessionStore, parse_callback_fields, parse_callback_input};
use switchyard_auth::{Credential, canonical_key};

/// The state of the one login waiting while a pasted callback arrives (corpus inputs carry it).
pub const SESSION_STATE: &str = "fuzz-state-0123456789";

/// Pasted text: the parser never panics; what it returns is trimmed and never blank; a code or
/// an error is there whenever the strict parser accepts; and the callback reaches the waiting
/// login only when its state is that login's state.
pub fn pasted_callback(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let fields = parse_callback_fields(&text);
    let strict = parse_callback_input(&text);
    match (&fields, &strict) {
        (Ok(params), Ok(strict_params)) => {
            assert_eq!(params, strict_params, "the two parsers disagree");
            assert!(params.code.is_some() || params.error.is_some(), "accepted without a code or an error");
        }
        (Ok(params), Err(_)) => assert!(params.code.is_none() && params.error.is_none(), "refused with a code"),
        (Err(a), Err(b)) => assert_eq!(a, b, "the two parsers fail differently"),
        (Err(_), Ok(_)) => panic!("the strict parser accepts what the lenient one refuses"),
    }
    let Ok(params) = fields else { return };
    for value in [&params.code, &params.state, &params.error].into_iter().flatten() {
        assert!(!value.is_empty() && value.trim() == value, "blank or untrimmed value {value:?}");
    }

    let sessions = SessionStore::new();
    let _waiter = sessions.register("fuzz", SESSION_STATE);
    let Some(state) = params.state.clone() else { return };
    let delivered = sessions.deliver(&state, Some("fuzz"), params);
    if state == SESSION_STATE {
        assert_eq!(delivered, Ok(()), "the login's own callback is refused");
    } else {
        assert_eq!(delivered, Err(DeliverError::UnknownState), "a callback of another state is taken");
    }
}

/// An auth file: loading never panics; a file that loads, saved and loaded again, is equal;
/// every key of the file survives (legacy hyphenated keys under their snake_case name).
pub fn auth_file(data: &[u8]) {
    let Ok(credential) = Credential::from_json(data) else { return };
    let saved = credential.to_json_pretty();
    let reloaded = Credential::from_json(&saved).expect("a saved credential loads again");
    assert_eq!(reloaded, credential, "saving and loading changes the credential");
    assert_eq!(reloaded.to_json_pretty(), saved, "saving is not stable");

    let raw: Map<String, Value> = serde_json::from_slice(data).expect("it loaded, so it is a JSON object");
    for key in raw.keys() {
        assert!(credential.fields().contains_key(canonical_key(key)), "key {key:?} was dropped");
    }
    // Reading the typed fields never panics, whatever their JSON types.
    let _ = (credential.provider(), credential.expiry(), credential.last_refresh(), credential.label());
    let _ = (credential.priority(), credential.weight(), credential.disabled(), credential.access_token());
}
