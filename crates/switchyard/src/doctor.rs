//! `switchyard doctor`: checks the auth dir and says what is wrong — group/world-accessible
//! modes, entries that are not regular files, files over the 1 MiB cap, corrupt JSON, stale
//! temp files of interrupted writes. Only reports, unless `--fix`: then the dir becomes 0700,
//! files 0600 and stale temp files go (refused and corrupt files are the user's: never touched).
//!
//! Exit codes: 0 nothing wrong (or all fixed), 1 a problem remains, 2 config or I/O error.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::{Value, json};
use switchyard_auth::hygiene::{self, DirReport, LooseMode};

pub mod exit {
    pub const PROBLEMS: u8 = 1;
    pub const ERROR: u8 = 2;
}

pub struct DoctorArgs {
    pub fix: bool,
    pub json: bool,
}

pub fn run(auth_dir: &Path, args: DoctorArgs) -> ExitCode {
    if !auth_dir.exists() {
        let note = "the auth dir does not exist yet (it is created, mode 0700, at first start)";
        if args.json {
            println!("{}", json!({"auth_dir": auth_dir.display().to_string(), "ok": true, "note": note}));
        } else {
            println!("auth dir: {}\nok: {note}", auth_dir.display());
        }
        return ExitCode::SUCCESS;
    }
    let report = match hygiene::inspect(auth_dir, SystemTime::now()) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("switchyard: cannot inspect the auth dir {}: {error}", auth_dir.display());
            return ExitCode::from(exit::ERROR);
        }
    };
    let (fixed_modes, removed_temps) = if args.fix {
        match fix(auth_dir) {
            Ok(fixed) => fixed,
            Err(error) => {
                eprintln!("switchyard: cannot fix the auth dir {}: {error}", auth_dir.display());
                return ExitCode::from(exit::ERROR);
            }
        }
    } else {
        (Vec::new(), Vec::new())
    };
    // What is still wrong after the fixes.
    let remaining = if args.fix {
        match hygiene::inspect(auth_dir, SystemTime::now()) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("switchyard: cannot inspect the auth dir {}: {error}", auth_dir.display());
                return ExitCode::from(exit::ERROR);
            }
        }
    } else {
        report.clone()
    };
    if args.json {
        println!("{}", json_report(auth_dir, &report, &fixed_modes, &removed_temps, &remaining));
    } else {
        print!("{}", text_report(auth_dir, &report, args.fix, &fixed_modes, &removed_temps));
    }
    if remaining.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(exit::PROBLEMS) }
}

fn fix(auth_dir: &Path) -> std::io::Result<(Vec<LooseMode>, Vec<String>)> {
    let modes = hygiene::fix_modes(auth_dir)?;
    let temps = hygiene::remove_stale_temps(auth_dir, SystemTime::now())?;
    Ok((modes, temps))
}

fn entry_name(loose: &LooseMode) -> &str {
    loose.name.as_deref().unwrap_or("the auth dir")
}

fn wanted_mode(loose: &LooseMode) -> u32 {
    if loose.name.is_none() { hygiene::DIR_MODE } else { hygiene::FILE_MODE }
}

/// Refusals come in two kinds; the reason text says which.
fn refusal_kind(reason: &str) -> &'static str {
    if reason.starts_with("not a regular file") { "not_regular" } else { "oversized" }
}

fn text_report(dir: &Path, report: &DirReport, fix: bool, modes: &[LooseMode], temps: &[String]) -> String {
    let mut out = format!("auth dir: {}\n", dir.display());
    for loose in &report.loose_modes {
        let fixed = modes.contains(loose);
        out.push_str(&format!(
            "{}: {} is group/world-accessible (mode {:o}); {} {:o}\n",
            if fixed { "fixed" } else { "problem" },
            entry_name(loose),
            loose.mode,
            if fixed { "now" } else { "--fix sets it to" },
            wanted_mode(loose),
        ));
    }
    for (name, reason) in &report.refused {
        out.push_str(&format!("problem: {name}: {reason}; never read or loaded (remove or replace it yourself)\n"));
    }
    for (name, message) in &report.corrupt {
        out.push_str(&format!("problem: {name}: corrupt ({message}); never loaded or rewritten\n"));
    }
    for name in &report.stale_temps {
        if temps.contains(name) {
            out.push_str(&format!("fixed: {name}: stale temp file of an interrupted write removed\n"));
        } else {
            out.push_str(&format!(
                "problem: {name}: stale temp file of an interrupted write (older than {} s); --fix removes it\n",
                hygiene::STALE_TEMP_AGE.as_secs()
            ));
        }
    }
    if report.is_clean() {
        out.push_str("ok: no problems found\n");
    } else if !fix && (!report.loose_modes.is_empty() || !report.stale_temps.is_empty()) {
        out.push_str("nothing changed; run `switchyard doctor --fix` to fix modes and remove stale temp files\n");
    }
    out
}

fn json_report(dir: &Path, report: &DirReport, modes: &[LooseMode], temps: &[String], remaining: &DirReport) -> Value {
    let loose: Vec<Value> = report
        .loose_modes
        .iter()
        .map(|l| {
            json!({"name": l.name, "mode": format!("{:o}", l.mode), "wanted": format!("{:o}", wanted_mode(l)),
                   "fixed": modes.contains(l)})
        })
        .collect();
    let refused: Vec<Value> = report
        .refused
        .iter()
        .map(|(name, reason)| json!({"name": name, "reason": reason, "kind": refusal_kind(reason)}))
        .collect();
    let corrupt: Vec<Value> =
        report.corrupt.iter().map(|(name, message)| json!({"name": name, "message": message})).collect();
    let stale: Vec<Value> =
        report.stale_temps.iter().map(|name| json!({"name": name, "removed": temps.contains(name)})).collect();
    json!({
        "auth_dir": dir.display().to_string(),
        "permission_warning": !report.loose_modes.is_empty(),
        "loose_permissions": loose,
        "refused": refused,
        "corrupt": corrupt,
        "stale_temps": stale,
        "ok": remaining.is_clean(),
    })
}
