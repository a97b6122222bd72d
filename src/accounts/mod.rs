//! Accounts: password hashing, login with throttling, server-side sessions, API tokens, and the
//! identity a trusted reverse proxy (CAS, Shibboleth) asserts in request headers.

mod password;
pub mod proxy;

pub use password::{hash_password, verify_password};
pub use proxy::{ProxyDecision, identity_from_headers};

use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::db::{self, Db, FailuresOf, NewUser, User};
use crate::redact::Redacted;
use chrono::Duration;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many failed logins for this account")]
    AccountThrottled { retry_after: Duration },
    #[error("too many failed logins from this address")]
    AddressThrottled { retry_after: Duration },
    #[error(transparent)]
    Db(#[from] db::Error),
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the username must be 1 to 150 characters: letters, digits and @ . + - _")]
    InvalidUsername,
    #[error("the password must be at least 8 characters")]
    WeakPassword,
    #[error("no user named `{0}`")]
    UnknownUser(String),
    #[error(transparent)]
    Db(#[from] db::Error),
}

/// A fresh random token (sessions, API tokens): 32 bytes, hex.
pub fn new_token() -> Redacted<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    Redacted::new(hex::encode(bytes))
}

/// `len` characters drawn at random from `alphabet` (passwords, simulated BBB identifiers).
pub fn random_chars(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect()
}

/// What the database stores for a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Django's username rule: 1-150 of letters, digits and `@.+-_`.
pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 150
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'))
}

/// Login, sessions and tokens over the database.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
}

/// A new user as given on the command line or by an administrator.
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    pub username: String,
    pub password: Option<Redacted<String>>,
    pub email: String,
    pub display_name: String,
    pub staff: bool,
    pub superuser: bool,
    pub affiliation: String,
    pub groups: Vec<String>,
}

impl Accounts {
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: AuthConfig) -> Self {
        Self { db, clock, config }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Creates a user with a local password and access groups.
    pub async fn create_user(&self, spec: &UserSpec) -> Result<User, AccountError> {
        if !valid_username(&spec.username) {
            return Err(AccountError::InvalidUsername);
        }
        let password_hash = match &spec.password {
            Some(password) => {
                if password.expose().chars().count() < 8 {
                    return Err(AccountError::WeakPassword);
                }
                Some(hash_password_blocking(password.clone()).await)
            }
            None => None,
        };
        let new = NewUser {
            username: spec.username.clone(),
            display_name: spec.display_name.clone(),
            email: spec.email.clone(),
            password_hash,
            is_staff: spec.staff || spec.superuser,
            is_superuser: spec.superuser,
            affiliation: spec.affiliation.clone(),
        };
        let user = self.db.create_user(&new, self.clock.now()).await?;
        if !spec.groups.is_empty() {
            self.db
                .set_user_access_groups(user.id, &spec.groups)
                .await?;
        }
        Ok(user)
    }

    /// Replaces a user's local password.
    pub async fn set_password(
        &self,
        username: &str,
        password: Redacted<String>,
    ) -> Result<(), AccountError> {
        if password.expose().chars().count() < 8 {
            return Err(AccountError::WeakPassword);
        }
        let user = self
            .db
            .user_by_username(username)
            .await?
            .ok_or_else(|| AccountError::UnknownUser(username.to_owned()))?;
        let hash = hash_password_blocking(password).await;
        self.db.set_password_hash(user.id, &hash).await?;
        Ok(())
    }

    /// Checks a password and opens a session. Throttled per account and per client address.
    pub async fn login(
        &self,
        username: &str,
        password: Redacted<String>,
        client_ip: &str,
    ) -> Result<(User, Redacted<String>), LoginError> {
        let now = self.clock.now();
        let window = Duration::minutes(i64::from(self.config.login_window_minutes));
        let since = now - window;
        // Locked until the oldest failure of the window leaves it.
        let retry_after = |oldest: Option<chrono::DateTime<chrono::Utc>>| {
            oldest.map_or(window, |t| t + window - now)
        };
        let (by_ip, oldest) = self
            .db
            .login_failures(FailuresOf::Address(client_ip), since)
            .await?;
        if by_ip >= i64::from(self.config.login_max_failures_per_ip) {
            return Err(LoginError::AddressThrottled {
                retry_after: retry_after(oldest),
            });
        }
        let (by_user, oldest) = self
            .db
            .login_failures(FailuresOf::Account(username), since)
            .await?;
        if by_user >= i64::from(self.config.login_max_failures_per_account) {
            return Err(LoginError::AccountThrottled {
                retry_after: retry_after(oldest),
            });
        }
        let credentials = self.db.login_credentials(username).await?;
        let stored = credentials
            .as_ref()
            .filter(|(user, _)| user.is_active)
            .and_then(|(_, hash)| hash.clone());
        // Verify even for unknown users so that timing does not reveal which usernames exist.
        let ok = verify_password_blocking(stored, password).await;
        let user = match (ok, credentials) {
            (true, Some((user, _))) => user,
            _ => {
                self.db
                    .record_login_failure(username, client_ip, now)
                    .await?;
                tracing::info!(username, client_ip, "login failed");
                return Err(LoginError::InvalidCredentials);
            }
        };
        self.db.clear_login_failures(username).await?;
        self.db.touch_last_login(user.id, now).await?;
        let token = self.open_session(user.id).await?;
        tracing::info!(username, user_id = user.id, "login");
        Ok((user, token))
    }

    /// Opens a session for an already authenticated user; returns the cookie token.
    /// How long an address must wait before trying a password again (logins and meeting
    /// passwords count together), or `None` when it may try now.
    pub async fn address_throttle(&self, client_ip: &str) -> Result<Option<Duration>, db::Error> {
        let now = self.clock.now();
        let window = Duration::minutes(i64::from(self.config.login_window_minutes));
        let (count, oldest) = self
            .db
            .login_failures(FailuresOf::Address(client_ip), now - window)
            .await?;
        Ok((count >= i64::from(self.config.login_max_failures_per_ip))
            .then(|| oldest.map_or(window, |t| t + window - now)))
    }

    /// Records a wrong password for `what` (a meeting: `meeting:42`) from an address.
    pub async fn record_failed_attempt(
        &self,
        what: &str,
        client_ip: &str,
    ) -> Result<(), db::Error> {
        tracing::info!(what, client_ip, "wrong password");
        self.db
            .record_login_failure(what, client_ip, self.clock.now())
            .await
    }

    pub async fn open_session(&self, user_id: i64) -> Result<Redacted<String>, db::Error> {
        let now = self.clock.now();
        let token = new_token();
        let expires = now + Duration::hours(i64::from(self.config.session_hours));
        self.db
            .insert_session(&token_hash(token.expose()), user_id, now, expires)
            .await?;
        Ok(token)
    }

    /// The user behind a session cookie, if the session is still valid.
    pub async fn session(&self, token: &str) -> Result<Option<User>, db::Error> {
        self.db
            .session_user(&token_hash(token), self.clock.now())
            .await
    }

    pub async fn logout(&self, token: &str) -> Result<(), db::Error> {
        self.db.delete_session(&token_hash(token)).await
    }

    /// Creates an API token for `username`; the token is shown once and stored hashed.
    pub async fn create_api_token(
        &self,
        username: &str,
        label: &str,
    ) -> Result<Redacted<String>, AccountError> {
        let user = self
            .db
            .user_by_username(username)
            .await?
            .ok_or_else(|| AccountError::UnknownUser(username.to_owned()))?;
        let token = new_token();
        self.db
            .insert_api_token(
                user.id,
                &token_hash(token.expose()),
                label,
                self.clock.now(),
            )
            .await?;
        Ok(token)
    }

    /// The user owning an API token.
    pub async fn api_user(&self, token: &str) -> Result<Option<User>, db::Error> {
        self.db
            .api_token_user(&token_hash(token), self.clock.now())
            .await
    }

    /// Whether the user holds a permission (superusers hold every permission).
    pub async fn has_perm(&self, user: &User, codename: &str) -> Result<bool, db::Error> {
        if user.is_superuser {
            return Ok(true);
        }
        Ok(self
            .db
            .user_permissions(user.id)
            .await?
            .iter()
            .any(|p| p == codename))
    }

    /// Deletes expired sessions and old failed-login records.
    pub async fn purge(&self) -> Result<u64, db::Error> {
        let now = self.clock.now();
        let window = Duration::minutes(i64::from(self.config.login_window_minutes));
        self.db.purge_expired(now, now - window).await
    }
}

async fn hash_password_blocking(password: Redacted<String>) -> String {
    tokio::task::spawn_blocking(move || hash_password(password.expose()))
        .await
        .expect("password hashing does not panic")
}

async fn verify_password_blocking(hash: Option<String>, password: Redacted<String>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&hash, password.expose()),
        None => {
            password::burn_verification_time(password.expose());
            false
        }
    })
    .await
    .unwrap_or(false)
}
