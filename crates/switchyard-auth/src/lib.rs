//! Credentials and the CLIProxyAPI-compatible auth-file store.
//!
//! - [`Credential`]: one auth file's JSON object, every key kept in order (unknown ones too),
//!   with typed readers for the keys CPA gives meaning to (tokens, expiry, routing settings).
//! - [`CredentialStore`]: the auth dir. Atomic 0600 writes, serialised read-modify-write,
//!   corrupt files reported and never rewritten, an in-memory index with change events, and a
//!   watcher ([`CredentialStore::watch`]) for files changed by other programs. Reads never
//!   follow a symlink, never block on a FIFO and stop at [`MAX_AUTH_FILE_BYTES`].
//! - [`hygiene`]: stale temp files, loose modes, and the dir report `switchyard doctor` prints.
//! - [`auth_index`] and [`validate_file_name`]: CPA's stable per-file id and safe file names.

mod credential;
mod disk;
pub mod hygiene;
pub mod login;
mod paths;
mod store;
mod timestamp;
mod watch;

pub use credential::{Credential, CredentialError, MAX_WEIGHT, canonical_key};
pub use paths::{auth_index, validate_file_name};
pub use store::{AuthContent, CredentialStore, StoreError, StoreEvent, StoredAuth};
pub use watch::StoreWatcher;

/// Largest auth file read or accepted (uploads, imports, the store's reads): auth files are a
/// few KiB; anything past this is not one (and a `/dev/zero` link must not grow the process).
pub const MAX_AUTH_FILE_BYTES: usize = 1024 * 1024;
