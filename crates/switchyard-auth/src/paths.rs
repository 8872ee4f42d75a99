//! Auth-file names and the `auth_index` CPA derives from a file's path.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::StoreError;

const MAX_NAME_BYTES: usize = 255;

/// Checks that `name` is a plain auth-file name directly inside the auth dir: non-empty, at most
/// 255 bytes, ends with `.json`, no path separators, NUL/control characters or `..`, and not a
/// dotfile (dotfiles are our temp files and CPA's `.oauth` callback files).
pub fn validate_file_name(name: &str) -> Result<(), StoreError> {
    let problem = if name.is_empty() {
        "must not be empty"
    } else if name.len() > MAX_NAME_BYTES {
        "must be at most 255 bytes"
    } else if name.contains(['/', '\\']) {
        "must not contain path separators"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else if name.contains("..") {
        "must not contain \"..\""
    } else if name.starts_with('.') {
        "must not start with '.'"
    } else if !name.ends_with(".json") {
        "must end with \".json\""
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName(format!("{name:?} {problem}")))
}

/// CPA's stable 16-hex-char id of a file-backed auth: the first 8 bytes of
/// SHA-256(`"<type>:<absolute clean path>"`), hex-encoded. `type` is trimmed and lower-cased
/// (the file's raw `type`, e.g. `gemini`, not the mapped provider); a relative path is made
/// absolute against the current directory and then cleaned lexically like Go's
/// `filepath.Clean` (no symlink resolution), so both programs derive the same id.
pub fn auth_index(file_type: &str, absolute_path: &Path) -> String {
    let path = std::path::absolute(absolute_path).unwrap_or_else(|_| absolute_path.to_path_buf());
    let seed = format!("{}:{}", file_type.trim().to_lowercase(), clean_path(&path).to_string_lossy());
    let digest = Sha256::digest(seed.as_bytes());
    hex::encode(&digest[..8])
}

/// Lexical path cleaning: drops `.`, resolves `..` against earlier components, never above root.
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_go() {
        for (input, want) in [
            ("/a/b/../c/./d.json", "/a/c/d.json"),
            ("/../x.json", "/x.json"),
            ("//a//b/", "/a/b"),
            ("a/../../b", "../b"),
            ("./", "."),
        ] {
            assert_eq!(clean_path(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }
}
