//! The README's provider table is written by hand from the registry: its provider ids are the
//! registry's, in order, and every row names exactly the registry's logins and endpoints.

use std::collections::BTreeSet;

use switchyard_providers::Registry;

const MARKER: &str = "<!-- providers-table";

/// The table's body rows, each split into its cells (`\|` inside a cell is not a separator).
fn rows() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = readme.split_once(MARKER).expect("README has the providers table marker").1;
    table
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .skip(2) // header and separator
        .map(|line| {
            let line = line.replace("\\|", "\u{0}");
            line.trim().trim_matches('|').split('|').map(|cell| cell.trim().replace('\u{0}', "|")).collect()
        })
        .collect()
}

/// The backticked parts of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_readme_table_matches_the_registry() {
    let capabilities = Registry::new(&Default::default()).capabilities();
    let rows = rows();
    let ids: Vec<String> = rows.iter().map(|row| code_spans(&row[0])[0].clone()).collect();
    let expected: Vec<String> = switchyard_providers::all().iter().map(|p| p.id().to_owned()).collect();
    assert_eq!(ids, expected, "one row per built-in provider, in registry order");

    for (row, id) in rows.iter().zip(&ids) {
        assert_eq!(row.len(), 4, "{id}: {row:?}");
        let capability = capabilities.iter().find(|c| &c.id == id).unwrap();
        assert!(row[0].contains(&capability.label), "{id}: label {}", capability.label);
        assert!(!code_spans(&row[2]).is_empty(), "{id}: no auth file pattern");

        let spans = code_spans(&row[1]);
        let logins: BTreeSet<String> = spans.iter().filter(|s| s.contains(" --method ")).cloned().collect();
        {
            let registry: BTreeSet<String> =
                capability.logins.iter().map(|l| format!("{} --method {}", l.login, l.method)).collect();
            assert_eq!(logins, registry, "{id}: the logins in the README");
            for call in spans.iter().filter(|s| s.contains("-auth-url")) {
                assert!(
                    capability.logins.iter().any(|l| call.starts_with(&format!("{}-auth-url", l.login))),
                    "{id}: {call}"
                );
            }
        }
        {
            let endpoints: Vec<String> = code_spans(&row[3]);
            let registry: Vec<String> = capability.endpoints.iter().map(|e| e.name.to_owned()).collect();
            assert_eq!(endpoints, registry, "{id}: the endpoints in the README");
        }
    }
}
