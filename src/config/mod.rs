//! amphi's configuration: one typed struct read from a TOML file, then `AMPHI_*` environment
//! overrides. Every field names its default in its `///` line; `docker/amphi.example.toml` is the
//! commented copy of the defaults (a test keeps both equal), and `docs/ref/config.md` maps
//! Esup-Pod's setting names to these keys.

mod env;

pub use env::ENV_OVERRIDES;

use crate::redact::Redacted;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The commented example configuration, equal to the defaults (checked by a test).
pub const EXAMPLE_TOML: &str = include_str!("../../docker/amphi.example.toml");

/// Everything amphi can be told at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds. Default `"127.0.0.1:8080"`. Env `AMPHI_LISTEN`.
    pub listen: SocketAddr,
    /// URL under which users reach amphi (links in pages and mails, cookie `Secure` flag when
    /// `https`). Default `"http://127.0.0.1:8080"`. Env `AMPHI_PUBLIC_URL`.
    pub public_url: String,
    /// Folder for the SQLite database and other local state. Default `"/var/lib/amphi"`.
    /// Env `AMPHI_DATA_DIR`.
    pub data_dir: PathBuf,
    /// Key that signs CSRF tokens. Default `""`: generated on first start and kept in the database,
    /// so every instance sharing the database agrees. Env `AMPHI_SECRET_KEY`.
    pub secret_key: Redacted<String>,
    pub site: SiteConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub bbb: BbbConfig,
    pub meetings: MeetingsConfig,
    pub webinar: WebinarConfig,
    pub mail: MailConfig,
    pub media: MediaConfig,
    pub chat: ChatConfig,
    pub videos: VideosConfig,
}

/// The video library: recordings uploaded as videos, videos imported from a URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideosConfig {
    /// Jobs (download and transcode) this instance runs at once. Default `1`.
    pub workers: u32,
    /// Largest file downloaded, in MB. Default `4096`.
    pub max_size_mb: u64,
    /// Address ranges outbound fetches may reach although private or reserved (CIDR, e.g.
    /// `["127.0.0.1/32"]` for a BBB server on this machine). Default none.
    pub fetch_allow: Vec<IpNet>,
    /// Seconds to connect to a server. Default `10`.
    pub connect_timeout_seconds: u64,
    /// Seconds without data before a download is given up. Default `180`.
    pub read_timeout_seconds: u64,
    /// Seconds a job's lease lasts without renewal: a job whose worker died starts over this
    /// long after. Default `30`, at least `3`.
    pub lease_seconds: u32,
    /// Also mail a meeting's additional owners when one of its recordings is ready (Pod
    /// mails the owner only). Default `false`.
    pub ready_mail_additional_owners: bool,
}

impl Default for VideosConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            max_size_mb: 4096,
            fetch_allow: Vec::new(),
            connect_timeout_seconds: 10,
            read_timeout_seconds: 180,
            lease_seconds: 30,
            ready_mail_additional_owners: false,
        }
    }
}

/// The audience chat of the lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// Chat connections one address may hold at once (a lecture hall behind one NAT address
    /// counts as one). Default `500`.
    pub connections_per_address: u32,
    /// Messages a viewer receives on connecting. Default `50`.
    pub history: u32,
    /// Redis server joining the chat rooms of several amphi instances
    /// (`redis://[user:password@]host[:port][/db]`). Empty: rooms are this instance's own.
    /// Env `AMPHI_REDIS_URL`.
    pub redis_url: Redacted<String>,
    /// Minutes between two "N students are watching the live" posts in the meeting's chat;
    /// `0` never posts. Default `10`.
    pub viewers_post_minutes: u32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            connections_per_address: 500,
            history: 50,
            redis_url: Redacted::default(),
            viewers_post_minutes: 10,
        }
    }
}

/// The live output ladder and how it is cut into segments and parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Frames per second of the video renditions. Default `25`.
    pub fps: u32,
    /// Bitrate of the 1280x720 rendition in kbit/s. Default `2500`.
    pub hd_kbps: u32,
    /// Bitrate of the 640x360 rendition in kbit/s. Default `800`.
    pub sd_kbps: u32,
    /// Bitrate of the AAC audio in kbit/s. Default `128`.
    pub audio_kbps: u32,
    /// x264 speed preset. Default `"veryfast"`.
    pub preset: String,
    /// Segment length in whole seconds (keyframe interval too). Default `1`.
    pub segment_seconds: u32,
    /// Partial segment length in milliseconds. Default `250`.
    pub part_ms: u32,
    /// Complete segments each rendition keeps in memory. Default `20`.
    pub window_segments: u32,
    /// UDP address the media bridge binds for WebRTC. Default `"0.0.0.0:0"` (every
    /// interface but loopback, any port).
    pub udp_bind: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            fps: 25,
            hd_kbps: 2500,
            sd_kbps: 800,
            audio_kbps: 128,
            preset: "veryfast".to_owned(),
            segment_seconds: 1,
            part_ms: 250,
            window_segments: 20,
            udp_bind: "0.0.0.0:0".to_owned(),
        }
    }
}

/// x264's speed presets, fastest first.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Outgoing mail (Django's `EMAIL_*` and `DEFAULT_FROM_EMAIL` in Pod).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// SMTP server: `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://user:password@host:465` (TLS). Default `""`: no mail is sent, and pages that
    /// send mail say so. Env `AMPHI_SMTP_URL`.
    pub smtp_url: Redacted<String>,
    /// Sender of every mail (Pod's `DEFAULT_FROM_EMAIL`); invitations carry the inviting
    /// owner as `Reply-To`. Default `"amphi <noreply@localhost>"`.
    pub from: String,
}

/// What users see of the site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// Name shown in the title bar and mails. Default `"amphi"`.
    pub title: String,
    /// Language when neither the user's choice nor `Accept-Language` decides: `"fr"` or `"en"`.
    /// Default `"fr"`.
    pub default_language: String,
    /// Administrators' mail addresses (capacity alerts, Pod's `ADMINS`). Default `[]`.
    pub admins: Vec<String>,
    /// Serve Prometheus metrics at `/metrics`. Default `true`.
    pub metrics: bool,
    /// IANA time zone in which meeting dates are entered, shown and repeated (Django's
    /// `TIME_ZONE` in Pod). Default `"Europe/Paris"`.
    pub time_zone: String,
}

impl SiteConfig {
    /// The site's time zone (validated at load, so this cannot fail on a checked config).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::Europe::Paris)
    }
}

/// Where amphi keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`. Default `""`: SQLite file
    /// `amphi.sqlite3` in `data_dir`. Env `AMPHI_DATABASE_URL`.
    pub url: Redacted<String>,
    /// Largest number of pooled connections. Default `10`.
    pub max_connections: u32,
    /// Seconds to wait for the database at start-up and for a pooled connection. Default `5`.
    pub connect_timeout_seconds: u64,
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directives, e.g. `"info,amphi=debug"`. Default `"info"`. Env `AMPHI_LOG`.
    pub filter: String,
    /// `"text"` for people, `"json"` for log collectors. Default `"text"`. Env `AMPHI_LOG_FORMAT`.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Login, sessions and the trusted reverse proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Offer the local username/password form. Default `true`.
    pub local_login: bool,
    /// Hours a login session lasts. Default `12`.
    pub session_hours: u32,
    /// Failed logins for one account within `login_window_minutes` before it is locked for the
    /// rest of the window. Default `5`.
    pub login_max_failures_per_account: u32,
    /// Failed logins from one address within `login_window_minutes` before it is refused.
    /// Default `20`.
    pub login_max_failures_per_ip: u32,
    /// Length of the failed-login window in minutes. Default `15`.
    pub login_window_minutes: u32,
    pub proxy: ProxyAuthConfig,
}

/// Identity taken from headers set by a front proxy (CAS, Shibboleth). Off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyAuthConfig {
    /// Accept identity headers. Default `false`.
    pub enabled: bool,
    /// Addresses (CIDR) of the proxies allowed to send identity headers and `X-Forwarded-For`.
    /// Default `["127.0.0.1/32", "::1/128"]`.
    pub trusted_proxies: Vec<IpNet>,
    /// Header holding the username. Default `"X-Remote-User"`.
    pub user_header: String,
    /// Header holding the mail address. Default `"X-Remote-Email"`.
    pub email_header: String,
    /// Header holding the display name. Default `"X-Remote-Name"`.
    pub display_name_header: String,
    /// Header holding the affiliation (e.g. `faculty`). Default `"X-Remote-Affiliation"`.
    pub affiliation_header: String,
    /// Header holding the access group code names. Default `"X-Remote-Groups"`.
    pub groups_header: String,
    /// Separator between group code names in `groups_header`. Default `";"`.
    pub groups_separator: String,
}

/// The BigBlueButton (or Scalelite) server amphi drives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BbbConfig {
    /// API URL ending in `/bigbluebutton/api` (Pod's `BBB_API_URL`). Default `""`: no server
    /// configured. Env `AMPHI_BBB_API_URL`.
    pub api_url: String,
    /// Shared secret from `bbb-conf --secret` (Pod's `BBB_SECRET_KEY`). Default `""`.
    /// Env `AMPHI_BBB_SECRET`.
    pub secret: Redacted<String>,
    /// Checksum algorithm: `"sha1"`, `"sha256"`, `"sha384"` or `"sha512"`. Default `"sha256"`.
    /// Env `AMPHI_BBB_CHECKSUM`.
    pub checksum: ChecksumAlgorithm,
    /// Where BBB sends users who leave (Pod's `BBB_LOGOUT_URL`). Default `""`: `public_url`.
    pub logout_url: String,
    /// `getMeetingInfo` fields shown to owners (Pod's `BBB_MEETING_INFO`).
    /// Default `["meetingName", "hasUserJoined", "recording", "participantCount",
    /// "listenerCount", "moderatorCount", "attendees", "attendee", "fullName", "role"]`.
    pub meeting_info: Vec<String>,
    /// Register with the server's bbb-webhooks (an optional BBB package) and act on its
    /// events; meeting ends and recordings are also learned without it. Default `false`.
    pub webhooks: bool,
    /// How often the webhook registration is checked and renewed, in minutes. Default `10`.
    pub webhooks_refresh_minutes: u32,
}

/// BBB API checksum algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// Meeting management (Pod's `USE_MEETING` and `MEETING_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeetingsConfig {
    /// Show "My meetings" (Pod's `USE_MEETING`). Default `true`.
    pub enabled: bool,
    /// Only staff may list, add and edit meetings; joining is unaffected (Pod's
    /// `RESTRICT_EDIT_MEETING_ACCESS_TO_STAFF_ONLY`). Default `false`.
    pub restrict_edit_to_staff: bool,
    /// Offer recording options and recording pages (the opposite of Pod's
    /// `MEETING_DISABLE_RECORD`). Default `true`.
    pub recordings: bool,
    /// Longest expected duration a form accepts, in hours (Pod's `MEETING_MAX_DURATION`).
    /// Default `5`.
    pub max_duration_hours: u32,
    /// Slides preloaded in every new meeting, a path under `web/static` (Pod's
    /// `MEETING_PRE_UPLOAD_SLIDES`). Default `""`: none.
    pub pre_upload_slides: String,
    /// Card image, a path under `web/static` (Pod's `DEFAULT_MEETING_THUMBNAIL`).
    /// Default `"img/default-meeting.svg"`.
    pub default_thumbnail: String,
    /// Fields of the form's "Main fields" set (Pod's `MEETING_MAIN_FIELDS`). Default
    /// `["name", "owner", "additional_owners", "attendee_password", "is_restricted",
    /// "restrict_access_to_groups", "slides"]`.
    pub main_fields: Vec<String>,
    /// Fields of the "Record session" set, shown when `recordings` is on (Pod's
    /// `MEETING_RECORD_FIELDS`). Default `["record", "auto_start_recording",
    /// "allow_start_stop_recording"]`.
    pub record_fields: Vec<String>,
    /// Fields of the recurrence set (Pod's `MEETING_RECURRING_FIELDS`). Default
    /// `["recurrence", "frequency", "recurring_until", "nb_occurrences", "weekdays",
    /// "monthly_type"]`.
    pub recurring_fields: Vec<String>,
    /// Fields of the webinar set (Pod's `MEETING_WEBINAR_FIELDS`, plus amphi's layout and chat
    /// options). Default `["is_webinar", "enable_chat", "webinar_layout",
    /// "webinar_anonymous_chat", "webinar_keep_video"]`.
    pub webinar_fields: Vec<String>,
    /// How long one `getMeetings` answer serves every "running" badge, in seconds. Default `5`.
    pub status_cache_seconds: u32,
}

/// Webinar mode (Pod's `USE_MEETING_WEBINAR` and `MEETING_WEBINAR_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebinarConfig {
    /// Offer webinar mode (Pod's `USE_MEETING_WEBINAR`). Default `true`.
    pub enabled: bool,
    /// Access group code names allowed to create webinars (Pod's `MEETING_WEBINAR_AFFILIATION`).
    /// Default `["faculty", "employee", "staff"]`.
    pub affiliations: Vec<String>,
    /// Permission group whose members may create webinars (Pod's `MEETING_WEBINAR_GROUP_ADMIN`).
    /// Default `"meeting webinar admin"`.
    pub admin_group: String,
    /// Lives this instance can capture at once. Default `2`.
    pub max_lives: u32,
    /// Name of amphi's bot in BBB's user list. Default `""`: "Diffusion en direct" or "Live
    /// stream", in `site.default_language`.
    pub bot_name: String,
    /// Minutes the bot stays in a meeting without any moderator before it ends the live and
    /// leaves (so it never keeps an empty meeting alive). Default `5`.
    pub no_moderator_minutes: u32,
    /// This instance's name on the capture leases in the database. Default `""`: the host
    /// name, the port and a random suffix (new at each start).
    pub instance: String,
    /// Seconds a capture lease lasts without renewal: another instance takes a live over
    /// this long after its instance died. Default `15`, at least `3`.
    pub lease_seconds: u32,
}

impl Config {
    /// The bot's display name.
    pub fn bot_name(&self) -> String {
        match (
            self.webinar.bot_name.trim(),
            self.site.default_language.as_str(),
        ) {
            ("", "fr") => "Diffusion en direct".to_owned(),
            ("", _) => "Live stream".to_owned(),
            (name, _) => name.to_owned(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("/var/lib/amphi"),
            secret_key: Redacted::default(),
            site: SiteConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            bbb: BbbConfig::default(),
            meetings: MeetingsConfig::default(),
            webinar: WebinarConfig::default(),
            mail: MailConfig::default(),
            media: MediaConfig::default(),
            chat: ChatConfig::default(),
            videos: VideosConfig::default(),
        }
    }
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            title: "amphi".to_owned(),
            default_language: "fr".to_owned(),
            admins: Vec::new(),
            metrics: true,
            time_zone: "Europe/Paris".to_owned(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Redacted::default(),
            max_connections: 10,
            connect_timeout_seconds: 5,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            local_login: true,
            session_hours: 12,
            login_max_failures_per_account: 5,
            login_max_failures_per_ip: 20,
            login_window_minutes: 15,
            proxy: ProxyAuthConfig::default(),
        }
    }
}

impl Default for ProxyAuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            trusted_proxies: vec![
                "127.0.0.1/32".parse().expect("valid CIDR"),
                "::1/128".parse().expect("valid CIDR"),
            ],
            user_header: "X-Remote-User".to_owned(),
            email_header: "X-Remote-Email".to_owned(),
            display_name_header: "X-Remote-Name".to_owned(),
            affiliation_header: "X-Remote-Affiliation".to_owned(),
            groups_header: "X-Remote-Groups".to_owned(),
            groups_separator: ";".to_owned(),
        }
    }
}

impl Default for BbbConfig {
    fn default() -> Self {
        Self {
            api_url: String::new(),
            secret: Redacted::default(),
            checksum: ChecksumAlgorithm::Sha256,
            logout_url: String::new(),
            meeting_info: [
                "meetingName",
                "hasUserJoined",
                "recording",
                "participantCount",
                "listenerCount",
                "moderatorCount",
                "attendees",
                "attendee",
                "fullName",
                "role",
            ]
            .map(str::to_owned)
            .to_vec(),
            webhooks: false,
            webhooks_refresh_minutes: 10,
        }
    }
}

impl Default for MeetingsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            restrict_edit_to_staff: false,
            recordings: true,
            max_duration_hours: 5,
            pre_upload_slides: String::new(),
            default_thumbnail: "img/default-meeting.svg".to_owned(),
            main_fields: [
                "name",
                "owner",
                "additional_owners",
                "attendee_password",
                "is_restricted",
                "restrict_access_to_groups",
                "slides",
            ]
            .map(str::to_owned)
            .to_vec(),
            record_fields: [
                "record",
                "auto_start_recording",
                "allow_start_stop_recording",
            ]
            .map(str::to_owned)
            .to_vec(),
            recurring_fields: [
                "recurrence",
                "frequency",
                "recurring_until",
                "nb_occurrences",
                "weekdays",
                "monthly_type",
            ]
            .map(str::to_owned)
            .to_vec(),
            webinar_fields: [
                "is_webinar",
                "enable_chat",
                "webinar_layout",
                "webinar_anonymous_chat",
                "webinar_keep_video",
            ]
            .map(str::to_owned)
            .to_vec(),
            status_cache_seconds: 5,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: Redacted::default(),
            from: "amphi <noreply@localhost>".to_owned(),
        }
    }
}

impl Default for WebinarConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            affiliations: ["faculty", "employee", "staff"].map(str::to_owned).to_vec(),
            admin_group: "meeting webinar admin".to_owned(),
            max_lives: 2,
            bot_name: String::new(),
            no_moderator_minutes: 5,
            instance: String::new(),
            lease_seconds: 15,
        }
    }
}

/// Why a configuration was refused. Messages name the file, line and key; never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: &'static str, message: String },
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Parses TOML text (no environment). `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: describe_toml_error(text, &e),
        })
    }

    /// Reads the file (when given), applies the process environment, and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// Like [`Config::load`] with an explicit environment lookup (tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::from_toml(&text, path)?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        let media = &self.media;
        if !(1..=60).contains(&media.fps) {
            return Err(invalid("media.fps", "must be between 1 and 60"));
        }
        if !X264_PRESETS.contains(&media.preset.as_str()) {
            return Err(invalid(
                "media.preset",
                "must be an x264 preset: ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow or placebo",
            ));
        }
        if !(1..=10).contains(&media.segment_seconds) {
            return Err(invalid("media.segment_seconds", "must be between 1 and 10"));
        }
        if media.part_ms < 100 || media.part_ms > media.segment_seconds * 1000 {
            return Err(invalid(
                "media.part_ms",
                "must be at least 100 and at most one segment",
            ));
        }
        if media.window_segments < 7 {
            return Err(invalid(
                "media.window_segments",
                "must be at least 7 (players skip up to six segments in delta updates)",
            ));
        }
        for (key, kbps) in [
            ("media.hd_kbps", media.hd_kbps),
            ("media.sd_kbps", media.sd_kbps),
            ("media.audio_kbps", media.audio_kbps),
        ] {
            if !(32..=20_000).contains(&kbps) {
                return Err(invalid(key, "must be between 32 and 20000 kbit/s"));
            }
        }
        if media.udp_bind.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "media.udp_bind",
                "must be IP:port (port 0 picks one)",
            ));
        }
        let public = url::Url::parse(&self.public_url)
            .map_err(|e| invalid("public_url", &format!("not a URL ({e})")))?;
        if !matches!(public.scheme(), "http" | "https") {
            return Err(invalid("public_url", "must start with http:// or https://"));
        }
        if !self.bbb.api_url.is_empty() {
            let api = url::Url::parse(&self.bbb.api_url)
                .map_err(|e| invalid("bbb.api_url", &format!("not a URL ({e})")))?;
            if !matches!(api.scheme(), "http" | "https") {
                return Err(invalid(
                    "bbb.api_url",
                    "must start with http:// or https://",
                ));
            }
            if self.bbb.secret.is_empty() {
                return Err(invalid(
                    "bbb.secret",
                    "is required when bbb.api_url is set (run `bbb-conf --secret` on the BBB server)",
                ));
            }
        }
        for (key, fields) in [
            ("meetings.main_fields", &self.meetings.main_fields),
            ("meetings.record_fields", &self.meetings.record_fields),
            ("meetings.recurring_fields", &self.meetings.recurring_fields),
            ("meetings.webinar_fields", &self.meetings.webinar_fields),
        ] {
            if let Some(unknown) = fields
                .iter()
                .find(|f| !crate::meetings::form::FIELDS.contains(&f.as_str()))
            {
                return Err(invalid(
                    key,
                    &format!("names an unknown meeting field `{unknown}`"),
                ));
            }
        }
        if !self.mail.smtp_url.is_empty() {
            let url = url::Url::parse(self.mail.smtp_url.expose())
                .map_err(|_| invalid("mail.smtp_url", "is not a URL such as smtp://host:25"))?;
            if !matches!(url.scheme(), "smtp" | "smtps") {
                return Err(invalid(
                    "mail.smtp_url",
                    "must start with smtp:// or smtps://",
                ));
            }
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail.from",
                "is not a mail address such as \"amphi <noreply@univ.example>\"",
            ));
        }
        if self.bbb.webhooks_refresh_minutes == 0 {
            return Err(invalid(
                "bbb.webhooks_refresh_minutes",
                "must be at least 1",
            ));
        }
        if self.site.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "site.time_zone",
                "is not a time zone name such as \"Europe/Paris\"",
            ));
        }
        if !matches!(self.site.default_language.as_str(), "fr" | "en") {
            return Err(invalid("site.default_language", "must be \"fr\" or \"en\""));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.auth.session_hours == 0 {
            return Err(invalid("auth.session_hours", "must be at least 1"));
        }
        if self.auth.login_max_failures_per_account == 0 {
            return Err(invalid(
                "auth.login_max_failures_per_account",
                "must be at least 1",
            ));
        }
        if self.auth.login_max_failures_per_ip == 0 {
            return Err(invalid(
                "auth.login_max_failures_per_ip",
                "must be at least 1",
            ));
        }
        if self.auth.login_window_minutes == 0 {
            return Err(invalid("auth.login_window_minutes", "must be at least 1"));
        }
        if self.auth.proxy.enabled && self.auth.proxy.user_header.trim().is_empty() {
            return Err(invalid(
                "auth.proxy.user_header",
                "must name a header when the proxy mode is enabled",
            ));
        }
        if self.chat.connections_per_address == 0 {
            return Err(invalid(
                "chat.connections_per_address",
                "must be at least 1",
            ));
        }
        if self.webinar.lease_seconds < 3 {
            return Err(invalid("webinar.lease_seconds", "must be at least 3"));
        }
        if self.videos.lease_seconds < 3 {
            return Err(invalid("videos.lease_seconds", "must be at least 3"));
        }
        if !(1..=16).contains(&self.videos.workers) {
            return Err(invalid("videos.workers", "must be between 1 and 16"));
        }
        if self.videos.max_size_mb == 0 {
            return Err(invalid("videos.max_size_mb", "must be at least 1"));
        }
        if !(1..=500).contains(&self.chat.history) {
            return Err(invalid("chat.history", "must be between 1 and 500"));
        }
        if !self.chat.redis_url.is_empty() {
            crate::chat::cluster::Cluster::new(self.chat.redis_url.expose())
                .map_err(|e| invalid("chat.redis_url", &e))?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .map_err(|e| invalid("log.filter", &e.to_string()))?;
        Ok(())
    }

    /// The database URL in effect: the configured one, or SQLite in `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}",
                self.data_dir.join("amphi.sqlite3").to_string_lossy()
            )
        } else {
            self.database.url.expose().clone()
        }
    }

    /// Whether cookies must carry the `Secure` flag.
    pub fn cookies_secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Turns a toml error into "line L, column C: message (key `a.b`)" without echoing the value,
/// which may be a secret.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(span) = error.span() else {
        return message.to_owned();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let key = key_at(text, span.start);
    let message = match &key {
        Some(key) if SECRET_KEYS.contains(&key.as_str()) => hide_quoted(message),
        _ => message.to_owned(),
    };
    match key {
        Some(key) => format!("line {line}, column {column}, key `{key}`: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// Keys whose values are secrets: their parse errors never quote the value.
const SECRET_KEYS: &[&str] = &["secret_key", "bbb.secret", "database.url"];

/// Replaces every `quoted` part of a serde message (where values are echoed) with `…`.
fn hide_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for part in message.split('`') {
        out.push_str(if inside { "…" } else { part });
        inside = !inside;
    }
    out
}

/// The dotted key of the `key = value` line holding `offset`, from the nearest `[table]` header.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let mut table = String::new();
    let mut consumed = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            table = header.trim_end_matches(']').trim().to_owned();
        }
        if offset < consumed + line.len() {
            let name = trimmed.split('=').next()?.trim();
            if trimmed.starts_with('[') || name.is_empty() || !trimmed.contains('=') {
                return None;
            }
            return Some(if table.is_empty() {
                name.to_owned()
            } else {
                format!("{table}.{name}")
            });
        }
        consumed += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_line_and_key() {
        let text = "listen = \"127.0.0.1:8080\"\n[bbb]\nchecksum = \"md5\"\n";
        let err = Config::from_toml(text, Path::new("x.toml")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("bbb.checksum"), "{message}");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let text = "[auth]\nsession_hours = 3\nsesion_hours = 4\n";
        let message = Config::from_toml(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("sesion_hours"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn secret_value_is_not_echoed_in_type_errors() {
        let text = "[bbb]\nsecret = 12345678901234567890\n";
        let message = Config::from_toml(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(!message.contains("12345678901234567890"), "{message}");
        assert!(message.contains("bbb.secret"), "{message}");
    }
}
