//! The README's lists of supported and unsupported config keys are the code's lists.

const MARKER: &str = "<!-- config-keys";

/// The backticked keys of the README paragraph starting with `label`.
fn listed(label: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split_once(MARKER).expect("README has the config-keys marker").1;
    let paragraph = section
        .split("\n\n")
        .find_map(|p| p.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("README has a `{label}` paragraph"));
    paragraph.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_readme_lists_match_the_code() {
    let supported: Vec<String> = switchyard_config::SUPPORTED_KEYS.iter().map(|k| k.to_string()).collect();
    let unsupported: Vec<String> = switchyard_config::UNSUPPORTED_KEYS.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(listed("Supported:"), supported);
    assert_eq!(listed("Parsed but not supported:"), unsupported);
}
