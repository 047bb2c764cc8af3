//! `--keyterm-file FILE` (and `keyterm_file` in a profile): keyterms one per line, so a team's
//! vocabulary can live in a file next to the code. Blank lines and lines starting with `#` are
//! skipped; a `#` later in a line is part of the term (`C#`).

use crate::error::FluxError;
use std::path::{Path, PathBuf};

/// The terms of every file, in order.
pub fn read_all(files: &[PathBuf]) -> Result<Vec<String>, FluxError> {
    let mut terms = Vec::new();
    for path in files {
        terms.extend(read(path)?);
    }
    Ok(terms)
}

fn read(path: &Path) -> Result<Vec<String>, FluxError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FluxError::Usage(format!(
            "cannot read --keyterm-file {}: {e}; give a UTF-8 text file with one keyterm per line",
            path.display()
        ))
    })?;
    Ok(parse(&text))
}

fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_term_per_line_with_comments_and_blanks_skipped() {
        let text = "# product names\nFluxCo\n\n  customer service  \n# C# is a term, not a comment:\nC#\r\n";
        assert_eq!(parse(text), ["FluxCo", "customer service", "C#"]);
    }

    #[test]
    fn a_missing_file_is_a_usage_error_naming_it() {
        let err = read_all(&[PathBuf::from("/nonexistent/terms.txt")]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("/nonexistent/terms.txt"), "{err}");
    }
}
