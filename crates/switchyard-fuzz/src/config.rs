//! `config`: the `config.yaml` parser and validator.

/// A YAML document: parsing never panics; a rejected document's error names a line (users
/// fix config files by line), within the document; every warning names a line too.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = line_count(text);
    match switchyard_config::parse(text) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                let line = warning.line.unwrap_or_else(|| panic!("warning without a line: {warning}"));
                assert!((1..=lines + 1).contains(&line), "warning line {line} outside the document: {warning}");
            }
        }
        Err(error) => {
            let line = error.line.unwrap_or_else(|| panic!("error without a line: {error}"));
            assert!((1..=lines + 1).contains(&line), "error line {line} outside the document ({lines} lines): {error}");
        }
    }
}

/// Lines as YAML counts them (`\n`, `\r\n` and a lone `\r` end one), the last one unterminated.
fn line_count(text: &str) -> usize {
    let bytes = text.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    breaks + 1
}
