//! `switchyard providers [--json]`: the capability list — every provider, how to add its
//! accounts (login methods with their kind and asks), the upstream URLs it calls and whether
//! Switchyard serves it — as a table, or as the JSON `GET /v0/management/providers` answers.

use std::fmt::Write as _;
use std::process::ExitCode;

use switchyard_config::Config;
use switchyard_providers::{AskKind, Capability, Registry};

pub fn run(config: &Config, json: bool) -> ExitCode {
    let registry = Registry::new(config);
    if json {
        let value = switchyard_server::capabilities_json(&registry);
        match serde_json::to_string_pretty(&value) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("switchyard providers: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", table(&registry.capabilities()));
    }
    ExitCode::SUCCESS
}

/// One block per provider: its name and whether it is served, then its logins (the command,
/// kind and asks of each) and its endpoints (the `upstream-urls` key and the default URL).
fn table(capabilities: &[Capability]) -> String {
    let mut out = String::new();
    for capability in capabilities {
        let serves = if capability.serves { "serves requests" } else { "no executor yet: accounts are not served" };
        let origin = if capability.custom { ", from oauth-providers" } else { "" };
        let types = capability.file_types.join(", ");
        let _ = writeln!(out, "{} — {} ({serves}{origin}; file type {types})", capability.id, capability.label);
        if capability.logins.is_empty() {
            let _ = writeln!(out, "  logins:    none (add its accounts as auth files)");
        }
        let commands: Vec<String> =
            capability.logins.iter().map(|l| format!("switchyard login {} --method {}", l.login, l.method)).collect();
        let width = commands.iter().map(String::len).max().unwrap_or(0);
        for (index, (login, command)) in capability.logins.iter().zip(&commands).enumerate() {
            let heading = if index == 0 { "logins:" } else { "" };
            let mut line = format!("  {heading:10} {command:width$}  {:7}", crate::login::kind_name(login.kind));
            let asks: Vec<String> = login
                .asks
                .iter()
                .map(|ask| {
                    let flag = match ask.kind {
                        AskKind::Secret => format!("{} (stdin)", ask.name),
                        _ => format!("--{}", ask.name.replace('_', "-")),
                    };
                    if ask.required { flag } else { format!("[{flag}]") }
                })
                .collect();
            if !asks.is_empty() {
                line.push_str(&format!("  {}", asks.join(" ")));
            }
            if login.default {
                line.push_str("  (default)");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let keys: Vec<String> =
            capability.endpoints.iter().map(|e| format!("upstream-urls.{}.{}", capability.id, e.name)).collect();
        let width = keys.iter().map(String::len).max().unwrap_or(0);
        for (index, (endpoint, key)) in capability.endpoints.iter().zip(&keys).enumerate() {
            let heading = if index == 0 { "endpoints:" } else { "" };
            let _ = writeln!(out, "  {heading:10} {key:width$}  {}", endpoint.default);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_block_per_provider_with_logins_and_endpoints() {
        let text = table(&Registry::new(&Config::default()).capabilities());
        for provider in switchyard_providers::all() {
            assert!(text.contains(&format!("{} — {}", provider.id(), provider.label())), "{text}");
            for endpoint in provider.endpoints() {
                assert!(text.contains(&format!("upstream-urls.{}.{}", provider.id(), endpoint.name)), "{text}");
                assert!(text.contains(endpoint.default));
            }
        }
        assert!(text.contains("switchyard login kimi --method device  device"), "{text}");
        assert!(text.contains("[--project-id]"), "{text}");
    }
}
