//! The `amphi` command line.

use crate::accounts::{Accounts, UserSpec};
use crate::clock::SystemClock;
use crate::config::{Config, EXAMPLE_TOML};
use crate::demo::{self, DemoOptions};
use crate::redact::Redacted;
use crate::{logging, server};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// amphi: BigBlueButton webinar gateway.
#[derive(Debug, Parser)]
#[command(name = "amphi", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML); AMPHI_* variables override it.
    #[arg(long, global = true, env = "AMPHI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve,
    /// Run the embedded demo: SQLite in a temporary folder and a demo account.
    Demo {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: SocketAddr,
        /// Data folder to use instead of a new temporary one.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// End the simulated meeting after this many seconds; the live then stops, amphi
        /// serves 10 s more and exits.
        #[arg(long, value_name = "SECONDS")]
        duration: Option<u64>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Talk to the configured BBB server.
    Bbb {
        #[command(subcommand)]
        command: BbbCommand,
    },
    /// Run the BBB simulator (API side) for tests and demonstrations.
    Sim {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
        listen: SocketAddr,
        /// Shared secret the simulator checks checksums with.
        #[arg(
            long,
            env = "AMPHI_SIM_SECRET",
            default_value = "amphi-simulator-secret",
            hide_env_values = true
        )]
        secret: String,
        /// Accepted checksum algorithms (bbb-web's supportedChecksumAlgorithms).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "sha1,sha256,sha384,sha512"
        )]
        checksums: Vec<String>,
        /// Put single-use tokens on playback URLs, as the ESR Scalelite does.
        #[arg(long)]
        esr_tokens: bool,
        /// Length of a simulated minute in milliseconds (meeting `duration`, the minute an
        /// empty meeting survives, the five minutes a meeting waits for its first user).
        #[arg(long, default_value_t = 60_000, value_name = "MS")]
        minute_ms: u64,
        /// Time from a recorded meeting's end to its recordings being published, in ms.
        #[arg(long, default_value_t = 3_000, value_name = "MS")]
        processing_ms: u64,
        /// Folder for the generated playback video (default: the temporary folder).
        #[arg(long, value_name = "DIR")]
        media_dir: Option<std::path::PathBuf>,
        /// Checksum algorithm of webhook deliveries (bbb-webhooks' hookChecksumAlgorithm).
        #[arg(long, default_value = "sha1", value_name = "ALGORITHM")]
        hook_checksum: String,
        /// A scenario (JSON) played in each meeting from its creation: see docs/ref/simulator.md.
        #[arg(long, value_name = "FILE")]
        scenario: Option<std::path::PathBuf>,
        /// SFU fault: answer this many media `start`s with 2201 (MEDIA_NOT_FOUND).
        #[arg(long, default_value_t = 0, value_name = "COUNT")]
        sfu_refuse: u32,
        /// SFU fault: stall ICE for this many media sessions (offer without candidates).
        #[arg(long, default_value_t = 0, value_name = "COUNT")]
        sfu_stall_ice: u32,
        /// SFU fault: send a message with an unknown id before each startResponse.
        #[arg(long)]
        sfu_unknown_messages: bool,
    },
    /// Show or check configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local account.
    Add {
        /// Username (letters, digits and @ . + - _).
        name: String,
        /// Password, at least 8 characters; `-` reads it from standard input.
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Name shown in pages (defaults to the username).
        #[arg(long, default_value = "")]
        display_name: String,
        /// May use the administration pages.
        #[arg(long)]
        staff: bool,
        /// Has every permission (implies --staff).
        #[arg(long)]
        superuser: bool,
        /// Affiliation such as faculty, employee, student.
        #[arg(long, default_value = "")]
        affiliation: String,
        /// Access group code name (repeatable).
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
    },
    /// List accounts.
    List,
    /// Grant permissions (such as meeting.change_meeting) or permission group memberships
    /// (such as "meeting webinar admin").
    Grant {
        name: String,
        /// Permission codename (repeatable).
        #[arg(long = "permission", value_name = "P")]
        permissions: Vec<String>,
        /// Permission group, created when missing (repeatable).
        #[arg(long = "permission-group", value_name = "G")]
        permission_groups: Vec<String>,
    },
    /// Replace a local password.
    SetPassword {
        name: String,
        /// New password; `-` reads it from standard input.
        #[arg(long)]
        password: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for USER and print it (it is shown only once).
    Create {
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        label: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BbbCommand {
    /// Call the API root and getMeetings: print the server version and whether the secret is
    /// accepted (exit code 0 when it is).
    Check {
        /// API URL (default: bbb.api_url of the configuration).
        #[arg(long)]
        url: Option<String>,
        /// Shared secret (default: bbb.secret of the configuration).
        #[arg(long, env = "AMPHI_BBB_CHECK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the default configuration, every key commented.
    PrintDefault,
    /// Check a configuration file (with AMPHI_* overrides) and report the first problem.
    Check { file: PathBuf },
}

fn read_password(given: String) -> anyhow::Result<Redacted<String>> {
    if given != "-" {
        return Ok(Redacted::new(given));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(Redacted::new(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config { command } => config_command(command),
        Command::Bbb {
            command: BbbCommand::Check { url, secret },
        } => {
            let mut config = load_quietly(cli.config.as_deref())?;
            if let Some(url) = url {
                config.bbb.api_url = url;
            }
            if let Some(secret) = secret {
                config.bbb.secret = Redacted::new(secret);
            }
            bbb_check(&config.bbb).await
        }
        Command::Sim {
            listen,
            secret,
            checksums,
            esr_tokens,
            minute_ms,
            processing_ms,
            media_dir,
            hook_checksum,
            scenario,
            sfu_refuse,
            sfu_stall_ice,
            sfu_unknown_messages,
        } => {
            logging::init(&crate::config::LogConfig::default());
            let algorithm = |name: &str| {
                crate::config::ChecksumAlgorithm::from_name(name)
                    .with_context(|| format!("unknown checksum algorithm `{name}`"))
            };
            let algorithms = checksums
                .iter()
                .map(|name| algorithm(name))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if minute_ms == 0 {
                anyhow::bail!("--minute-ms must be at least 1");
            }
            let options = crate::sim::SimOptions {
                secret: Redacted::new(secret),
                checksums: algorithms,
                esr_tokens,
                minute: std::time::Duration::from_millis(minute_ms),
                processing: std::time::Duration::from_millis(processing_ms),
                media_dir,
                hook_checksum: algorithm(&hook_checksum)?,
                scenario: match &scenario {
                    Some(path) => Some(
                        crate::sim::scenario::Scenario::load(path).map_err(anyhow::Error::msg)?,
                    ),
                    None => None,
                },
                sfu: crate::sim::SfuFaults {
                    refuse_not_found: sfu_refuse,
                    stall_ice: sfu_stall_ice,
                    unknown_messages: sfu_unknown_messages,
                },
                ..Default::default()
            };
            let running = crate::sim::start(listen, options).await?;
            println!("BBB simulator API: {}", running.api_url());
            server::shutdown_signal().await;
            Ok(())
        }
        Command::Demo {
            listen,
            data,
            duration,
        } => {
            logging::init(&crate::config::LogConfig {
                filter: std::env::var("AMPHI_LOG").unwrap_or_else(|_| "info".to_owned()),
                ..Default::default()
            });
            demo::run(DemoOptions {
                listen,
                data,
                duration: duration.map(std::time::Duration::from_secs),
            })
            .await
        }
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            logging::init(&config.log);
            server::run(config).await?;
            Ok(())
        }
        Command::Migrate => {
            let config = load_quietly(cli.config.as_deref())?;
            let db = server::connect_database(&config).await?;
            println!(
                "{} database is up to date ({} migrations)",
                db.engine(),
                db.migrate().await?
            );
            Ok(())
        }
        Command::User { command } => {
            let accounts = open_accounts(cli.config.as_deref()).await?;
            user_command(&accounts, command).await
        }
        Command::Token { command } => {
            let accounts = open_accounts(cli.config.as_deref()).await?;
            let TokenCommand::Create { user, label } = command;
            let token = accounts.create_api_token(&user, &label).await?;
            println!("{}", token.expose());
            Ok(())
        }
    }
}

async fn bbb_check(config: &crate::config::BbbConfig) -> anyhow::Result<()> {
    use crate::bbb::{BbbApi, Client};
    let client = Client::from_config(config)?;
    let version = client
        .api_version()
        .await
        .with_context(|| format!("{} does not answer as a BBB API", client.api_url()))?;
    println!(
        "{}: BigBlueButton {} (API {})",
        client.api_url(),
        if version.bbb_version.is_empty() {
            "of unknown version"
        } else {
            &version.bbb_version
        },
        version.api_version
    );
    match client.get_meetings().await {
        Ok(meetings) => {
            println!(
                "the shared secret is accepted ({} checksums); {} meeting(s) on the server",
                config.checksum.name(),
                meetings.len()
            );
            Ok(())
        }
        Err(e) if e.key() == Some(&crate::bbb::MessageKey::ChecksumError) => bail!(
            "the shared secret is refused ({} checksums): {e}",
            config.checksum.name()
        ),
        Err(e) => bail!("getMeetings failed, so the secret could not be checked: {e}"),
    }
}

/// Loads the configuration for a one-shot command, logging warnings only.
fn load_quietly(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let config = Config::load(path)?;
    logging::init(&quiet(&config));
    Ok(config)
}

/// The accounts of the configured (and migrated) database.
async fn open_accounts(path: Option<&std::path::Path>) -> anyhow::Result<Accounts> {
    let config = load_quietly(path)?;
    let db = server::open_database(&config).await?;
    Ok(Accounts::new(db, Arc::new(SystemClock), config.auth))
}

fn quiet(config: &Config) -> crate::config::LogConfig {
    crate::config::LogConfig {
        filter: "warn".to_owned(),
        ..config.log.clone()
    }
}

fn config_command(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::PrintDefault => {
            print!("{EXAMPLE_TOML}");
            Ok(())
        }
        ConfigCommand::Check { file } => {
            let config = Config::load(Some(&file))?;
            println!(
                "{}: ok (listen {}, database {}, BBB {})",
                file.display(),
                config.listen,
                crate::db::display_url(&config.database_url()),
                if config.bbb.api_url.is_empty() {
                    "not configured"
                } else {
                    config.bbb.api_url.as_str()
                }
            );
            Ok(())
        }
    }
}

async fn user_command(accounts: &Accounts, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            password,
            email,
            display_name,
            staff,
            superuser,
            affiliation,
            groups,
        } => {
            let spec = UserSpec {
                username: name,
                password: Some(read_password(password)?),
                email,
                display_name,
                staff,
                superuser,
                affiliation,
                groups,
            };
            let user = accounts.create_user(&spec).await?;
            println!("created user {} (id {})", user.username, user.id);
            Ok(())
        }
        UserCommand::List => {
            let users = accounts.db().list_users().await?;
            println!(
                "{:<24} {:<32} {:<12} {:<6} {:<9} groups",
                "username", "email", "affiliation", "staff", "superuser"
            );
            for user in users {
                let groups: Vec<String> = accounts
                    .db()
                    .user_access_groups(user.id)
                    .await?
                    .into_iter()
                    .map(|g| g.code_name)
                    .collect();
                println!(
                    "{:<24} {:<32} {:<12} {:<6} {:<9} {}",
                    user.username,
                    user.email,
                    user.affiliation,
                    if user.is_staff { "yes" } else { "no" },
                    if user.is_superuser { "yes" } else { "no" },
                    groups.join(",")
                );
            }
            Ok(())
        }
        UserCommand::Grant {
            name,
            permissions,
            permission_groups,
        } => {
            let db = accounts.db();
            let user = db
                .user_by_username(&name)
                .await?
                .with_context(|| format!("no user named `{name}`"))?;
            if permissions.is_empty() && permission_groups.is_empty() {
                bail!("nothing to grant: give --permission or --permission-group");
            }
            for group in &permission_groups {
                db.add_to_permission_group(user.id, group).await?;
            }
            for permission in &permissions {
                if !db.grant_permission(permission, Some(user.id), None).await? {
                    bail!(
                        "unknown permission `{permission}` (known: meeting.add_meeting, meeting.change_meeting, meeting.delete_meeting, meeting.view_meeting, meeting.end_meeting)"
                    );
                }
            }
            println!(
                "{name}: permissions {:?}, permission groups {:?}",
                db.user_permissions(user.id).await?,
                db.user_permission_groups(user.id).await?
            );
            Ok(())
        }
        UserCommand::SetPassword { name, password } => {
            if name.is_empty() {
                bail!("a username is required");
            }
            accounts
                .set_password(&name, read_password(password)?)
                .await?;
            println!("password of {name} changed");
            Ok(())
        }
    }
}
