//! Invitations: the addresses typed by the owner, and the iCalendar file attached to each mail
//! (RFC 5545, with the meeting's repetition as an `RRULE` in the site's time zone).

use super::{Repetition, utc_to_local};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Most addresses one invitation form may send to.
pub const MAX_RECIPIENTS: usize = 200;

/// Splits the invitation field as Pod does (on any character that cannot be in an address)
/// and checks each address. Returns the addresses, or the ones that are not addresses.
pub fn parse_emails(text: &str) -> Result<Vec<String>, Vec<String>> {
    let mut good: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    let parts = text
        .split(|c: char| !(c.is_alphanumeric() || "._-+@".contains(c)))
        .filter(|p| !p.is_empty());
    for part in parts {
        let address = part.trim_matches('.').to_owned();
        if crate::mail::valid_address(&address) && address.contains('@') {
            if !good.iter().any(|g| g.eq_ignore_ascii_case(&address)) {
                good.push(address);
            }
        } else {
            bad.push(address);
        }
    }
    if bad.is_empty() { Ok(good) } else { Err(bad) }
}

/// What the calendar file describes.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The BBB meeting id, which makes the `UID` with the site's host.
    pub meeting_id: &'a str,
    pub host: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub url: &'a str,
    pub organizer_name: &'a str,
    pub organizer_email: &'a str,
    pub start_at: DateTime<Utc>,
    pub duration_minutes: u32,
    pub repetition: Option<&'a Repetition>,
    pub tz: Tz,
    pub now: DateTime<Utc>,
}

/// RFC 5545 text escaping.
fn text(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets (never inside a UTF-8 character).
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

/// The `.ics` file of an invitation.
pub fn ics(event: &Event<'_>) -> String {
    let local = utc_to_local(event.tz, event.start_at);
    let hours = event.duration_minutes / 60;
    let minutes = event.duration_minutes % 60;
    let duration = match (hours, minutes) {
        (h, 0) => format!("PT{h}H"),
        (0, m) => format!("PT{m}M"),
        (h, m) => format!("PT{h}H{m}M"),
    };
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//amphi//meetings//EN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@{}", event.meeting_id, event.host),
        format!("DTSTAMP:{}", event.now.format("%Y%m%dT%H%M%SZ")),
        format!(
            "DTSTART;TZID={}:{}",
            event.tz.name(),
            local.format("%Y%m%dT%H%M%S")
        ),
        format!("DURATION:{duration}"),
    ];
    if let Some(repetition) = event.repetition {
        lines.push(format!("RRULE:{}", repetition.rrule(local.date())));
    }
    lines.extend([
        format!("SUMMARY:{}", text(event.name)),
        format!("DESCRIPTION:{}", text(event.description)),
        format!("URL:{}", event.url),
        format!(
            "ORGANIZER;CN={}:mailto:{}",
            text(event.organizer_name).replace(':', ""),
            event.organizer_email
        ),
        "BEGIN:VALARM".to_owned(),
        "ACTION:DISPLAY".to_owned(),
        "TRIGGER:-PT5M".to_owned(),
        format!("DESCRIPTION:{}", text(event.name)),
        "END:VALARM".to_owned(),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ]);
    lines.iter().map(|l| fold(l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_and_checked() {
        assert_eq!(
            parse_emails(
                "ann@univ.example, Bob@Univ.Example;\nann@univ.example carl+td@etu.univ.example"
            )
            .unwrap(),
            [
                "ann@univ.example",
                "Bob@Univ.Example",
                "carl+td@etu.univ.example"
            ]
        );
        assert_eq!(
            parse_emails("ann@univ.example, not-an-address").unwrap_err(),
            ["not-an-address"]
        );
        assert_eq!(parse_emails("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn long_lines_fold_without_breaking_characters() {
        let line = format!("SUMMARY:{}", "é".repeat(60));
        let folded = fold(&line);
        for physical in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(physical.len() <= 75, "{physical}");
        }
        assert_eq!(folded.replace("\r\n ", "").trim_end(), line);
    }
}
