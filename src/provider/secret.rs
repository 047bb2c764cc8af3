//! A credential that cannot be printed by accident.

use std::fmt;

/// A secret value (API key, token, or a whole header value containing one). `Debug` and
/// `Display` print `***`; only [`Secret::expose`] gives the value, for the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself: call only where it goes onto the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Parsed from the command line (`--api-key`), so the parsed arguments never hold the value
/// as a plain string that `Debug` would show.
impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("Token sk-canary-123");
        assert!(!format!("{s:?} {s} {:?}", vec![s.clone()]).contains("canary"));
        assert_eq!(s.expose(), "Token sk-canary-123");
    }
}
