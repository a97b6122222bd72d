//! Invitations reach a real SMTP server (Debian's python3-aiosmtpd, `tests/smtp_sink.py`): one
//! mail per address, in the inviting user's language, replying to the owner, with a calendar
//! file that an iCalendar parser reads back with the right start, duration and repetition.

use crate::support::TestApp;
use amphi::config::Config;
use amphi::redact::Redacted;
use axum::http::StatusCode;
use icalendar::{Calendar, CalendarComponent, Component};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// The SMTP sink, killed when dropped.
pub(crate) struct Sink {
    _child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

pub(crate) async fn sink() -> Sink {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("the SMTP sink starts")
        .unwrap()
        .expect("the SMTP sink prints its port (is python3-aiosmtpd installed?)");
    let port = first.strip_prefix("listening ").unwrap().parse().unwrap();
    Sink {
        _child: child,
        lines,
        port,
        dir,
    }
}

impl Sink {
    /// How many messages arrived so far.
    pub(crate) fn stored(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    }

    /// Waits for the next stored message; its files' common path without extension.
    pub(crate) async fn next(&mut self) -> PathBuf {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("a mail arrives")
            .unwrap()
            .unwrap();
        PathBuf::from(line.strip_prefix("stored ").unwrap())
    }
}

pub(crate) fn read(base: &Path, extension: &str) -> String {
    std::fs::read_to_string(base.with_extension(extension))
        .unwrap_or_else(|e| panic!("{}.{extension}: {e}", base.display()))
}

#[tokio::test]
async fn invitations_arrive_with_a_calendar_file() {
    let mut sink = sink().await;
    let mut config = Config {
        public_url: "https://amphi.univ.example".to_owned(),
        ..Config::default()
    };
    config.mail.smtp_url = Redacted::new(format!("smtp://127.0.0.1:{}", sink.port));
    config.mail.from = "amphi <noreply@univ.example>".to_owned();
    let mut ann = TestApp::new(config).await;
    ann.add_user("ann", "correct horse battery").await;
    ann.add_user("bob", "correct horse battery").await;
    ann.login("ann", "correct horse battery").await;
    let fr = [("accept-language", "fr")];
    let form = ann.get_with("/meeting/add", &fr).await;
    let token = form.csrf_token();
    let created = ann
        .post_form(
            "/meeting/add",
            &[
                ("csrf_token", &token),
                ("name", "Physique quantique; TD, groupe 2"),
                ("additional_owners", "bob"),
                ("attendee_password", "quanta42"),
                ("start", "2026-12-07"),
                ("start_time", "14:00"),
                ("expected_duration", "2"),
                ("recurrence", "weekly"),
                ("weekdays", "0"),
                ("nb_occurrences", "4"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let meeting = ann.first_meeting_of("ann").await;
    let path = format!("/meeting/invite/{}", meeting.meeting_id);

    // Bad addresses: named, nothing sent.
    let page = ann.get_with(&path, &fr).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = page.csrf_token();
    let refused = ann
        .post_form(
            &path,
            &[
                ("csrf_token", &token),
                ("emails", "zoe@etu.univ.example, pas-une-adresse"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("pas-une-adresse"), "{}", refused.body);

    // Two guests and a copy to both owners: four mails.
    let sent = ann
        .post_form(
            &path,
            &[
                ("csrf_token", &token),
                (
                    "emails",
                    "zoe@etu.univ.example\nyann@etu.univ.example, zoe@etu.univ.example",
                ),
                ("owner_copy", "on"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let mut recipients = Vec::new();
    for _ in 0..4 {
        let mail = sink.next().await;
        let headers = read(&mail, "headers");
        let to = headers
            .lines()
            .find_map(|l| l.strip_prefix("Envelope-To: "))
            .unwrap()
            .to_owned();
        recipients.push(to);
        assert!(
            headers.contains("From: amphi <noreply@univ.example>"),
            "{headers}"
        );
        assert!(headers.contains("Reply-To: ann@univ.example"), "{headers}");
        assert!(
            headers
                .contains("Subject: ann vous invite à la réunion Physique quantique; TD, groupe 2"),
            "{headers}"
        );
        let text = read(&mail, "txt");
        assert!(
            text.contains("https://amphi.univ.example/meeting/"),
            "{text}"
        );
        assert!(
            text.contains("quanta42") && text.contains("a lieu 4 fois, toutes les semaines"),
            "{text}"
        );
        assert!(read(&mail, "html").contains("<strong>quanta42</strong>"));

        let ics = read(&mail, "ics");
        let calendar: Calendar = ics.parse().expect("a valid iCalendar file");
        let event = calendar
            .components
            .iter()
            .find_map(|c| match c {
                CalendarComponent::Event(e) => Some(e),
                _ => None,
            })
            .expect("one VEVENT");
        let dtstart = event.properties().get("DTSTART").unwrap();
        assert_eq!(dtstart.value(), "20261207T140000");
        assert_eq!(
            dtstart.params().get("TZID").map(|p| p.value()),
            Some("Europe/Paris")
        );
        assert_eq!(event.property_value("DURATION"), Some("PT2H"));
        assert_eq!(
            event.property_value("RRULE"),
            Some("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=4")
        );
        assert_eq!(
            event.get_summary(),
            Some("Physique quantique; TD, groupe 2")
        );
        assert_eq!(
            event.property_value("UID"),
            Some(format!("{}@amphi.univ.example", meeting.meeting_id).as_str())
        );
        assert!(
            event
                .property_value("ORGANIZER")
                .unwrap()
                .contains("mailto:ann@univ.example")
        );
        assert!(ics.contains("BEGIN:VALARM") && ics.contains("TRIGGER:-PT5M"));
    }
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "ann@univ.example",
            "bob@univ.example",
            "yann@etu.univ.example",
            "zoe@etu.univ.example"
        ]
    );
    drop(sink.dir);
}

#[tokio::test]
async fn without_smtp_the_page_says_so() {
    let mut ann = TestApp::new(Config::default()).await;
    ann.add_user("ann", "correct horse battery").await;
    ann.login("ann", "correct horse battery").await;
    let list = ann.get("/meeting/").await;
    let link = list
        .body
        .split("href=\"/meeting/invite/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let page = ann
        .get_with(
            &format!("/meeting/invite/{link}"),
            &[("accept-language", "en")],
        )
        .await;
    assert!(
        page.body.contains("Mail is not configured"),
        "{}",
        page.body
    );
    let token = page.csrf_token();
    let post = ann
        .post_form(
            &format!("/meeting/invite/{link}"),
            &[("csrf_token", &token), ("emails", "zoe@etu.univ.example")],
        )
        .await;
    assert_eq!(post.status, StatusCode::SERVICE_UNAVAILABLE);
}
