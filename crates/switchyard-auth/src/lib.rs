//! Credentials and the CLIProxyAPI-compatible auth-file store.
//!
//! - [`Credential`]: one auth file's JSON object, every key kept in order (unknown ones too),
//!   with typed readers for the keys CPA gives meaning to (tokens, expiry, routing settings).
//! - [`CredentialStore`]: the auth dir. Atomic 0600 writes, serialised read-modify-write,
//!   corrupt files reported and never rewritten, an in-memory index with change events, and a
//!   watcher ([`CredentialStore::watch`]) for files changed by other programs.
//! - [`auth_index`] and [`validate_file_name`]: CPA's stable per-file id and safe file names.

mod credential;
mod disk;
pub mod login;
mod paths;
mod store;
mod timestamp;
mod watch;

pub use credential::{Credential, CredentialError, MAX_WEIGHT, canonical_key};
pub use paths::{auth_index, validate_file_name};
pub use store::{AuthContent, CredentialStore, StoreError, StoreEvent, StoredAuth};
pub use watch::StoreWatcher;
