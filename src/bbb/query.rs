//! Query strings built once, in order, then hashed and sent byte for byte.

use super::checksum::api_checksum;
use crate::config::ChecksumAlgorithm;
use crate::redact::Redacted;

/// An ordered, encoded query string (`application/x-www-form-urlencoded`, spaces as `+`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    encoded: String,
}

impl Query {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `name=value`.
    pub fn param(mut self, name: &str, value: impl AsRef<str>) -> Self {
        if !self.encoded.is_empty() {
            self.encoded.push('&');
        }
        self.encoded
            .extend(url::form_urlencoded::byte_serialize(name.as_bytes()));
        self.encoded.push('=');
        self.encoded.extend(url::form_urlencoded::byte_serialize(
            value.as_ref().as_bytes(),
        ));
        self
    }

    /// Appends `name=value` when there is a value.
    pub fn opt<V: AsRef<str>>(self, name: &str, value: Option<V>) -> Self {
        match value {
            Some(value) => self.param(name, value),
            None => self,
        }
    }

    /// Appends `name=true|false`.
    pub fn flag(self, name: &str, value: bool) -> Self {
        self.param(name, if value { "true" } else { "false" })
    }

    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// The query with `checksum=` appended, for `call` under `secret`.
    pub fn signed(&self, call: &str, secret: &str, algorithm: ChecksumAlgorithm) -> SignedQuery {
        let checksum = api_checksum(algorithm, call, &self.encoded, secret);
        let full = if self.encoded.is_empty() {
            format!("checksum={checksum}")
        } else {
            format!("{}&checksum={checksum}", self.encoded)
        };
        SignedQuery {
            full: Redacted::new(full),
        }
    }
}

/// A query string carrying its checksum. Shown as `[redacted]`: a signed URL is a credential
/// (a signed `join` URL lets anyone in as that user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQuery {
    full: Redacted<String>,
}

impl SignedQuery {
    /// The query string to send.
    pub fn expose(&self) -> &str {
        self.full.expose()
    }

    /// `base` (the API URL) + `/` + `call` + `?` + query.
    pub fn url(&self, api_url: &str, call: &str) -> Redacted<String> {
        Redacted::new(format!(
            "{}/{}?{}",
            api_url.trim_end_matches('/'),
            call,
            self.full.expose()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_encodes_like_bbb_docs() {
        let query = Query::new()
            .param("name", "Test Meeting")
            .param("meetingID", "abc123")
            .param("attendeePW", "111222")
            .param("moderatorPW", "333444");
        assert_eq!(
            query.as_str(),
            "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444"
        );
        let signed = query.signed(
            "create",
            "639259d4-9dd8-4b25-bf01-95f9567eaf4b",
            ChecksumAlgorithm::Sha1,
        );
        assert!(
            signed
                .expose()
                .ends_with("&checksum=1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17")
        );
        assert_eq!(format!("{signed:?}"), "SignedQuery { full: [redacted] }");
    }

    #[test]
    fn encodes_reserved_characters() {
        let query = Query::new()
            .param("meta_endCallbackUrl", "https://amphi.example/cb?t=a&b=c d")
            .opt("welcome", None::<&str>)
            .flag("record", true);
        assert_eq!(
            query.as_str(),
            "meta_endCallbackUrl=https%3A%2F%2Famphi.example%2Fcb%3Ft%3Da%26b%3Dc+d&record=true"
        );
        let empty = Query::new().signed("getMeetings", "s", ChecksumAlgorithm::Sha256);
        assert!(empty.expose().starts_with("checksum="));
    }
}
