//! The meeting form: its fields, their order and sets, and the checks of a submission, as pure
//! code. Usernames and group code names are returned as typed for the caller to resolve (it
//! owns the database); everything else is checked here, with a message per field.

use super::recurrence::{End, Frequency, MonthlyType, RecurrenceError, Weekdays};
use super::{GuestPolicy, LockSettings, Repetition, local_to_utc, repetition};
use crate::config::MeetingsConfig;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// Every field of the form, in display order (the names are Pod's).
pub const FIELDS: &[&str] = &[
    "name",
    "owner",
    "additional_owners",
    "attendee_password",
    "is_restricted",
    "restrict_access_to_groups",
    "slides",
    "start",
    "start_time",
    "expected_duration",
    "recurrence",
    "frequency",
    "recurring_until",
    "nb_occurrences",
    "weekdays",
    "monthly_type",
    "record",
    "auto_start_recording",
    "allow_start_stop_recording",
    "is_webinar",
    "enable_chat",
    "webinar_layout",
    "webinar_anonymous_chat",
    "webinar_keep_video",
    "max_participants",
    "welcome_text",
    "webcam_only_for_moderators",
    "guest_policy",
    "lock_settings_disable_cam",
    "lock_settings_disable_mic",
    "lock_settings_disable_private_chat",
    "lock_settings_disable_public_chat",
    "lock_settings_disable_note",
    "lock_settings_locked_layout",
    "parent_meeting_id",
    "voice_bridge",
];

/// The fields only users allowed to make webinars see.
pub const WEBINAR_FIELDS: &[&str] = &[
    "is_webinar",
    "enable_chat",
    "webinar_layout",
    "webinar_anonymous_chat",
    "webinar_keep_video",
];

/// The date and time set (Pod's `MEETING_DATE_FIELDS`), hidden for personal rooms.
pub const DATE_FIELDS: &[&str] = &["start", "start_time", "expected_duration"];

/// The form's sets of fields, in order, for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fieldset {
    /// Catalog key of the legend.
    pub legend: &'static str,
    pub fields: Vec<&'static str>,
    /// Folded away until opened ("Advanced options", the recurrence).
    pub collapsed: bool,
}

/// What the form shows to this user for this meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audience {
    /// May give the meeting to someone else (superuser or `meeting.add_meeting`).
    pub can_choose_owner: bool,
    /// May make webinars (and webinar mode is on).
    pub can_make_webinars: bool,
    /// The form edits a personal room: name and dates fixed, no webinar.
    pub personal_room: bool,
}

fn named(config_list: &[String]) -> Vec<&'static str> {
    config_list
        .iter()
        .filter_map(|f| FIELDS.iter().find(|known| **known == f.as_str()).copied())
        .collect()
}

/// The sets of the form, following the `meetings.*_fields` settings; fields named by no set
/// go to "Advanced options".
pub fn fieldsets(config: &MeetingsConfig, audience: Audience) -> Vec<Fieldset> {
    let hidden = |f: &&str| {
        (*f == "owner" && !audience.can_choose_owner)
            || (audience.personal_room && (*f == "name" || DATE_FIELDS.contains(f)))
            || (!config.recordings && ["record", "auto_start_recording"].contains(f))
            || (WEBINAR_FIELDS.contains(f)
                && (!audience.can_make_webinars || audience.personal_room))
            || (audience.personal_room && config.recurring_fields.iter().any(|r| r == f))
    };
    let main = named(&config.main_fields);
    let record = if config.recordings {
        named(&config.record_fields)
    } else {
        Vec::new()
    };
    let recurring = named(&config.recurring_fields);
    let webinar = named(&config.webinar_fields);
    let placed: Vec<&str> = main
        .iter()
        .chain(&record)
        .chain(&recurring)
        .chain(&webinar)
        .chain(DATE_FIELDS)
        .copied()
        .collect();
    let advanced: Vec<&'static str> = FIELDS
        .iter()
        .filter(|f| !placed.contains(f))
        .copied()
        .collect();
    [
        ("meetings.form.main", main, false),
        ("meetings.form.dates", DATE_FIELDS.to_vec(), false),
        ("meetings.form.recurring", recurring, true),
        ("meetings.form.record", record, false),
        ("meetings.form.webinar", webinar, false),
        ("meetings.form.advanced", advanced, true),
    ]
    .into_iter()
    .map(|(legend, fields, collapsed)| Fieldset {
        legend,
        fields: fields.into_iter().filter(|f| !hidden(f)).collect(),
        collapsed,
    })
    .filter(|set| !set.fields.is_empty())
    .collect()
}

/// A message for a field: a catalog key and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub key: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl FieldError {
    fn new(key: &'static str) -> Self {
        FieldError {
            key,
            args: Vec::new(),
        }
    }

    fn with(key: &'static str, name: &'static str, value: impl ToString) -> Self {
        FieldError {
            key,
            args: vec![(name, value.to_string())],
        }
    }
}

/// Messages by field name.
pub type Errors = BTreeMap<&'static str, FieldError>;

/// A checked submission. Usernames and group code names still need resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub name: String,
    /// A username, when the user may choose the owner and typed one.
    pub owner: Option<String>,
    pub additional_owners: Vec<String>,
    pub attendee_password: String,
    pub is_restricted: bool,
    pub groups: Vec<String>,
    pub start_at: DateTime<Utc>,
    pub expected_duration_minutes: u32,
    pub repetition: Option<Repetition>,
    pub max_participants: u32,
    pub welcome_text: String,
    pub webcam_only_for_moderators: bool,
    pub record: bool,
    pub auto_start_recording: bool,
    pub allow_start_stop_recording: bool,
    pub guest_policy: Option<GuestPolicy>,
    pub lock: LockSettings,
    pub parent_meeting_id: Option<String>,
    pub voice_bridge: Option<u32>,
    pub is_webinar: bool,
    pub enable_chat: bool,
    pub webinar_layout: String,
    pub webinar_anonymous_chat: bool,
    pub webinar_keep_video: bool,
}

/// The submitted values: every value of every name, as received.
#[derive(Debug, Clone, Default)]
pub struct Input(pub Vec<(String, String)>);

impl Input {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
            .trim()
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), "on" | "true" | "1" | "yes")
    }
}

/// Years a meeting date may fall in.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A form date (`YYYY-MM-DD`) within [`YEARS`].
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    use chrono::Datelike;
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| YEARS.contains(&d.year()) && text.len() == 10)
}

/// Start times offered: every half hour (Pod's choices).
pub fn start_times() -> Vec<String> {
    (0..48)
        .map(|i| format!("{:02}:{:02}", i / 2, (i % 2) * 30))
        .collect()
}

/// Splits a list typed in one field (commas, spaces, new lines).
pub fn split_list(text: &str) -> Vec<String> {
    let mut items: Vec<String> = text
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    items.dedup();
    items
}

/// What stays as it was when the form does not show a field (personal rooms keep their name
/// and dates).
#[derive(Debug, Clone)]
pub struct Kept {
    pub name: String,
    pub start_at: DateTime<Utc>,
    pub expected_duration_minutes: u32,
}

/// Checks a submission. `kept` holds the values of a personal room the form does not show.
pub fn check(
    input: &Input,
    config: &MeetingsConfig,
    audience: Audience,
    tz: Tz,
    kept: Option<&Kept>,
) -> Result<Submission, Errors> {
    let mut errors = Errors::new();
    let name = match kept.filter(|_| audience.personal_room) {
        Some(kept) => kept.name.clone(),
        None => input.get("name").to_owned(),
    };
    let length = name.chars().count();
    if length < 2 {
        errors.insert(
            "name",
            FieldError::with("meetings.error.too_short", "min", 2),
        );
    } else if length > 250 {
        errors.insert(
            "name",
            FieldError::with("meetings.error.too_long", "max", 250),
        );
    }
    let attendee_password = input.get("attendee_password").to_owned();
    if attendee_password.is_empty() {
        errors.insert(
            "attendee_password",
            FieldError::new("meetings.error.required"),
        );
    } else if attendee_password.chars().count() > 50 {
        errors.insert(
            "attendee_password",
            FieldError::with("meetings.error.too_long", "max", 50),
        );
    }

    // Date, time and duration, in the site's time zone.
    let (start_at, expected_duration_minutes, start_date) = match kept
        .filter(|_| audience.personal_room)
    {
        Some(kept) => (
            kept.start_at,
            kept.expected_duration_minutes,
            super::utc_to_local(tz, kept.start_at).date(),
        ),
        None => {
            let date = parse_date(input.get("start"));
            if date.is_none() {
                errors.insert("start", FieldError::new("meetings.error.date"));
            }
            let time = NaiveTime::parse_from_str(input.get("start_time"), "%H:%M")
                .ok()
                .filter(|t| start_times().contains(&t.format("%H:%M").to_string()));
            if time.is_none() {
                errors.insert("start_time", FieldError::new("meetings.error.start_time"));
            }
            let hours: Option<u32> = input
                .get("expected_duration")
                .parse()
                .ok()
                .filter(|h| (1..=config.max_duration_hours).contains(h));
            if hours.is_none() {
                errors.insert(
                    "expected_duration",
                    FieldError::with("meetings.error.duration", "max", config.max_duration_hours),
                );
            }
            let date = date.unwrap_or_default();
            (
                local_to_utc(tz, date.and_time(time.unwrap_or_default())),
                hours.unwrap_or(1) * 60,
                date,
            )
        }
    };

    // Repetition.
    let mut is_webinar =
        audience.can_make_webinars && !audience.personal_room && input.checked("is_webinar");
    let recurrence = match input.get("recurrence") {
        "" => None,
        other => match Frequency::parse(other) {
            Some(f) => Some(f),
            None => {
                errors.insert("recurrence", FieldError::new("meetings.error.choice"));
                None
            }
        },
    };
    let recurrence = recurrence.filter(|_| !audience.personal_room);
    if recurrence.is_some() && is_webinar {
        errors.insert(
            "recurrence",
            FieldError::new("meetings.error.webinar_recurring"),
        );
    }
    let interval = match input.get("frequency") {
        "" => 1,
        text => text.parse().unwrap_or(0),
    };
    let mut weekdays = Weekdays::default();
    for day in input.all("weekdays") {
        match day
            .parse::<u8>()
            .ok()
            .and_then(|d| Weekday::try_from(d).ok())
        {
            Some(day) => weekdays.insert(day),
            None => {
                errors.insert("weekdays", FieldError::new("meetings.error.choice"));
            }
        }
    }
    let monthly = match input.get("monthly_type") {
        "" => MonthlyType::DateDay,
        text => MonthlyType::parse(text).unwrap_or_else(|| {
            errors.insert("monthly_type", FieldError::new("meetings.error.choice"));
            MonthlyType::DateDay
        }),
    };
    let until = match input.get("recurring_until") {
        "" => None,
        text => match parse_date(text) {
            Some(date) => Some(date),
            None => {
                errors.insert("recurring_until", FieldError::new("meetings.error.date"));
                None
            }
        },
    };
    let count = match input.get("nb_occurrences") {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                errors.insert("nb_occurrences", FieldError::new("meetings.error.number"));
                None
            }
        },
    };
    // Pod: an until-date wins over a count.
    let end = until.map(End::Until).or(count.map(End::Count));
    if recurrence.is_some() && end.is_none() && !errors.contains_key("recurring_until") {
        // Pod silently makes such a meeting a single one; amphi asks.
        errors.insert(
            "recurring_until",
            FieldError::new("meetings.error.recurrence_end"),
        );
    }
    let repetition = if errors.contains_key("start") {
        None
    } else {
        match repetition(start_date, recurrence, interval, weekdays, monthly, end) {
            Ok(r) => r,
            Err(e) => {
                errors.insert(e.field(), recurrence_error(&e));
                None
            }
        }
    };

    // Other fields.
    let number = |field: &'static str, min: u32, max: u32, errors: &mut Errors| -> Option<u32> {
        match input.get(field) {
            "" => None,
            text => match text.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Some(n),
                _ => {
                    errors.insert(
                        field,
                        FieldError {
                            key: "meetings.error.range",
                            args: vec![("min", min.to_string()), ("max", max.to_string())],
                        },
                    );
                    None
                }
            },
        }
    };
    let max_participants = number("max_participants", 0, 100_000, &mut errors).unwrap_or(150);
    let voice_bridge = number("voice_bridge", 10_000, 99_998, &mut errors);
    let welcome_text = input.get("welcome_text").to_owned();
    if welcome_text.chars().count() > 5_000 {
        errors.insert(
            "welcome_text",
            FieldError::with("meetings.error.too_long", "max", 5_000),
        );
    }
    let mut guest_policy = match input.get("guest_policy") {
        "" => None,
        text => match GuestPolicy::parse(text) {
            Some(g) => Some(g),
            None => {
                errors.insert("guest_policy", FieldError::new("meetings.error.choice"));
                None
            }
        },
    };
    let parent_meeting_id =
        Some(input.get("parent_meeting_id").to_owned()).filter(|p| !p.is_empty());
    if parent_meeting_id
        .as_ref()
        .is_some_and(|p| p.chars().count() > 100)
    {
        errors.insert(
            "parent_meeting_id",
            FieldError::with("meetings.error.too_long", "max", 100),
        );
    }
    let owner =
        Some(input.get("owner").to_owned()).filter(|o| audience.can_choose_owner && !o.is_empty());
    let additional_owners = split_list(input.get("additional_owners"));
    let groups: Vec<String> = input
        .all("restrict_access_to_groups")
        .map(str::to_owned)
        .collect();
    let mut is_restricted = input.checked("is_restricted") || !groups.is_empty();
    let record = config.recordings && input.checked("record");
    let enable_chat = is_webinar && input.checked("enable_chat");
    let webinar_anonymous_chat = is_webinar && input.checked("webinar_anonymous_chat");
    let webinar_keep_video = is_webinar && input.checked("webinar_keep_video");
    let webinar_layout = match input.get("webinar_layout") {
        "" => crate::media::layout::DEFAULT.to_owned(),
        name if crate::media::layout::Layout::named(name).is_some() => name.to_owned(),
        _ => {
            errors.insert(
                "webinar_layout",
                FieldError::new("meetings.error.webinar_layout"),
            );
            crate::media::layout::DEFAULT.to_owned()
        }
    };
    if is_webinar {
        // Pod's webinar rules: guests always accepted, the live page handles access.
        guest_policy = Some(GuestPolicy::AlwaysAccept);
        is_restricted = !groups.is_empty();
    }
    if audience.personal_room {
        is_webinar = false;
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Submission {
        name,
        owner,
        additional_owners,
        attendee_password,
        is_restricted,
        groups,
        start_at,
        expected_duration_minutes,
        repetition,
        max_participants,
        welcome_text,
        webcam_only_for_moderators: input.checked("webcam_only_for_moderators"),
        record,
        auto_start_recording: record && input.checked("auto_start_recording"),
        allow_start_stop_recording: input.checked("allow_start_stop_recording"),
        guest_policy,
        lock: LockSettings {
            disable_cam: input.checked("lock_settings_disable_cam"),
            disable_mic: input.checked("lock_settings_disable_mic"),
            disable_private_chat: input.checked("lock_settings_disable_private_chat"),
            disable_public_chat: input.checked("lock_settings_disable_public_chat"),
            disable_note: input.checked("lock_settings_disable_note"),
            locked_layout: input.checked("lock_settings_locked_layout"),
        },
        parent_meeting_id,
        voice_bridge,
        is_webinar,
        enable_chat,
        webinar_layout,
        webinar_anonymous_chat,
        webinar_keep_video,
    })
}

fn recurrence_error(error: &RecurrenceError) -> FieldError {
    match error {
        RecurrenceError::Interval => FieldError {
            key: "meetings.error.range",
            args: vec![
                ("min", "1".into()),
                ("max", super::recurrence::MAX_INTERVAL.to_string()),
            ],
        },
        RecurrenceError::NoWeekday => FieldError::new("meetings.error.no_weekday"),
        RecurrenceError::StartDayNotSelected => FieldError::new("meetings.error.start_day"),
        RecurrenceError::UntilBeforeStart => FieldError::new("meetings.error.until_before_start"),
        RecurrenceError::TooMany => FieldError::with(
            "meetings.error.too_many",
            "max",
            super::recurrence::MAX_OCCURRENCES,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pairs: &[(&str, &str)]) -> Input {
        Input(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    const AUDIENCE: Audience = Audience {
        can_choose_owner: false,
        can_make_webinars: true,
        personal_room: false,
    };

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("name", "Physique quantique"),
            ("attendee_password", "abcdefgh"),
            ("start", "2026-12-07"),
            ("start_time", "14:00"),
            ("expected_duration", "2"),
        ]
    }

    fn run(pairs: &[(&str, &str)]) -> Result<Submission, Errors> {
        check(
            &input(pairs),
            &MeetingsConfig::default(),
            AUDIENCE,
            chrono_tz::Europe::Paris,
            None,
        )
    }

    #[test]
    fn a_plain_meeting() {
        let s = run(&base()).unwrap();
        assert_eq!(s.start_at.to_rfc3339(), "2026-12-07T13:00:00+00:00");
        assert_eq!(s.expected_duration_minutes, 120);
        assert_eq!(s.max_participants, 150);
        assert_eq!(s.repetition, None);
        assert!(!s.is_restricted && !s.record);
    }

    #[test]
    fn dates_outside_the_calendar_are_refused() {
        for bad in [
            "+262143-12-31",
            "1899-01-01",
            "2101-01-01",
            "2026-1-5",
            "2026-02-30",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
        assert!(parse_date("2026-12-07").is_some());
        let mut far = base();
        far.retain(|(k, _)| *k != "start");
        far.extend([("start", "9999-12-31"), ("start_time", "23:30")]);
        assert_eq!(run(&far).unwrap_err()["start"].key, "meetings.error.date");
    }

    #[test]
    fn bad_values_get_a_message_each() {
        let errors = run(&[
            ("name", "x"),
            ("start", "2026-13-45"),
            ("start_time", "14:10"),
            ("expected_duration", "9"),
            ("voice_bridge", "123"),
            ("guest_policy", "MAYBE"),
        ])
        .unwrap_err();
        let fields: Vec<&str> = errors.keys().copied().collect();
        assert_eq!(
            fields,
            [
                "attendee_password",
                "expected_duration",
                "guest_policy",
                "name",
                "start",
                "start_time",
                "voice_bridge"
            ]
        );
        assert_eq!(
            errors["expected_duration"].args,
            vec![("max", "5".to_owned())]
        );
    }

    #[test]
    fn recurrences_are_checked_as_pod_does_and_better() {
        let mut weekly = base();
        weekly.extend([
            ("recurrence", "weekly"),
            ("weekdays", "2"),
            ("nb_occurrences", "4"),
        ]);
        // 2026-12-07 is a Monday: its day must be ticked.
        let errors = run(&weekly).unwrap_err();
        assert_eq!(errors["weekdays"].key, "meetings.error.start_day");
        weekly.push(("weekdays", "0"));
        let s = run(&weekly).unwrap();
        let r = s.repetition.unwrap();
        assert_eq!((r.count, r.until.to_string()), (4, "2026-12-16".to_owned()));

        let mut endless = base();
        endless.push(("recurrence", "daily"));
        assert_eq!(
            run(&endless).unwrap_err()["recurring_until"].key,
            "meetings.error.recurrence_end"
        );

        let mut before = base();
        before.extend([("recurrence", "daily"), ("recurring_until", "2026-12-01")]);
        assert_eq!(
            run(&before).unwrap_err()["recurring_until"].key,
            "meetings.error.until_before_start"
        );

        let mut webinar = base();
        webinar.extend([
            ("recurrence", "daily"),
            ("nb_occurrences", "3"),
            ("is_webinar", "on"),
        ]);
        assert_eq!(
            run(&webinar).unwrap_err()["recurrence"].key,
            "meetings.error.webinar_recurring"
        );
    }

    #[test]
    fn groups_restrict_and_webinars_accept_guests() {
        let mut grouped = base();
        grouped.push(("restrict_access_to_groups", "l3-physique"));
        let s = run(&grouped).unwrap();
        assert!(s.is_restricted);
        assert_eq!(s.groups, ["l3-physique"]);

        let mut webinar = base();
        webinar.extend([
            ("is_webinar", "on"),
            ("enable_chat", "on"),
            ("is_restricted", "on"),
            ("guest_policy", "ALWAYS_DENY"),
        ]);
        let s = run(&webinar).unwrap();
        assert!(s.is_webinar && s.enable_chat && !s.is_restricted);
        assert_eq!(s.guest_policy, Some(GuestPolicy::AlwaysAccept));
    }

    #[test]
    fn personal_rooms_keep_name_and_dates() {
        let kept = Kept {
            name: "Salle personnelle".into(),
            start_at: DateTime::from_timestamp(1_764_234_000, 0).unwrap(),
            expected_duration_minutes: 120,
        };
        let audience = Audience {
            personal_room: true,
            ..AUDIENCE
        };
        let s = check(
            &input(&[
                ("name", "Renamed"),
                ("attendee_password", "pw"),
                ("is_webinar", "on"),
                ("recurrence", "daily"),
            ]),
            &MeetingsConfig::default(),
            audience,
            chrono_tz::Europe::Paris,
            Some(&kept),
        )
        .unwrap();
        assert_eq!(s.name, "Salle personnelle");
        assert_eq!(s.start_at, kept.start_at);
        assert!(!s.is_webinar && s.repetition.is_none());
        let sets = fieldsets(&MeetingsConfig::default(), audience);
        let shown: Vec<&str> = sets.iter().flat_map(|s| s.fields.clone()).collect();
        for hidden in ["name", "start", "recurrence", "is_webinar", "owner"] {
            assert!(!shown.contains(&hidden), "{hidden}");
        }
    }

    #[test]
    fn fieldsets_follow_the_settings() {
        let config = MeetingsConfig {
            main_fields: vec!["name".into(), "attendee_password".into()],
            ..MeetingsConfig::default()
        };
        let sets = fieldsets(&config, AUDIENCE);
        assert_eq!(sets[0].fields, ["name", "attendee_password"]);
        let advanced = sets.last().unwrap();
        assert_eq!(advanced.legend, "meetings.form.advanced");
        assert!(
            advanced.fields.contains(&"is_restricted") && advanced.fields.contains(&"voice_bridge")
        );
        let all: Vec<&str> = sets.iter().flat_map(|s| s.fields.clone()).collect();
        // Every field but the hidden owner appears exactly once.
        for field in FIELDS.iter().filter(|f| **f != "owner") {
            assert_eq!(all.iter().filter(|f| *f == field).count(), 1, "{field}");
        }
    }
}
