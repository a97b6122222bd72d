//! Configuration: example file vs defaults, environment overrides, and bad input.

use amphi::config::{
    ChecksumAlgorithm, Config, ConfigError, ENV_OVERRIDES, EXAMPLE_TOML, LogFormat,
};
use std::collections::HashMap;
use std::path::Path;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn example_file_equals_the_defaults() {
    let parsed = Config::from_toml(EXAMPLE_TOML, Path::new("docker/amphi.example.toml")).unwrap();
    assert_eq!(parsed, Config::default());
}

/// Every key of the defaults appears in the example, each with a comment line above it.
#[test]
fn example_file_shows_and_comments_every_key() {
    fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (key, value) in table {
            let full = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => keys(&full, inner, out),
                _ => out.push(full),
            }
        }
    }
    let defaults: toml::Table =
        toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
    let example: toml::Table = toml::from_str(EXAMPLE_TOML).unwrap();
    let (mut wanted, mut present) = (Vec::new(), Vec::new());
    keys("", &defaults, &mut wanted);
    keys("", &example, &mut present);
    wanted.sort();
    present.sort();
    assert_eq!(
        wanted, present,
        "the example must list exactly the configuration keys"
    );
    assert!(wanted.len() > 30, "{wanted:?}");

    let lines: Vec<&str> = EXAMPLE_TOML.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('[') {
            continue;
        }
        let previous = lines[..index]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap();
        assert!(
            previous.trim().starts_with('#'),
            "key without a comment: {trimmed}"
        );
    }
}

#[test]
fn print_default_output_is_the_example() {
    let output = std::process::Command::new(crate::support::amphi_bin())
        .args(["config", "print-default"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), EXAMPLE_TOML);
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("amphi.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[bbb]\napi_url = \"https://file.example/bigbluebutton/api\"\nsecret = \"from-file\"\n").unwrap();
    let config = Config::load_with_env(
        Some(&file),
        env(&[
            ("AMPHI_LISTEN", "0.0.0.0:8443"),
            ("AMPHI_DATABASE_URL", "postgres://amphi@db.example/amphi"),
            ("AMPHI_PUBLIC_URL", "https://webinaires.univ.example"),
            (
                "AMPHI_BBB_API_URL",
                "https://bbb.univ.example/bigbluebutton/api",
            ),
            ("AMPHI_BBB_SECRET", "from-env"),
            ("AMPHI_BBB_CHECKSUM", "SHA512"),
            ("AMPHI_LOG_FORMAT", "json"),
        ]),
    )
    .unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(config.database_url(), "postgres://amphi@db.example/amphi");
    assert_eq!(config.public_url, "https://webinaires.univ.example");
    assert!(config.cookies_secure());
    assert_eq!(
        config.bbb.api_url,
        "https://bbb.univ.example/bigbluebutton/api"
    );
    assert_eq!(config.bbb.secret.expose(), "from-env");
    assert_eq!(config.bbb.checksum, ChecksumAlgorithm::Sha512);
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn every_documented_variable_is_applied() {
    for (var, key) in ENV_OVERRIDES {
        let value = match *var {
            "AMPHI_LISTEN" => "127.0.0.1:1",
            "AMPHI_LOG_FORMAT" => "json",
            "AMPHI_BBB_CHECKSUM" => "sha1",
            "AMPHI_PUBLIC_URL" | "AMPHI_BBB_API_URL" => "https://changed.example",
            _ => "changed-value",
        };
        let mut config = Config::default();
        config.apply_env(env(&[(var, value)])).unwrap();
        assert_ne!(config, Config::default(), "{var} did not change {key}");
    }
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ref/config.md"))
        .unwrap();
    for (var, _) in ENV_OVERRIDES {
        assert!(
            docs.contains(var),
            "docs/ref/config.md does not mention {var}"
        );
    }
}

#[test]
fn empty_variables_count_as_unset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("amphi.toml");
    std::fs::write(
        &file,
        "[bbb]\napi_url = \"https://bbb.example/bigbluebutton/api\"\nsecret = \"s\"\n",
    )
    .unwrap();
    let config = Config::load_with_env(
        Some(&file),
        env(&[("AMPHI_BBB_API_URL", ""), ("AMPHI_BBB_SECRET", "")]),
    )
    .unwrap();
    assert_eq!(config.bbb.api_url, "https://bbb.example/bigbluebutton/api");
    assert_eq!(config.bbb.secret.expose(), "s");
}

#[test]
fn zero_login_limits_are_refused() {
    let err = Config::from_toml(
        "[auth]\nlogin_max_failures_per_ip = 0\n",
        Path::new("x.toml"),
    )
    .unwrap()
    .validate()
    .unwrap_err();
    assert!(
        err.to_string().contains("auth.login_max_failures_per_ip"),
        "{err}"
    );
}

#[test]
fn default_database_is_sqlite_in_the_data_dir() {
    let config = Config::load_with_env(None, env(&[("AMPHI_DATA_DIR", "/srv/amphi")])).unwrap();
    assert_eq!(config.database_url(), "sqlite:///srv/amphi/amphi.sqlite3");
}

#[test]
fn bad_environment_values_name_the_variable() {
    let err = Config::load_with_env(None, env(&[("AMPHI_LISTEN", "localhost")])).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Env {
                var: "AMPHI_LISTEN",
                ..
            }
        ),
        "{err}"
    );
    let err = Config::load_with_env(None, env(&[("AMPHI_BBB_CHECKSUM", "md5")])).unwrap_err();
    assert!(err.to_string().contains("AMPHI_BBB_CHECKSUM"), "{err}");
}

#[test]
fn bbb_url_without_secret_is_refused() {
    let err = Config::load_with_env(
        None,
        env(&[("AMPHI_BBB_API_URL", "https://bbb.example/bigbluebutton/api")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bbb.secret"), "{err}");
    let err = Config::load_with_env(None, env(&[("AMPHI_PUBLIC_URL", "ftp://x")])).unwrap_err();
    assert!(err.to_string().contains("public_url"), "{err}");
}

#[test]
fn malformed_file_names_the_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "# comment\nlisten = \"127.0.0.1:8080\"\n\n[auth]\nsession_hours = \"twelve\"\n",
    )
    .unwrap();
    let err = Config::load_with_env(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("auth.session_hours"), "{err}");
    assert!(err.contains("bad.toml"), "{err}");

    std::fs::write(&file, "[site]\ntitle = \"x\"\ncolour = \"blue\"\n").unwrap();
    let err = Config::load_with_env(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `colour`"), "{err}");
    assert!(err.contains("line 3"), "{err}");

    std::fs::write(&file, "listen = \n").unwrap();
    let err = Config::load_with_env(Some(&file), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn config_check_command_reports_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, EXAMPLE_TOML).unwrap();
    let output = std::process::Command::new(crate::support::amphi_bin())
        .args(["config", "check"])
        .arg(&good)
        .env_remove("AMPHI_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(": ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[bbb]\nchecksum = \"md5\"\n").unwrap();
    let output = std::process::Command::new(crate::support::amphi_bin())
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("bbb.checksum"),
        "{stderr}"
    );
}

#[test]
fn the_bot_is_named_in_the_sites_language() {
    let mut config = amphi::config::Config::default();
    assert_eq!(config.bot_name(), "Diffusion en direct");
    config.site.default_language = "en".into();
    assert_eq!(config.bot_name(), "Live stream");
    config.webinar.bot_name = "Captation amphi A".into();
    assert_eq!(config.bot_name(), "Captation amphi A");
}

/// Asserts that the default configuration changed by `edit` is refused, naming `key`.
fn refused(edit: &dyn Fn(&mut amphi::config::Config), key: &str) {
    let mut config = amphi::config::Config::default();
    edit(&mut config);
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains(key), "{error}");
}

#[test]
fn media_settings_are_checked_and_make_the_ladder() {
    use amphi::config::Config;
    refused(&|c| c.media.fps = 0, "media.fps");
    refused(&|c| c.media.preset = "turbo".into(), "media.preset");
    refused(&|c| c.media.part_ms = 2000, "media.part_ms");
    refused(&|c| c.media.part_ms = 50, "media.part_ms");
    refused(&|c| c.media.segment_seconds = 0, "media.segment_seconds");
    refused(&|c| c.media.window_segments = 3, "media.window_segments");
    refused(&|c| c.media.hd_kbps = 10, "media.hd_kbps");
    refused(&|c| c.media.udp_bind = "anywhere".into(), "media.udp_bind");

    let mut config = Config::default();
    config.media.fps = 15;
    config.media.part_ms = 200;
    config.media.segment_seconds = 2;
    config.validate().unwrap();
    let ladder = amphi::media::Ladder::from_config(&config.media);
    assert_eq!(ladder.fps, 15);
    assert_eq!(ladder.window.target_duration, 2);
    assert!((ladder.window.part_target - 0.2).abs() < 1e-9);
    let text = ladder.description();
    assert!(
        text.contains("key-int-max=30"),
        "keyframes every segment: {text}"
    );
    assert!(text.contains("chunk-duration=200000000"), "{text}");
}

#[test]
fn chat_settings_are_checked_and_reach_the_rooms() {
    use amphi::config::Config;
    refused(
        &|c| c.chat.connections_per_address = 0,
        "chat.connections_per_address",
    );
    refused(&|c| c.chat.history = 0, "chat.history");
    refused(&|c| c.chat.history = 501, "chat.history");
    let mut config = Config::default();
    config.chat.history = 20;
    config.validate().unwrap();
    let settings = amphi::chat::room::Settings::from_config(&config.chat, true, false);
    assert_eq!(
        (settings.history, settings.anonymous, settings.enabled),
        (20, true, false)
    );
}
