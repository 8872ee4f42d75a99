//! Auth-dir hygiene: stale temp files of interrupted writes, group/world-accessible modes, and
//! one report of everything wrong with a dir (the store's start-up warnings and
//! `switchyard doctor` both read it). Blocking; run off the reactor.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::AuthContent;
use crate::disk;

/// The store's temp files are `.switchyard-<random>.tmp` (dotfiles, so no scanner loads them).
pub const TEMP_PREFIX: &str = ".switchyard-";
pub const TEMP_SUFFIX: &str = ".tmp";
/// A temp file younger than this may belong to a writer that is still running (another
/// Switchyard on the same dir); older ones are leftovers of a crash.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Mode bits that must be clear: nobody but the owner may read, write or enter.
const GROUP_OTHER_BITS: u32 = 0o077;
pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Whether `name` is one of the store's temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.len() > TEMP_PREFIX.len() + TEMP_SUFFIX.len() && name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// An entry (or the dir itself, `name: None`) whose mode lets group or others in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LooseMode {
    pub name: Option<String>,
    pub mode: u32,
}

/// Everything wrong with an auth dir, file names only (never content).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirReport {
    pub loose_modes: Vec<LooseMode>,
    /// Auth-file names we refuse to read, with why (not a regular file, oversized).
    pub refused: Vec<(String, String)>,
    /// Auth files that are not valid JSON objects / auth files, with why.
    pub corrupt: Vec<(String, String)>,
    /// Temp files older than [`STALE_TEMP_AGE`].
    pub stale_temps: Vec<String>,
}

impl DirReport {
    pub fn is_clean(&self) -> bool {
        self.loose_modes.is_empty() && self.refused.is_empty() && self.corrupt.is_empty() && self.stale_temps.is_empty()
    }
}

/// Checks `dir` without changing anything. Entries are sorted by name.
pub fn inspect(dir: &Path, now: SystemTime) -> io::Result<DirReport> {
    let mut report =
        DirReport { loose_modes: loose_modes(dir)?, stale_temps: stale_temps(dir, now)?, ..Default::default() };
    let mut names = disk::auth_file_names(dir)?;
    names.sort();
    for name in names {
        match disk::load(dir, &name).map(|stored| stored.content.clone()) {
            Some(AuthContent::Refused { reason }) => report.refused.push((name, reason)),
            Some(AuthContent::Corrupt { message }) => report.corrupt.push((name, message)),
            Some(AuthContent::Valid(_)) | None => {}
        }
    }
    Ok(report)
}

/// The dir and every regular file in it (auth files and others alike: all may hold secrets)
/// whose mode has group/other bits set. Symlinks are not followed.
pub fn loose_modes(dir: &Path) -> io::Result<Vec<LooseMode>> {
    let mut loose = Vec::new();
    if let Some(mode) = mode_bits(&fs::symlink_metadata(dir)?)
        && mode & GROUP_OTHER_BITS != 0
    {
        loose.push(LooseMode { name: None, mode });
    }
    for (name, meta) in entries(dir)? {
        if meta.is_file()
            && let Some(mode) = mode_bits(&meta)
            && mode & GROUP_OTHER_BITS != 0
        {
            loose.push(LooseMode { name: Some(name), mode });
        }
    }
    loose.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(loose)
}

/// Sets the dir to 0700 and every regular file in it to 0600 (through the opened fd, never
/// through a symlink). Returns what was changed, as [`loose_modes`] saw it before.
pub fn fix_modes(dir: &Path) -> io::Result<Vec<LooseMode>> {
    let loose = loose_modes(dir)?;
    for entry in &loose {
        match &entry.name {
            None => set_mode(dir, DIR_MODE)?,
            Some(name) => {
                let file = disk::open_no_follow(&dir.join(name))?;
                if file.metadata()?.is_file() {
                    file.set_permissions(permissions(FILE_MODE))?;
                }
            }
        }
    }
    Ok(loose)
}

/// Names of temp files in `dir` last modified more than [`STALE_TEMP_AGE`] before `now`.
pub fn stale_temps(dir: &Path, now: SystemTime) -> io::Result<Vec<String>> {
    let mut stale: Vec<String> = entries(dir)?
        .into_iter()
        .filter(|(name, meta)| is_temp_name(name) && !meta.is_dir())
        .filter(|(_, meta)| {
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            now.duration_since(modified).is_ok_and(|age| age > STALE_TEMP_AGE)
        })
        .map(|(name, _)| name)
        .collect();
    stale.sort();
    Ok(stale)
}

/// Removes the stale temp files (see [`stale_temps`]); returns the names removed.
pub fn remove_stale_temps(dir: &Path, now: SystemTime) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in stale_temps(dir, now)? {
        match fs::remove_file(dir.join(&name)) {
            Ok(()) => removed.push(name),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(removed)
}

/// Every entry of `dir` with its lstat metadata (entries that vanish meanwhile are skipped).
fn entries(dir: &Path) -> io::Result<Vec<(String, fs::Metadata)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if let Ok(meta) = fs::symlink_metadata(entry.path()) {
            out.push((name, meta));
        }
    }
    Ok(out)
}

#[cfg(unix)]
fn mode_bits(meta: &fs::Metadata) -> Option<u32> {
    Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777)
}

#[cfg(not(unix))]
fn mode_bits(_: &fs::Metadata) -> Option<u32> {
    None
}

#[cfg(unix)]
fn permissions(mode: u32) -> fs::Permissions {
    std::os::unix::fs::PermissionsExt::from_mode(mode)
}

#[cfg(not(unix))]
fn permissions(_: u32) -> fs::Permissions {
    unreachable!("mode bits are never reported loose off Unix")
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, permissions(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_the_stores_pattern_only() {
        assert!(is_temp_name(".switchyard-abc123.tmp"));
        assert!(!is_temp_name(".switchyard-.tmp"));
        assert!(!is_temp_name("switchyard-a.tmp"));
        assert!(!is_temp_name(".switchyard-a.json"));
        assert!(!is_temp_name(".other-a.tmp"));
    }
}
