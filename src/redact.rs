//! A wrapper for secrets (BBB shared secret, session tokens, checksums) that never prints them.
//!
//! `Debug` and `Display` show `[redacted]`; the value is reached only through [`Redacted::expose`],
//! so every place that really needs the secret is easy to find with grep.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A secret value that formats as `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself. Never pass the result to a log macro, a template or an error message.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Redacted<String> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// Serialises the real value: only the configuration file writer uses this, never a log or page.
impl<T: Serialize> Serialize for Redacted<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Redacted<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_hide_the_value() {
        let secret = Redacted::new("s3cr3t-value".to_owned());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), "s3cr3t-value");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            secret: Redacted<String>,
        }
        let text = format!("{:?}", Holder { secret });
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}
