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
