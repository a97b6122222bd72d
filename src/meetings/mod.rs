//! Meetings as Esup-Pod's meeting module has them: the BBB meeting id, the direct-access link,
//! the schedule in the site's time zone, and the rules (`policy`) and repetitions
//! (`recurrence`). Storage is in `db::meetings`; pages and API in `web::meetings`.

pub mod form;
pub mod invite;
pub mod journal;
pub mod policy;
pub mod ready;
pub mod recurrence;
pub mod start;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use recurrence::{End, Frequency, MonthlyType, Rule, Series, Weekdays};
use sha2::{Digest, Sha256};

/// BBB's guest policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GuestPolicy {
    AlwaysAccept,
    AlwaysDeny,
    AskModerator,
}

impl GuestPolicy {
    pub const ALL: [GuestPolicy; 3] = [
        GuestPolicy::AlwaysAccept,
        GuestPolicy::AlwaysDeny,
        GuestPolicy::AskModerator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GuestPolicy::AlwaysAccept => "ALWAYS_ACCEPT",
            GuestPolicy::AlwaysDeny => "ALWAYS_DENY",
            GuestPolicy::AskModerator => "ASK_MODERATOR",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// What participants may not do (BBB's `lockSettings*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockSettings {
    pub disable_cam: bool,
    pub disable_mic: bool,
    pub disable_private_chat: bool,
    pub disable_public_chat: bool,
    pub disable_note: bool,
    pub locked_layout: bool,
}

impl LockSettings {
    /// `(BBB parameter, form field, value)` for each setting.
    pub fn entries(&self) -> [(&'static str, &'static str, bool); 6] {
        [
            (
                "lockSettingsDisableCam",
                "lock_settings_disable_cam",
                self.disable_cam,
            ),
            (
                "lockSettingsDisableMic",
                "lock_settings_disable_mic",
                self.disable_mic,
            ),
            (
                "lockSettingsDisablePrivateChat",
                "lock_settings_disable_private_chat",
                self.disable_private_chat,
            ),
            (
                "lockSettingsDisablePublicChat",
                "lock_settings_disable_public_chat",
                self.disable_public_chat,
            ),
            (
                "lockSettingsDisableNote",
                "lock_settings_disable_note",
                self.disable_note,
            ),
            (
                "lockSettingsLockedLayout",
                "lock_settings_locked_layout",
                self.locked_layout,
            ),
        ]
    }
}

/// A meeting's repetition as stored (Pod's fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repetition {
    pub rule: Rule,
    /// Date of the last occurrence (Pod's `recurring_until`).
    pub until: NaiveDate,
    /// Number of occurrences (Pod's `nb_occurrences`).
    pub count: u32,
}

impl From<Series> for Repetition {
    fn from(series: Series) -> Self {
        Repetition {
            rule: series.rule,
            until: series.until,
            count: series.count,
        }
    }
}

impl Repetition {
    pub fn series(&self) -> Series {
        Series {
            rule: self.rule,
            until: self.until,
            count: self.count,
        }
    }

    /// The RFC 5545 `RRULE` value of invitations (Pod's form: `COUNT` when there are several
    /// occurrences, which is always the case for a stored repetition).
    pub fn rrule(&self, start: NaiveDate) -> String {
        use chrono::Datelike;
        let rule = &self.rule;
        let mut parts = vec![
            format!("FREQ={}", rule.frequency.rrule()),
            format!("INTERVAL={}", rule.interval),
        ];
        match rule.frequency {
            Frequency::Weekly => parts.push(format!("BYDAY={}", rule.weekdays.rrule())),
            Frequency::Monthly => match rule.monthly {
                MonthlyType::DateDay => parts.push(format!("BYMONTHDAY={}", start.day())),
                MonthlyType::NthDay => parts.push(format!(
                    "BYDAY={}{}",
                    recurrence::nth_of_month(start),
                    recurrence::two_letters(start.weekday())
                )),
            },
            Frequency::Daily | Frequency::Yearly => {}
        }
        parts.push(format!("COUNT={}", self.count));
        parts.join(";")
    }
}

/// Django's `slugify`: accents folded to ASCII, anything but letters, digits, `_` and `-`
/// dropped, spaces and dashes collapsed into one `-`, lower case.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    let mut dash = false;
    for c in name.chars() {
        let folded = fold_accent(c);
        for c in folded.chars() {
            if c.is_ascii_alphanumeric() || c == '_' {
                if dash && !slug.is_empty() {
                    slug.push('-');
                }
                dash = false;
                slug.push(c.to_ascii_lowercase());
            } else if c.is_whitespace() || c == '-' {
                dash = true;
            }
        }
    }
    slug
}

/// The ASCII letters a Latin letter decomposes to (NFKD without the marks); other
/// characters are returned as they are and dropped by [`slugify`] unless ASCII.
fn fold_accent(c: char) -> String {
    let folded = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ō' | 'ŏ' | 'ő' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => "S",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ğ' | 'ĝ' | 'ġ' | 'ģ' => "g",
        'ľ' | 'ĺ' | 'ļ' => "l",
        'ř' | 'ŕ' | 'ŗ' => "r",
        'ť' | 'ţ' => "t",
        'ď' => "d",
        _ => return c.to_string(),
    };
    folded.to_owned()
}

/// The BBB `meetingID` of meeting `id`: Pod's `"%04d-" + slug(name)`, fixed when the meeting
/// is created (Pod recomputes it on every save, so renaming a meeting changes the id of a
/// meeting that may be running). BBB accepts 2 to 256 characters.
pub fn bbb_meeting_id(id: i64, name: &str) -> String {
    let mut meeting_id = format!("{id:04}-{}", slugify(name));
    if meeting_id.ends_with('-') {
        meeting_id.push_str("meeting");
    }
    meeting_id.truncate(256);
    meeting_id
}

/// The numeric id at the front of a meeting link (`0042-physique` → 42), as Pod resolves
/// links: the slug part is ignored, so links made before a rename still work.
pub fn id_from_link(link: &str) -> Option<i64> {
    let digits = link.split('-').next()?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id| *id > 0)
}

/// The direct-access key of a meeting: Pod's `sha256("{SECRET_KEY}-{id}-{attendee_password}")`
/// in hex, so direct links made by Pod keep working when `secret_key` is Pod's `SECRET_KEY`.
/// Changing the attendee password invalidates the links.
pub fn direct_access_key(secret_key: &[u8], id: i64, attendee_password: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(secret_key);
    hasher.update(format!("-{id}-{attendee_password}").as_bytes());
    hex::encode(hasher.finalize())
}

/// Compares a direct-access key from a link in constant time.
pub fn direct_access_matches(
    secret_key: &[u8],
    id: i64,
    attendee_password: &str,
    given: &str,
) -> bool {
    crate::bbb::checksum::checksums_match(
        &direct_access_key(secret_key, id, attendee_password),
        given,
    )
}

/// Eight random lower-case letters (Pod's initial attendee password).
pub fn random_password() -> String {
    crate::accounts::random_chars(b"abcdefghijklmnopqrstuvwxyz", 8)
}

/// A random voice bridge, 70000 to 79999 as Pod draws them.
pub fn random_voice_bridge() -> u32 {
    70_000
        + crate::accounts::random_chars(b"0123456789", 4)
            .parse::<u32>()
            .unwrap_or(0)
}

/// A local wall-clock time in `tz` as an instant; in a daylight-saving gap the first valid
/// instant after it, in an overlap the earlier one.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..4 {
        if let Some(instant) = tz.from_local_datetime(&probe).earliest() {
            return instant.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

/// The local wall-clock time of an instant in `tz`.
pub fn utc_to_local(tz: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&tz).naive_local()
}

/// A meeting's schedule: its first start, how long it lasts, how it repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub start_at: DateTime<Utc>,
    pub duration: Duration,
    pub repetition: Option<Repetition>,
}

impl Schedule {
    /// The occurrence (start instant) under way at `now` or next to come, in the site's time
    /// zone (a weekly 14:00 stays at 14:00 across daylight-saving changes). `None` when the
    /// series is over.
    pub fn current_or_next(&self, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = utc_to_local(tz, self.start_at);
        let series = self.repetition.map(|r| r.series());
        // Compare in local time, then convert: durations are wall-clock hours as Pod shows them.
        let now_local = utc_to_local(tz, now);
        recurrence::current_or_next(start, self.duration, series.as_ref(), now_local)
            .map(|local| local_to_utc(tz, local))
    }

    /// Pod's `is_active`: the last occurrence has not ended.
    pub fn is_active(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        self.current_or_next(tz, now).is_some()
    }
}

/// Builds the repetition of a form's fields, as Pod resolves it on save (`None`: the meeting
/// does not repeat, because no rule was chosen or it yields a single occurrence).
pub fn repetition(
    start: NaiveDate,
    frequency: Option<Frequency>,
    interval: u32,
    weekdays: Weekdays,
    monthly: MonthlyType,
    end: Option<End>,
) -> Result<Option<Repetition>, recurrence::RecurrenceError> {
    let Some(frequency) = frequency else {
        return Ok(None);
    };
    let rule = Rule {
        frequency,
        interval,
        weekdays: if frequency == Frequency::Weekly {
            weekdays
        } else {
            Weekdays::default()
        },
        monthly,
    };
    // Pod: no end given means a single occurrence once the constraint has its say.
    let Some(end) = end else {
        rule.validate(start)?;
        return Ok(None);
    };
    Ok(recurrence::resolve(start, rule, end)?.map(Repetition::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, Weekday};

    #[test]
    fn slugs_and_meeting_ids_as_pod_makes_them() {
        assert_eq!(
            slugify("Réunion d'équipe — Été 2026"),
            "reunion-dequipe-ete-2026"
        );
        assert_eq!(slugify("  TD  n°3 : Ça va ?  "), "td-n3-ca-va");
        assert_eq!(
            bbb_meeting_id(42, "Physique quantique"),
            "0042-physique-quantique"
        );
        assert_eq!(bbb_meeting_id(12345, "Cours"), "12345-cours");
        assert_eq!(bbb_meeting_id(7, "日本語"), "0007-meeting");
        assert_eq!(bbb_meeting_id(7, &"é".repeat(300)).len(), 256);
    }

    #[test]
    fn links_resolve_by_their_numeric_prefix() {
        assert_eq!(id_from_link("0042-physique-quantique"), Some(42));
        assert_eq!(id_from_link("0042-renamed-since"), Some(42));
        assert_eq!(id_from_link("42"), Some(42));
        for bad in [
            "",
            "-42",
            "abc-1",
            "0000-x",
            "99999999999999999999-x",
            "4 2-x",
        ] {
            assert_eq!(id_from_link(bad), None, "{bad}");
        }
    }

    #[test]
    fn direct_access_keys_are_pods() {
        // sha256("s3cret-42-abcdefgh"), computed independently with sha256sum.
        assert_eq!(
            direct_access_key(b"s3cret", 42, "abcdefgh"),
            "45bae1601c8781d0399d9d565f0dbb0763cf00f7a84afe45edbc72c691f60a92"
        );
        let key = direct_access_key(b"s3cret", 42, "abcdefgh");
        assert!(direct_access_matches(b"s3cret", 42, "abcdefgh", &key));
        assert!(!direct_access_matches(b"s3cret", 43, "abcdefgh", &key));
        assert!(!direct_access_matches(b"s3cret", 42, "changed!", &key));
    }

    #[test]
    fn weekly_meetings_keep_their_local_time_across_dst() {
        let tz = chrono_tz::Europe::Paris;
        // Monday 2026-10-19 14:00 in Paris (UTC+2); Paris switches to UTC+1 on 2026-10-25.
        let local = NaiveDate::from_ymd_opt(2026, 10, 19)
            .unwrap()
            .and_time(NaiveTime::from_hms_opt(14, 0, 0).unwrap());
        let start_at = local_to_utc(tz, local);
        assert_eq!(start_at.to_rfc3339(), "2026-10-19T12:00:00+00:00");
        let repetition = repetition(
            local.date(),
            Some(Frequency::Weekly),
            1,
            Weekdays::of(&[Weekday::Mon]),
            MonthlyType::DateDay,
            Some(End::Count(3)),
        )
        .unwrap();
        let schedule = Schedule {
            start_at,
            duration: Duration::hours(2),
            repetition,
        };
        let after_first = Utc.with_ymd_and_hms(2026, 10, 19, 15, 0, 0).unwrap();
        let next = schedule.current_or_next(tz, after_first).unwrap();
        assert_eq!(
            next.to_rfc3339(),
            "2026-10-26T13:00:00+00:00",
            "14:00 in winter time"
        );
        let over = Utc.with_ymd_and_hms(2026, 11, 2, 16, 0, 0).unwrap();
        assert!(!schedule.is_active(tz, over));
        assert_eq!(
            repetition.unwrap().rrule(local.date()),
            "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=3"
        );
    }

    #[test]
    fn daylight_saving_gaps_move_forward() {
        let tz = chrono_tz::Europe::Paris;
        // 2027-03-28 02:30 does not exist in Paris.
        let gap = NaiveDate::from_ymd_opt(2027, 3, 28)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(
            local_to_utc(tz, gap).to_rfc3339(),
            "2027-03-28T01:00:00+00:00"
        );
    }
}
