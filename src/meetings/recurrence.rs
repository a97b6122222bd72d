//! When a recurring meeting takes place: a pure engine over calendar dates (the time of day and
//! the time zone are the caller's). Daily, weekly on chosen weekdays, monthly on a date or on
//! the nth weekday, yearly; every `interval` periods; until a date or for a number of
//! occurrences.
//!
//! The semantics are those of the RRULE amphi writes in invitations (RFC 5545), so the
//! calendar and the meeting list agree: a monthly meeting on the 31st skips months without a
//! 31st (Pod clamps to the month's end and then drifts: 31, 28, 28…), a "fifth Monday" skips
//! months without one (Pod spills into the next month), 29 February recurs in leap years only,
//! and the nth weekday is the ordinal of that weekday in its month.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// Longest series amphi accepts.
pub const MAX_OCCURRENCES: u32 = 999;
/// Largest `interval` (Pod's `frequency` validator).
pub const MAX_INTERVAL: u32 = 100;
/// Periods searched for the next occurrence before giving up (guards odd rules; any valid
/// rule finds one within 12 × 100 months or 400 × 100 years).
const MAX_EMPTY_PERIODS: u32 = 1_000;

/// Pod's `recurrence` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Frequency {
    pub const ALL: [Frequency; 4] = [
        Frequency::Daily,
        Frequency::Weekly,
        Frequency::Monthly,
        Frequency::Yearly,
    ];

    /// The stored and submitted name (`daily`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Yearly => "yearly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// RFC 5545 `FREQ`.
    pub fn rrule(self) -> &'static str {
        match self {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        }
    }
}

/// Pod's `monthly_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonthlyType {
    /// "Every month on this date" (`date_day`).
    #[default]
    DateDay,
    /// "Every month on the nth same weekday" (`nth_day`).
    NthDay,
}

impl MonthlyType {
    pub fn as_str(self) -> &'static str {
        match self {
            MonthlyType::DateDay => "date_day",
            MonthlyType::NthDay => "nth_day",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [MonthlyType::DateDay, MonthlyType::NthDay]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// A set of weekdays. Stored as Pod stores it: the digits of the days, Monday = 0 … Sunday = 6
/// (`"026"` is Monday, Wednesday, Sunday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Weekdays(u8);

impl Weekdays {
    pub fn of(days: &[Weekday]) -> Self {
        let mut set = Weekdays::default();
        for day in days {
            set.insert(*day);
        }
        set
    }

    pub fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.num_days_from_monday();
    }

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The days in week order.
    pub fn days(self) -> impl Iterator<Item = Weekday> {
        (0..7u8)
            .filter(move |i| self.0 & (1 << i) != 0)
            .map(|i| Weekday::try_from(i).unwrap_or(Weekday::Mon))
    }

    /// Parses Pod's digit string; `None` for anything but distinct digits 0-6.
    pub fn from_digits(text: &str) -> Option<Self> {
        let mut set = Weekdays::default();
        for c in text.chars() {
            let day = c.to_digit(10).filter(|d| *d < 7)?;
            let day = Weekday::try_from(u8::try_from(day).ok()?).ok()?;
            if set.contains(day) {
                return None;
            }
            set.insert(day);
        }
        Some(set)
    }

    pub fn to_digits(self) -> String {
        self.days()
            .map(|d| char::from(b'0' + d.num_days_from_monday() as u8))
            .collect()
    }

    /// RFC 5545 `BYDAY` list (`MO,WE,SU`).
    pub fn rrule(self) -> String {
        self.days().map(two_letters).collect::<Vec<_>>().join(",")
    }
}

/// RFC 5545 day names.
pub fn two_letters(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

/// How a meeting repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    pub frequency: Frequency,
    /// Every `interval` days, weeks, months or years (Pod's `frequency`), 1 to 100.
    pub interval: u32,
    /// Weekly only: the days of the week.
    pub weekdays: Weekdays,
    /// Monthly only.
    pub monthly: MonthlyType,
}

/// When a series stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The last date on which an occurrence may fall.
    Until(NaiveDate),
    /// The number of occurrences, the first included.
    Count(u32),
}

/// Why a recurrence is refused; each names the form field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("the repetition interval must be between 1 and {MAX_INTERVAL}")]
    Interval,
    #[error("a weekly meeting needs at least one day of the week")]
    NoWeekday,
    #[error("in case of weekly recurring, the day of the start date must be selected")]
    StartDayNotSelected,
    #[error("the end of the recurrence must be on or after the start date")]
    UntilBeforeStart,
    #[error("a series has at most {MAX_OCCURRENCES} occurrences")]
    TooMany,
}

impl RecurrenceError {
    /// The form field the message belongs next to.
    pub fn field(&self) -> &'static str {
        match self {
            RecurrenceError::Interval => "frequency",
            RecurrenceError::NoWeekday | RecurrenceError::StartDayNotSelected => "weekdays",
            RecurrenceError::UntilBeforeStart => "recurring_until",
            RecurrenceError::TooMany => "nb_occurrences",
        }
    }
}

impl Rule {
    /// Checks the rule against the series' first date.
    pub fn validate(&self, start: NaiveDate) -> Result<(), RecurrenceError> {
        if !(1..=MAX_INTERVAL).contains(&self.interval) {
            return Err(RecurrenceError::Interval);
        }
        if self.frequency == Frequency::Weekly {
            if self.weekdays.is_empty() {
                return Err(RecurrenceError::NoWeekday);
            }
            if !self.weekdays.contains(start.weekday()) {
                return Err(RecurrenceError::StartDayNotSelected);
            }
        }
        Ok(())
    }

    /// Every occurrence date from `start` (itself the first), in order, without end.
    /// `start` must satisfy [`Rule::validate`].
    pub fn dates(self, start: NaiveDate) -> Dates {
        Dates {
            rule: self,
            start,
            period: 0,
            pending: Vec::new(),
            empty_periods: 0,
        }
    }
}

/// The ordinal of `date`'s weekday in its month (1 for the first Monday…), 1 to 5.
pub fn nth_of_month(date: NaiveDate) -> u32 {
    (date.day() - 1) / 7 + 1
}

/// The `nth` `weekday` of a month, if the month has one.
pub fn nth_weekday(year: i32, month: u32, weekday: Weekday, nth: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let offset = (7 + weekday.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
    let day = 1 + offset + 7 * (nth.checked_sub(1)?);
    NaiveDate::from_ymd_opt(year, month, day)
}

/// The occurrence dates of a rule (see [`Rule::dates`]).
#[derive(Debug, Clone)]
pub struct Dates {
    rule: Rule,
    start: NaiveDate,
    /// The next period to expand (in units of `interval`).
    period: u32,
    /// Dates of the current period not yet yielded, in reverse order.
    pending: Vec<NaiveDate>,
    empty_periods: u32,
}

impl Dates {
    /// The dates falling in period `k` (`k × interval` days, weeks, months or years after the
    /// start's), in order.
    fn period_dates(&self, k: u32) -> Vec<NaiveDate> {
        let step = k.saturating_mul(self.rule.interval);
        let start = self.start;
        match self.rule.frequency {
            Frequency::Daily => start
                .checked_add_signed(Duration::days(i64::from(step)))
                .into_iter()
                .collect(),
            Frequency::Weekly => {
                let monday =
                    start - Duration::days(i64::from(start.weekday().num_days_from_monday()));
                let Some(week) = monday.checked_add_signed(Duration::weeks(i64::from(step))) else {
                    return Vec::new();
                };
                self.rule
                    .weekdays
                    .days()
                    .map(|d| week + Duration::days(i64::from(d.num_days_from_monday())))
                    .filter(|d| *d >= start)
                    .collect()
            }
            Frequency::Monthly => {
                let Some(first) = start
                    .with_day(1)
                    .and_then(|f| f.checked_add_months(Months::new(step)))
                else {
                    return Vec::new();
                };
                let date = match self.rule.monthly {
                    MonthlyType::DateDay => first.with_day(start.day()),
                    MonthlyType::NthDay => nth_weekday(
                        first.year(),
                        first.month(),
                        start.weekday(),
                        nth_of_month(start),
                    ),
                };
                date.into_iter().collect()
            }
            Frequency::Yearly => i32::try_from(step)
                .ok()
                .and_then(|s| start.year().checked_add(s))
                .and_then(|y| NaiveDate::from_ymd_opt(y, start.month(), start.day()))
                .into_iter()
                .collect(),
        }
    }
}

impl Iterator for Dates {
    type Item = NaiveDate;

    fn next(&mut self) -> Option<NaiveDate> {
        while self.pending.is_empty() {
            if self.empty_periods > MAX_EMPTY_PERIODS {
                return None;
            }
            let mut dates = self.period_dates(self.period);
            self.period = self.period.checked_add(1)?;
            if dates.is_empty() {
                self.empty_periods += 1;
                continue;
            }
            self.empty_periods = 0;
            dates.reverse();
            self.pending = dates;
        }
        self.pending.pop()
    }
}

/// A recurrence once its end is known both ways, as Pod stores it: the last date and the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Series {
    pub rule: Rule,
    /// The last occurrence's date.
    pub until: NaiveDate,
    /// The number of occurrences.
    pub count: u32,
}

/// Resolves a recurrence as Pod does on save: an until-date wins over a count and is moved to
/// the last occurrence on or before it; a count gives the date of its last occurrence. `None`
/// when the series has a single occurrence (the meeting is then not recurring, as in Pod).
pub fn resolve(start: NaiveDate, rule: Rule, end: End) -> Result<Option<Series>, RecurrenceError> {
    rule.validate(start)?;
    let (until, count) = match end {
        End::Until(until) => {
            if until < start {
                return Err(RecurrenceError::UntilBeforeStart);
            }
            let mut last = start;
            let mut count = 0u32;
            for date in rule.dates(start).take_while(|d| *d <= until) {
                count += 1;
                if count > MAX_OCCURRENCES {
                    return Err(RecurrenceError::TooMany);
                }
                last = date;
            }
            (last, count)
        }
        End::Count(count) => {
            if count > MAX_OCCURRENCES {
                return Err(RecurrenceError::TooMany);
            }
            let Some(last) = rule.dates(start).take(count.max(1) as usize).last() else {
                return Ok(None);
            };
            let count = u32::try_from(rule.dates(start).take_while(|d| *d <= last).count())
                .unwrap_or(u32::MAX);
            (last, count)
        }
    };
    Ok((count > 1).then_some(Series { rule, until, count }))
}

/// Whether an occurrence starting at `start` is still under way or to come at `now` (an end
/// beyond the calendar's range counts as far in the future).
fn ends_after(start: NaiveDateTime, duration: Duration, now: NaiveDateTime) -> bool {
    start
        .checked_add_signed(duration)
        .is_none_or(|end| end > now)
}

/// The first occurrence (a start date-time) still under way or to come at `now`: the one whose
/// end (`start + duration`) is after `now`. `None` when the series is over. Exact, unlike Pod's
/// "next occurrence from today", which restarts the rule from today's date.
pub fn current_or_next(
    start: NaiveDateTime,
    duration: Duration,
    series: Option<&Series>,
    now: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let time: NaiveTime = start.time();
    match series {
        None => ends_after(start, duration, now).then_some(start),
        Some(series) => series
            .rule
            .dates(start.date())
            .take_while(|d| *d <= series.until)
            .map(|d| d.and_time(time))
            .find(|s| ends_after(*s, duration, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rule(frequency: Frequency, interval: u32) -> Rule {
        Rule {
            frequency,
            interval,
            weekdays: Weekdays::default(),
            monthly: MonthlyType::DateDay,
        }
    }

    fn first(rule: Rule, start: NaiveDate, n: usize) -> Vec<NaiveDate> {
        rule.dates(start).take(n).collect()
    }

    #[test]
    fn weekdays_round_trip_pods_digits() {
        let set = Weekdays::from_digits("026").unwrap();
        assert_eq!(
            set.days().collect::<Vec<_>>(),
            [Weekday::Mon, Weekday::Wed, Weekday::Sun]
        );
        assert_eq!(set.to_digits(), "026");
        assert_eq!(set.rrule(), "MO,WE,SU");
        for bad in ["7", "00", "a", "0-1"] {
            assert_eq!(Weekdays::from_digits(bad), None, "{bad}");
        }
        assert_eq!(Weekdays::from_digits(""), Some(Weekdays::default()));
    }

    #[test]
    fn daily_and_weekly() {
        assert_eq!(
            first(rule(Frequency::Daily, 3), date(2026, 12, 30), 3),
            [date(2026, 12, 30), date(2027, 1, 2), date(2027, 1, 5)]
        );
        let mut weekly = rule(Frequency::Weekly, 2);
        weekly.weekdays = Weekdays::of(&[Weekday::Mon, Weekday::Thu]);
        // Starts on a Thursday: that week's Monday is past; then every other week.
        assert_eq!(
            first(weekly, date(2026, 11, 26), 4),
            [
                date(2026, 11, 26),
                date(2026, 12, 7),
                date(2026, 12, 10),
                date(2026, 12, 21)
            ]
        );
    }

    #[test]
    fn month_ends_are_skipped_not_clamped() {
        assert_eq!(
            first(rule(Frequency::Monthly, 1), date(2027, 1, 31), 4),
            [
                date(2027, 1, 31),
                date(2027, 3, 31),
                date(2027, 5, 31),
                date(2027, 7, 31)
            ]
        );
        assert_eq!(
            first(rule(Frequency::Monthly, 1), date(2027, 1, 30), 3),
            [date(2027, 1, 30), date(2027, 3, 30), date(2027, 4, 30)]
        );
    }

    #[test]
    fn leap_days_recur_in_leap_years_only() {
        assert_eq!(
            first(rule(Frequency::Yearly, 1), date(2028, 2, 29), 3),
            [date(2028, 2, 29), date(2032, 2, 29), date(2036, 2, 29)]
        );
        // 2100 is not a leap year.
        assert_eq!(
            first(rule(Frequency::Yearly, 4), date(2096, 2, 29), 2),
            [date(2096, 2, 29), date(2104, 2, 29)]
        );
        assert_eq!(
            first(rule(Frequency::Monthly, 12), date(2028, 2, 29), 2),
            [date(2028, 2, 29), date(2032, 2, 29)]
        );
    }

    #[test]
    fn nth_weekdays_and_fifth_weekdays() {
        let mut nth = rule(Frequency::Monthly, 1);
        nth.monthly = MonthlyType::NthDay;
        // 2026-11-17 is the third Tuesday of November.
        assert_eq!(nth_of_month(date(2026, 11, 17)), 3);
        assert_eq!(
            first(nth, date(2026, 11, 17), 3),
            [date(2026, 11, 17), date(2026, 12, 15), date(2027, 1, 19)]
        );
        // 2026-11-30 is the fifth Monday; December 2026 has none, then 2027-03-29.
        assert_eq!(nth_of_month(date(2026, 11, 30)), 5);
        assert_eq!(
            first(nth, date(2026, 11, 30), 3),
            [date(2026, 11, 30), date(2027, 3, 29), date(2027, 5, 31)]
        );
        assert_eq!(nth_weekday(2026, 12, Weekday::Mon, 5), None);
        assert_eq!(
            nth_weekday(2026, 12, Weekday::Thu, 5),
            Some(date(2026, 12, 31))
        );
    }

    #[test]
    fn resolve_as_pod_stores_it() {
        let daily = rule(Frequency::Daily, 2);
        let start = date(2026, 12, 1);
        let series = resolve(start, daily, End::Until(date(2026, 12, 10)))
            .unwrap()
            .unwrap();
        assert_eq!((series.until, series.count), (date(2026, 12, 9), 5));
        let series = resolve(start, daily, End::Count(4)).unwrap().unwrap();
        assert_eq!((series.until, series.count), (date(2026, 12, 7), 4));
        assert_eq!(resolve(start, daily, End::Count(1)).unwrap(), None);
        assert_eq!(resolve(start, daily, End::Until(start)).unwrap(), None);
        assert_eq!(
            resolve(start, daily, End::Until(date(2026, 11, 30))),
            Err(RecurrenceError::UntilBeforeStart)
        );
        assert_eq!(
            resolve(start, daily, End::Count(MAX_OCCURRENCES + 1)),
            Err(RecurrenceError::TooMany)
        );
        let mut weekly = rule(Frequency::Weekly, 1);
        weekly.weekdays = Weekdays::of(&[Weekday::Mon]);
        // 2026-12-01 is a Tuesday.
        assert_eq!(
            resolve(start, weekly, End::Count(3)),
            Err(RecurrenceError::StartDayNotSelected)
        );
        assert_eq!(
            resolve(start, rule(Frequency::Daily, 0), End::Count(3)),
            Err(RecurrenceError::Interval)
        );
    }

    #[test]
    fn current_or_next_is_exact() {
        let start = date(2026, 11, 2).and_hms_opt(14, 0, 0).unwrap();
        let mut weekly = rule(Frequency::Weekly, 1);
        weekly.weekdays = Weekdays::of(&[Weekday::Mon, Weekday::Wed]);
        let series = resolve(start.date(), weekly, End::Count(6))
            .unwrap()
            .unwrap();
        let two_hours = Duration::hours(2);
        let at = |d: u32, h: u32| date(2026, 11, d).and_hms_opt(h, 0, 0).unwrap();
        // During Wednesday's session: that session.
        assert_eq!(
            current_or_next(start, two_hours, Some(&series), at(11, 15)),
            Some(at(11, 14))
        );
        // After it: the next Monday.
        assert_eq!(
            current_or_next(start, two_hours, Some(&series), at(11, 17)),
            Some(at(16, 14))
        );
        // After the sixth and last (Wednesday 18th): none.
        assert_eq!(
            current_or_next(start, two_hours, Some(&series), at(18, 16)),
            None
        );
        assert_eq!(
            current_or_next(start, two_hours, None, at(2, 15)),
            Some(start)
        );
        assert_eq!(current_or_next(start, two_hours, None, at(2, 16)), None);
    }

    /// Brute force: does `date` belong to the series of `rule` from `start`?
    fn belongs(rule: Rule, start: NaiveDate, date: NaiveDate) -> bool {
        if date < start {
            return false;
        }
        let months = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
        let step = i64::from(rule.interval);
        match rule.frequency {
            Frequency::Daily => (date - start).num_days() % step == 0,
            Frequency::Weekly => {
                let monday = |d: NaiveDate| {
                    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
                };
                rule.weekdays.contains(date.weekday())
                    && ((monday(date) - monday(start)).num_days() / 7) % step == 0
            }
            Frequency::Monthly => {
                (months(date) - months(start)) % step == 0
                    && match rule.monthly {
                        MonthlyType::DateDay => date.day() == start.day(),
                        MonthlyType::NthDay => {
                            date.weekday() == start.weekday()
                                && nth_of_month(date) == nth_of_month(start)
                        }
                    }
            }
            Frequency::Yearly => {
                i64::from(date.year() - start.year()) % step == 0
                    && date.month() == start.month()
                    && date.day() == start.day()
            }
        }
    }

    fn any_rule() -> impl proptest::strategy::Strategy<Value = (Rule, NaiveDate)> {
        use proptest::prelude::*;
        (
            0..4usize,
            1..=12u32,
            1u8..128,
            any::<bool>(),
            // Any date from 2000 to 2099.
            0..36_500i64,
        )
            .prop_map(|(f, interval, days, nth, offset)| {
                let start = date(2000, 1, 1) + Duration::days(offset);
                let mut weekdays = Weekdays(days & 0x7f);
                weekdays.insert(start.weekday());
                let rule = Rule {
                    frequency: Frequency::ALL[f],
                    interval,
                    weekdays,
                    monthly: if nth {
                        MonthlyType::NthDay
                    } else {
                        MonthlyType::DateDay
                    },
                };
                (rule, start)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// The generated dates start at the start, increase, all belong to the series, and
        /// none is missed up to the last one generated.
        #[test]
        fn occurrences_are_exactly_the_series((rule, start) in any_rule()) {
            let dates: Vec<NaiveDate> = rule.dates(start).take(40).collect();
            proptest::prop_assert_eq!(dates.first(), Some(&start));
            proptest::prop_assert!(dates.windows(2).all(|w| w[0] < w[1]));
            for d in &dates {
                proptest::prop_assert!(belongs(rule, start, *d), "{} does not belong", d);
            }
            let last = *dates.last().unwrap();
            let brute = start
                .iter_days()
                .take_while(|d| *d <= last)
                .filter(|d| belongs(rule, start, *d))
                .count();
            proptest::prop_assert_eq!(brute, dates.len());
        }

        /// Counts and until-dates agree both ways.
        #[test]
        fn counts_match_until_dates((rule, start) in any_rule(), count in 2..60u32) {
            let by_count = resolve(start, rule, End::Count(count)).unwrap().unwrap();
            proptest::prop_assert_eq!(by_count.count, count);
            let by_until = resolve(start, rule, End::Until(by_count.until)).unwrap().unwrap();
            proptest::prop_assert_eq!(by_until, by_count);
            // Any date before the next occurrence gives the same series.
            let next = rule.dates(start).nth(count as usize).unwrap();
            let before_next = next.pred_opt().unwrap();
            let same = resolve(start, rule, End::Until(before_next)).unwrap().unwrap();
            proptest::prop_assert_eq!(same, by_count);
        }
    }
}
