//! `--script FILE`: the transcript of each turn, one line per turn.
//!
//! Line N (blank lines skipped) is the text of turn N on every connection. A turn beyond the
//! end of the script, or any turn without a script, gets the placeholder word [`PLACEHOLDER`],
//! so a client can tell emulated text from scripted text. A script with no turns at all is
//! refused: leaving out `--script` is the way to ask for placeholders only.

use crate::error::FluxError;
use std::path::Path;

/// The transcript of a turn the script does not cover.
pub const PLACEHOLDER: &str = "[speech]";

/// Scripts larger than this are refused (the whole file is kept in memory, shared by all
/// connections).
const MAX_SCRIPT_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    turns: Vec<Vec<String>>,
}

impl Script {
    pub fn load(path: &Path) -> Result<Script, FluxError> {
        let unreadable = |why: String| {
            FluxError::Usage(format!(
                "cannot read the script {}: {why}; --script takes a UTF-8 text file with one \
                 turn per line",
                path.display()
            ))
        };
        let size = std::fs::metadata(path)
            .map_err(|e| unreadable(e.to_string()))?
            .len();
        if size > MAX_SCRIPT_BYTES {
            return Err(unreadable(format!(
                "it is {size} bytes, more than the {MAX_SCRIPT_BYTES} allowed"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let script = Script::parse(&text);
        if script.is_empty() {
            // Almost always a mistake (a file not written yet, the wrong path): every turn would
            // silently get the placeholder, and a test would assert against the wrong text.
            return Err(FluxError::Usage(format!(
                "the script {} has no turns (it is empty or only blank lines); write one turn \
                 per line, or leave out --script to get the placeholder `{PLACEHOLDER}` for \
                 every turn",
                path.display()
            )));
        }
        Ok(script)
    }

    pub fn parse(text: &str) -> Script {
        let turns = text
            .lines()
            .map(|line| {
                line.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|words| !words.is_empty())
            .collect();
        Script { turns }
    }

    /// The words of turn `index`, or `None` when the script does not cover it.
    pub fn words(&self, index: u64) -> Option<&[String]> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.turns.get(i))
            .map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.turns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_skipped_and_words_split_on_whitespace() {
        let s = Script::parse("Hello  there.\n\n   \nsecond\tturn here\r\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s.words(0).unwrap(), ["Hello", "there."]);
        assert_eq!(s.words(1).unwrap(), ["second", "turn", "here"]);
        assert!(s.words(2).is_none());
    }

    #[test]
    fn a_script_without_turns_is_a_usage_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("empty.txt", ""), ("blank.txt", "\n  \n\t\r\n")] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let err = Script::load(&path).unwrap_err();
            let FluxError::Usage(message) = &err else {
                panic!("{err:?}");
            };
            assert!(message.contains(name), "{message}");
            assert!(message.contains("one turn per line"), "{message}");
        }
        let path = dir.path().join("one.txt");
        std::fs::write(&path, "\nhello\n").unwrap();
        assert_eq!(Script::load(&path).unwrap().len(), 1);
    }

    #[test]
    fn a_missing_file_is_a_usage_error() {
        let err = Script::load(Path::new("/nonexistent/turns.txt")).unwrap_err();
        assert!(matches!(err, FluxError::Usage(ref m) if m.contains("/nonexistent/turns.txt")));
    }
}
