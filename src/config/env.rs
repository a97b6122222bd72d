//! `AMPHI_*` environment overrides, applied after the file.

use super::{ChecksumAlgorithm, Config, ConfigError, LogFormat};
use crate::redact::Redacted;

/// Every environment variable amphi reads, with the key it overrides.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("AMPHI_LISTEN", "listen"),
    ("AMPHI_PUBLIC_URL", "public_url"),
    ("AMPHI_DATA_DIR", "data_dir"),
    ("AMPHI_SECRET_KEY", "secret_key"),
    ("AMPHI_DATABASE_URL", "database.url"),
    ("AMPHI_LOG", "log.filter"),
    ("AMPHI_LOG_FORMAT", "log.format"),
    ("AMPHI_BBB_API_URL", "bbb.api_url"),
    ("AMPHI_BBB_SECRET", "bbb.secret"),
    ("AMPHI_BBB_CHECKSUM", "bbb.checksum"),
    ("AMPHI_SMTP_URL", "mail.smtp_url"),
    ("AMPHI_REDIS_URL", "chat.redis_url"),
];

impl Config {
    /// Applies the `AMPHI_*` variables found by `env` on top of the current values.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for &(var, _) in ENV_OVERRIDES {
            // An empty variable counts as unset, so `VAR=` in a compose file keeps the file's value.
            let Some(value) = env(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let bad = |message: String| ConfigError::Env { var, message };
            match var {
                "AMPHI_LISTEN" => {
                    self.listen = value.parse().map_err(|_| {
                        bad(format!(
                            "`{value}` is not an address such as 127.0.0.1:8080"
                        ))
                    })?;
                }
                "AMPHI_PUBLIC_URL" => self.public_url = value,
                "AMPHI_DATA_DIR" => self.data_dir = value.into(),
                "AMPHI_SECRET_KEY" => self.secret_key = Redacted::new(value),
                "AMPHI_DATABASE_URL" => self.database.url = Redacted::new(value),
                "AMPHI_LOG" => self.log.filter = value,
                "AMPHI_LOG_FORMAT" => {
                    self.log.format = match value.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => {
                            return Err(bad(format!("`{value}` is neither \"text\" nor \"json\"")));
                        }
                    };
                }
                "AMPHI_BBB_API_URL" => self.bbb.api_url = value,
                "AMPHI_BBB_SECRET" => self.bbb.secret = Redacted::new(value),
                "AMPHI_SMTP_URL" => self.mail.smtp_url = Redacted::new(value),
                "AMPHI_REDIS_URL" => self.chat.redis_url = Redacted::new(value),
                "AMPHI_BBB_CHECKSUM" => {
                    self.bbb.checksum = match value.to_ascii_lowercase().as_str() {
                        "sha1" => ChecksumAlgorithm::Sha1,
                        "sha256" => ChecksumAlgorithm::Sha256,
                        "sha384" => ChecksumAlgorithm::Sha384,
                        "sha512" => ChecksumAlgorithm::Sha512,
                        _ => {
                            return Err(bad(format!(
                                "`{value}` is not one of sha1, sha256, sha384, sha512"
                            )));
                        }
                    };
                }
                _ => unreachable!("every variable of ENV_OVERRIDES is handled"),
            }
        }
        Ok(())
    }
}
