//! Invitations: the addresses typed by the owner, and the iCalendar file attached to each mail
//! (RFC 5545, with the meeting's repetition as an `RRULE` in the site's time zone).

use super::{Repetition, utc_to_local};
use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Utc};
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

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.abs() / 60;
    format!("{sign}{:02}{:02}", minutes / 60, minutes % 60)
}

fn offset_at(tz: Tz, instant: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&instant.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The `VTIMEZONE` of `tz` for the dates `from` to `until`: the offset changes found in that
/// span (from the one in force at `from`), each as a `STANDARD` or `DAYLIGHT` part, so that
/// calendars without the zone database place the series right (RFC 5545 requires it with
/// `TZID`).
pub fn vtimezone(tz: Tz, from: NaiveDate, until: NaiveDate) -> Vec<String> {
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - Duration::days(366);
    let end = until
        .min(from + Duration::days(366 * 10))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        + Duration::days(2);
    // Offset changes, found every 15 minutes (every zone changes on a quarter hour).
    let mut changes: Vec<(DateTime<Utc>, i32, i32)> = Vec::new();
    let mut at = start;
    let mut offset = offset_at(tz, at);
    while at < end {
        let next = at + Duration::minutes(15);
        let next_offset = offset_at(tz, next);
        if next_offset != offset {
            changes.push((next, offset, next_offset));
            offset = next_offset;
        }
        at = next;
    }
    let from_instant = from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    // Keep the last change before the series (it says what is in force) and those after.
    let first = changes
        .iter()
        .rposition(|(t, ..)| *t <= from_instant)
        .unwrap_or(0);
    let mut lines = vec!["BEGIN:VTIMEZONE".to_owned(), format!("TZID:{}", tz.name())];
    if changes.is_empty() {
        let offset = offset_text(offset_at(tz, from_instant));
        lines.extend([
            "BEGIN:STANDARD".to_owned(),
            "DTSTART:19700101T000000".to_owned(),
            format!("TZOFFSETFROM:{offset}"),
            format!("TZOFFSETTO:{offset}"),
            "END:STANDARD".to_owned(),
        ]);
    }
    for (instant, before, after) in &changes[first..] {
        let kind = if after > before {
            "DAYLIGHT"
        } else {
            "STANDARD"
        };
        // DTSTART is the local time of the change, before it happens.
        let local = (*instant + Duration::seconds(i64::from(*before))).naive_utc();
        lines.extend([
            format!("BEGIN:{kind}"),
            format!("DTSTART:{}", local.format("%Y%m%dT%H%M%S")),
            format!("TZOFFSETFROM:{}", offset_text(*before)),
            format!("TZOFFSETTO:{}", offset_text(*after)),
            format!("END:{kind}"),
        ]);
    }
    lines.push("END:VTIMEZONE".to_owned());
    lines
}

/// A parameter value, quoted (RFC 5545 forbids `"` inside).
fn param(value: &str) -> String {
    format!("\"{}\"", value.replace(['"', '\r', '\n'], ""))
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
    let last_day = event.repetition.map_or(local.date(), |r| r.until);
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//amphi//meetings//EN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
    ];
    lines.extend(vtimezone(event.tz, local.date(), last_day));
    lines.extend([
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@{}", event.meeting_id, event.host),
        format!("DTSTAMP:{}", event.now.format("%Y%m%dT%H%M%SZ")),
        format!(
            "DTSTART;TZID={}:{}",
            event.tz.name(),
            local.format("%Y%m%dT%H%M%S")
        ),
        format!("DURATION:{duration}"),
    ]);
    if let Some(repetition) = event.repetition {
        lines.push(format!("RRULE:{}", repetition.rrule(local.date())));
    }
    lines.extend([
        format!("SUMMARY:{}", text(event.name)),
        format!("DESCRIPTION:{}", text(event.description)),
        format!("URL:{}", event.url),
        format!(
            "ORGANIZER;CN={}:mailto:{}",
            param(event.organizer_name),
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
    fn paris_has_its_changes_and_reunion_has_none() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let paris = vtimezone(chrono_tz::Europe::Paris, d(2026, 12, 7), d(2027, 6, 7)).join("\n");
        // In force at the start (winter time since 2026-10-25), then summer time on 2027-03-28.
        assert!(
            paris.contains(
                "BEGIN:STANDARD\nDTSTART:20261025T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100"
            ),
            "{paris}"
        );
        assert!(
            paris.contains(
                "BEGIN:DAYLIGHT\nDTSTART:20270328T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200"
            ),
            "{paris}"
        );
        let reunion =
            vtimezone(chrono_tz::Indian::Reunion, d(2026, 12, 7), d(2027, 6, 7)).join("\n");
        assert!(
            reunion.contains("TZOFFSETFROM:+0400\nTZOFFSETTO:+0400"),
            "{reunion}"
        );
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
