//! BBB API checksums: `hex(H(callName + queryString + secret))`, with H one of SHA-1, SHA-256,
//! SHA-384 or SHA-512. The server picks H from the length of the checksum it receives.

use crate::config::ChecksumAlgorithm;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 4] = [
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha384,
        ChecksumAlgorithm::Sha512,
    ];

    /// The name BBB uses in `supportedChecksumAlgorithms`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha1 => "sha1",
            ChecksumAlgorithm::Sha256 => "sha256",
            ChecksumAlgorithm::Sha384 => "sha384",
            ChecksumAlgorithm::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Sha1 => 40,
            ChecksumAlgorithm::Sha256 => 64,
            ChecksumAlgorithm::Sha384 => 96,
            ChecksumAlgorithm::Sha512 => 128,
        }
    }

    /// The algorithm a checksum of this many hex digits was made with (bbb-web's rule).
    pub fn from_hex_len(len: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.hex_len() == len)
    }

    /// Lower-case hex digest of the concatenated parts.
    pub fn hex_digest(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            hex::encode(hasher.finalize())
        }
        match self {
            ChecksumAlgorithm::Sha1 => run::<Sha1>(parts),
            ChecksumAlgorithm::Sha256 => run::<Sha256>(parts),
            ChecksumAlgorithm::Sha384 => run::<Sha384>(parts),
            ChecksumAlgorithm::Sha512 => run::<Sha512>(parts),
        }
    }
}

/// The checksum of an API call: `H(call + query + secret)`.
pub fn api_checksum(algorithm: ChecksumAlgorithm, call: &str, query: &str, secret: &str) -> String {
    algorithm.hex_digest(&[call.as_bytes(), query.as_bytes(), secret.as_bytes()])
}

/// Compares two hex checksums in constant time, ignoring case as bbb-web does.
pub fn checksums_match(expected: &str, given: &str) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |acc, (a, b)| {
            acc | (a.to_ascii_lowercase() ^ b.to_ascii_lowercase())
        })
        == 0
}

/// Compares two secrets (passwords) exactly, in time independent of where they differ.
pub fn secrets_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies an API call's checksum as bbb-web does (used by the simulator and the webhook
/// receiver): algorithm from the checksum length, restricted to `allowed`.
pub fn verify_call(
    call: &str,
    raw_query: &str,
    secret: &str,
    allowed: &[ChecksumAlgorithm],
) -> bool {
    let (query, checksum) = split_checksum(raw_query);
    let Some(checksum) = checksum else {
        return false;
    };
    let Some(algorithm) = ChecksumAlgorithm::from_hex_len(checksum.len()) else {
        return false;
    };
    allowed.contains(&algorithm)
        && checksums_match(&api_checksum(algorithm, call, &query, secret), checksum)
}

/// Removes `checksum=X` from a raw query string the way bbb-web does (string replacement).
pub fn split_checksum(raw_query: &str) -> (String, Option<&str>) {
    let checksum = raw_query
        .split('&')
        .find_map(|pair| pair.strip_prefix("checksum="));
    let Some(value) = checksum else {
        return (raw_query.to_owned(), None);
    };
    let query = raw_query
        .replace(&format!("&checksum={value}"), "")
        .replace(&format!("checksum={value}&"), "")
        .replace(&format!("checksum={value}"), "");
    (query, Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "639259d4-9dd8-4b25-bf01-95f9567eaf4b";
    const QUERY: &str = "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444";

    /// The test vector of BBB's API documentation.
    #[test]
    fn documented_test_vector() {
        assert_eq!(
            api_checksum(ChecksumAlgorithm::Sha1, "create", QUERY, SECRET),
            "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17"
        );
        assert_eq!(
            api_checksum(ChecksumAlgorithm::Sha256, "create", QUERY, SECRET),
            "da9185f7f333cfdfcd6eeac32dca3777510c4c436020d8b887ba5515bd1d189e"
        );
    }

    #[test]
    fn hooks_example() {
        assert_eq!(
            api_checksum(
                ChecksumAlgorithm::Sha1,
                "hooks/create",
                "callbackURL=https%3A%2F%2Fexample.com%2Fhook",
                "mysecret"
            ),
            "5931f40e1dbeab004a68035948b2edecaf8aeb6d"
        );
    }

    #[test]
    fn algorithm_follows_length() {
        for algorithm in ChecksumAlgorithm::ALL {
            let sum = api_checksum(algorithm, "getMeetings", "", "s");
            assert_eq!(sum.len(), algorithm.hex_len());
            assert_eq!(ChecksumAlgorithm::from_hex_len(sum.len()), Some(algorithm));
            assert_eq!(
                ChecksumAlgorithm::from_name(algorithm.name()),
                Some(algorithm)
            );
        }
        assert_eq!(ChecksumAlgorithm::from_hex_len(32), None);
    }

    #[test]
    fn comparison_ignores_case_only() {
        assert!(checksums_match("abcdef", "ABCDEF"));
        assert!(!checksums_match("abcdef", "abcdee"));
        assert!(!checksums_match("abcdef", "abcde"));
    }
}
