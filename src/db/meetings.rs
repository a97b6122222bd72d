//! Meetings, their co-owners and access groups, and the session journal.

use super::accounts::from_millis;
use super::{Db, Error, Result, execute, on_pool};
use crate::meetings::recurrence::{Frequency, MonthlyType, Rule, Weekdays};
use crate::meetings::{GuestPolicy, LockSettings, Repetition};
use chrono::{DateTime, NaiveDate, Utc};

/// What a meeting's owner decides (the form's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingFields {
    pub name: String,
    pub owner_id: i64,
    /// Co-owners (Pod's `additional_owners`), never the owner.
    pub additional_owners: Vec<i64>,
    pub attendee_password: String,
    pub is_restricted: bool,
    /// Access groups (ids); a meeting with groups is restricted.
    pub groups: Vec<i64>,
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
    /// How the webinar's live is composed (a `media::layout` name).
    pub webinar_layout: String,
    /// Anyone with a nickname may write in the live's chat (else signed-in users only).
    pub webinar_anonymous_chat: bool,
    /// Keep the live as a video when it ends.
    pub webinar_keep_video: bool,
}

impl MeetingFields {
    /// A webinar with Pod's defaults (two hours, 150 participants, guests accepted), an
    /// audience chat, a random password and dial-in number; the demo's and the benches'.
    pub fn webinar(name: &str, owner_id: i64, start_at: DateTime<Utc>) -> Self {
        Self {
            name: name.to_owned(),
            owner_id,
            additional_owners: Vec::new(),
            attendee_password: crate::meetings::random_password(),
            is_restricted: false,
            groups: Vec::new(),
            start_at,
            expected_duration_minutes: 120,
            repetition: None,
            max_participants: 150,
            welcome_text: String::new(),
            webcam_only_for_moderators: false,
            record: false,
            auto_start_recording: false,
            allow_start_stop_recording: true,
            guest_policy: Some(GuestPolicy::AlwaysAccept),
            lock: LockSettings::default(),
            parent_meeting_id: None,
            voice_bridge: Some(crate::meetings::random_voice_bridge()),
            is_webinar: true,
            enable_chat: true,
            webinar_layout: crate::media::layout::DEFAULT.to_owned(),
            webinar_anonymous_chat: false,
            webinar_keep_video: false,
        }
    }
}

/// A stored meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: i64,
    /// The BBB `meetingID` (`0042-physique`), fixed at creation.
    pub meeting_id: String,
    pub fields: MeetingFields,
    /// Learned from BBB's `create` answer (or drawn for a personal room).
    pub moderator_password: String,
    /// File name of the slides under `data_dir/slides/<id>/`.
    pub slides: Option<String>,
    pub is_personal: bool,
    pub internal_meeting_id: Option<String>,
    pub bbb_create_time: Option<i64>,
    /// Last known BBB state.
    pub is_running: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One BBB session of a meeting (Pod's `MeetingSessionLog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingSession {
    pub id: i64,
    pub meeting_id: i64,
    pub creator_id: Option<i64>,
    pub internal_meeting_id: String,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub peak_participants: u32,
}

/// Someone who joined a session through amphi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub id: i64,
    pub session_id: i64,
    pub user_id: Option<i64>,
    pub full_name: String,
    /// `MODERATOR` or `VIEWER`.
    pub role: String,
    pub bbb_user_id: Option<String>,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

/// Filters of the admin list.
#[derive(Debug, Clone, Default)]
pub struct MeetingSearch {
    /// Part of the name or of the BBB meeting id.
    pub text: String,
    pub running: Option<bool>,
    /// Meetings starting on or after / before these instants.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub offset: u32,
    pub limit: u32,
}

macro_rules! meeting_columns {
    () => {
        "id, meeting_id, name, owner_id, attendee_password, moderator_password, is_restricted, \
         start_at, expected_duration_minutes, recurrence, frequency, recurring_until, \
         nb_occurrences, weekdays, monthly_type, max_participants, welcome_text, \
         webcam_only_for_moderators, record, auto_start_recording, allow_start_stop_recording, \
         guest_policy, lock_settings_disable_cam, lock_settings_disable_mic, \
         lock_settings_disable_private_chat, lock_settings_disable_public_chat, \
         lock_settings_disable_note, lock_settings_locked_layout, parent_meeting_id, \
         voice_bridge, slides, is_personal, is_webinar, enable_chat, webinar_layout, \
         webinar_anonymous_chat, webinar_keep_video, internal_meeting_id, bbb_create_time, is_running, created_at, \
         updated_at"
    };
}

/// The columns written from [`MeetingFields`], in the order [`bind_fields!`] binds them
/// from `$1`.
macro_rules! field_columns {
    () => {
        "name, owner_id, attendee_password, is_restricted, start_at, \
         expected_duration_minutes, recurrence, frequency, recurring_until, nb_occurrences, \
         weekdays, monthly_type, max_participants, welcome_text, webcam_only_for_moderators, \
         record, auto_start_recording, allow_start_stop_recording, guest_policy, \
         lock_settings_disable_cam, lock_settings_disable_mic, \
         lock_settings_disable_private_chat, lock_settings_disable_public_chat, \
         lock_settings_disable_note, lock_settings_locked_layout, parent_meeting_id, \
         voice_bridge, is_webinar, enable_chat, webinar_layout, webinar_anonymous_chat, \
         webinar_keep_video"
    };
}

/// Binds [`MeetingFields`] in the order of [`field_columns!`] (32 values).
macro_rules! bind_fields {
    ($query:expr, $f:expr) => {{
        let f: &MeetingFields = $f;
        let r = f.repetition.as_ref();
        $query
            .bind(&f.name)
            .bind(f.owner_id)
            .bind(&f.attendee_password)
            .bind(f.is_restricted)
            .bind(f.start_at.timestamp_millis())
            .bind(i64::from(f.expected_duration_minutes))
            .bind(r.map(|r| r.rule.frequency.as_str()))
            .bind(i64::from(r.map_or(1, |r| r.rule.interval)))
            .bind(r.map(|r| r.until.to_string()))
            .bind(r.map(|r| i64::from(r.count)))
            .bind(r.map(|r| r.rule.weekdays.to_digits()))
            .bind(r.map_or(MonthlyType::DateDay, |r| r.rule.monthly).as_str())
            .bind(i64::from(f.max_participants))
            .bind(&f.welcome_text)
            .bind(f.webcam_only_for_moderators)
            .bind(f.record)
            .bind(f.auto_start_recording)
            .bind(f.allow_start_stop_recording)
            .bind(f.guest_policy.map(GuestPolicy::as_str))
            .bind(f.lock.disable_cam)
            .bind(f.lock.disable_mic)
            .bind(f.lock.disable_private_chat)
            .bind(f.lock.disable_public_chat)
            .bind(f.lock.disable_note)
            .bind(f.lock.locked_layout)
            .bind(f.parent_meeting_id.as_deref())
            .bind(f.voice_bridge.map(i64::from))
            .bind(f.is_webinar)
            .bind(f.enable_chat)
            .bind(&f.webinar_layout)
            .bind(f.webinar_anonymous_chat)
            .bind(f.webinar_keep_video)
    }};
}

/// Makes a meeting's co-owners and groups exactly those of `fields`, inside transaction `tx`
/// (whatever the engine).
macro_rules! write_links {
    ($tx:ident, $id:expr, $fields:expr) => {
        for table in ["meeting_owners", "meeting_groups"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE meeting_id = $1"
            )))
            .bind($id)
            .execute(&mut *$tx)
            .await?;
        }
        let links = [
            ("meeting_owners", "user_id", &$fields.additional_owners),
            ("meeting_groups", "group_id", &$fields.groups),
        ];
        for (table, column, ids) in links {
            let sql = format!(
                "INSERT INTO {table} (meeting_id, {column}) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            );
            for other in ids {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind($id)
                    .bind(*other)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    };
}

#[derive(sqlx::FromRow)]
struct MeetingRow {
    id: i64,
    meeting_id: String,
    name: String,
    owner_id: i64,
    attendee_password: String,
    moderator_password: String,
    is_restricted: bool,
    start_at: i64,
    expected_duration_minutes: i64,
    recurrence: Option<String>,
    frequency: i64,
    recurring_until: Option<String>,
    nb_occurrences: Option<i64>,
    weekdays: Option<String>,
    monthly_type: String,
    max_participants: i64,
    welcome_text: String,
    webcam_only_for_moderators: bool,
    record: bool,
    auto_start_recording: bool,
    allow_start_stop_recording: bool,
    guest_policy: Option<String>,
    lock_settings_disable_cam: bool,
    lock_settings_disable_mic: bool,
    lock_settings_disable_private_chat: bool,
    lock_settings_disable_public_chat: bool,
    lock_settings_disable_note: bool,
    lock_settings_locked_layout: bool,
    parent_meeting_id: Option<String>,
    voice_bridge: Option<i64>,
    slides: Option<String>,
    is_personal: bool,
    is_webinar: bool,
    enable_chat: bool,
    webinar_layout: String,
    webinar_anonymous_chat: bool,
    webinar_keep_video: bool,
    internal_meeting_id: Option<String>,
    bbb_create_time: Option<i64>,
    is_running: bool,
    created_at: i64,
    updated_at: i64,
}

fn small(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

impl MeetingRow {
    fn into_meeting(self, additional_owners: Vec<i64>, groups: Vec<i64>) -> Meeting {
        let repetition = match (
            self.recurrence.as_deref().and_then(Frequency::parse),
            self.recurring_until
                .as_deref()
                .and_then(|d| d.parse::<NaiveDate>().ok()),
            self.nb_occurrences,
        ) {
            (Some(frequency), Some(until), Some(count)) => Some(Repetition {
                rule: Rule {
                    frequency,
                    interval: small(self.frequency).max(1),
                    weekdays: self
                        .weekdays
                        .as_deref()
                        .and_then(Weekdays::from_digits)
                        .unwrap_or_default(),
                    monthly: MonthlyType::parse(&self.monthly_type).unwrap_or_default(),
                },
                until,
                count: small(count),
            }),
            _ => None,
        };
        Meeting {
            id: self.id,
            meeting_id: self.meeting_id,
            fields: MeetingFields {
                name: self.name,
                owner_id: self.owner_id,
                additional_owners,
                attendee_password: self.attendee_password,
                is_restricted: self.is_restricted,
                groups,
                start_at: from_millis(self.start_at),
                expected_duration_minutes: small(self.expected_duration_minutes),
                repetition,
                max_participants: small(self.max_participants),
                welcome_text: self.welcome_text,
                webcam_only_for_moderators: self.webcam_only_for_moderators,
                record: self.record,
                auto_start_recording: self.auto_start_recording,
                allow_start_stop_recording: self.allow_start_stop_recording,
                guest_policy: self.guest_policy.as_deref().and_then(GuestPolicy::parse),
                lock: LockSettings {
                    disable_cam: self.lock_settings_disable_cam,
                    disable_mic: self.lock_settings_disable_mic,
                    disable_private_chat: self.lock_settings_disable_private_chat,
                    disable_public_chat: self.lock_settings_disable_public_chat,
                    disable_note: self.lock_settings_disable_note,
                    locked_layout: self.lock_settings_locked_layout,
                },
                parent_meeting_id: self.parent_meeting_id,
                voice_bridge: self.voice_bridge.map(small),
                is_webinar: self.is_webinar,
                enable_chat: self.enable_chat,
                webinar_layout: self.webinar_layout,
                webinar_anonymous_chat: self.webinar_anonymous_chat,
                webinar_keep_video: self.webinar_keep_video,
            },
            moderator_password: self.moderator_password,
            slides: self.slides,
            is_personal: self.is_personal,
            internal_meeting_id: self.internal_meeting_id,
            bbb_create_time: self.bbb_create_time,
            is_running: self.is_running,
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
        }
    }
}

/// The columns of [`SessionRow`], as a literal for `concat!`.
macro_rules! session_columns {
    () => {
        "id, meeting_id, creator_id, internal_meeting_id, created_at, ended_at, peak_participants"
    };
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: i64,
    meeting_id: i64,
    creator_id: Option<i64>,
    internal_meeting_id: String,
    created_at: i64,
    ended_at: Option<i64>,
    peak_participants: i64,
}

impl From<SessionRow> for MeetingSession {
    fn from(row: SessionRow) -> Self {
        MeetingSession {
            id: row.id,
            meeting_id: row.meeting_id,
            creator_id: row.creator_id,
            internal_meeting_id: row.internal_meeting_id,
            created_at: from_millis(row.created_at),
            ended_at: row.ended_at.map(from_millis),
            peak_participants: small(row.peak_participants),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ParticipantRow {
    id: i64,
    session_id: i64,
    user_id: Option<i64>,
    full_name: String,
    role: String,
    bbb_user_id: Option<String>,
    joined_at: i64,
    left_at: Option<i64>,
}

impl From<ParticipantRow> for Participant {
    fn from(row: ParticipantRow) -> Self {
        Participant {
            id: row.id,
            session_id: row.session_id,
            user_id: row.user_id,
            full_name: row.full_name,
            role: row.role,
            bbb_user_id: row.bbb_user_id,
            joined_at: from_millis(row.joined_at),
            left_at: row.left_at.map(from_millis),
        }
    }
}

/// `(meeting id, user or group id)`.
type Pair = (i64, i64);

/// `$first, $first+1, …` for `count` values (placeholders only, never data).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    /// Stores a new meeting; its BBB meeting id is made from the id the database gives it.
    pub async fn create_meeting(
        &self,
        fields: &MeetingFields,
        is_personal: bool,
        moderator_password: &str,
        now: DateTime<Utc>,
    ) -> Result<Meeting> {
        let pending = format!(
            "pending-{}",
            crate::accounts::random_chars(b"abcdefghij", 24)
        );
        let now_ms = now.timestamp_millis();
        let insert = concat!(
            "INSERT INTO meetings (",
            field_columns!(),
            ", meeting_id, moderator_password, is_personal, created_at, updated_at) VALUES ",
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, ",
            "$19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, ",
            "$36, $37) RETURNING id"
        );
        let id: i64 = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = bind_fields!(sqlx::query_scalar(insert), fields)
                .bind(&pending)
                .bind(moderator_password)
                .bind(is_personal)
                .bind(now_ms)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("UPDATE meetings SET meeting_id = $1 WHERE id = $2")
                .bind(crate::meetings::bbb_meeting_id(id, &fields.name))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            write_links!(tx, id, fields);
            tx.commit().await?;
            Ok::<i64, sqlx::Error>(id)
        })?;
        self.meeting(id)
            .await?
            .ok_or_else(|| Error::Query(format!("meeting {id} vanished")))
    }

    /// Saves edited fields (the BBB meeting id stays as it was: renaming a meeting does not
    /// move it to another BBB meeting).
    pub async fn update_meeting(
        &self,
        id: i64,
        fields: &MeetingFields,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = concat!(
            "UPDATE meetings SET (",
            field_columns!(),
            ", updated_at) = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, ",
            "$16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, ",
            "$33) WHERE id = $34"
        );
        let updated = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = bind_fields!(sqlx::query(sql), fields)
                .bind(now.timestamp_millis())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            write_links!(tx, id, fields);
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(done)
        })?;
        Ok(updated == 1)
    }

    /// Records the slides' file name (or removes it).
    pub async fn set_meeting_slides(&self, id: i64, slides: Option<&str>) -> Result<()> {
        execute!(self, pool => {
            sqlx::query("UPDATE meetings SET slides = $1 WHERE id = $2")
                .bind(slides)
                .bind(id)
                .execute(pool)
                .await
        })?;
        Ok(())
    }

    pub async fn delete_meeting(&self, id: i64) -> Result<bool> {
        let deleted = execute!(self, pool => {
            sqlx::query("DELETE FROM meetings WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
        })?;
        Ok(deleted == 1)
    }

    /// Loads the co-owners and groups of the given meetings.
    async fn attach(&self, rows: Vec<MeetingRow>) -> Result<Vec<Meeting>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let list = placeholders(1, ids.len());
        let owners_sql = format!(
            "SELECT meeting_id, user_id FROM meeting_owners WHERE meeting_id IN ({list}) ORDER BY user_id"
        );
        let groups_sql = format!(
            "SELECT meeting_id, group_id FROM meeting_groups WHERE meeting_id IN ({list}) ORDER BY group_id"
        );
        let (owners, groups): (Vec<Pair>, Vec<Pair>) = on_pool!(self, pool => {
            let mut owners = sqlx::query_as(sqlx::AssertSqlSafe(owners_sql));
            let mut groups = sqlx::query_as(sqlx::AssertSqlSafe(groups_sql));
            for id in &ids {
                owners = owners.bind(*id);
                groups = groups.bind(*id);
            }
            Ok::<_, sqlx::Error>((owners.fetch_all(pool).await?, groups.fetch_all(pool).await?))
        })?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let of = |pairs: &[(i64, i64)]| {
                    pairs
                        .iter()
                        .filter(|(m, _)| *m == row.id)
                        .map(|(_, v)| *v)
                        .collect()
                };
                let (o, g) = (of(&owners), of(&groups));
                row.into_meeting(o, g)
            })
            .collect())
    }

    pub async fn meeting(&self, id: i64) -> Result<Option<Meeting>> {
        let sql = concat!(
            "SELECT ",
            meeting_columns!(),
            " FROM meetings WHERE id = $1"
        );
        let row: Option<MeetingRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        Ok(self.attach(row.into_iter().collect()).await?.pop())
    }

    /// Looks a meeting up by its BBB meeting id.
    pub async fn meeting_by_bbb_id(&self, meeting_id: &str) -> Result<Option<Meeting>> {
        let sql = concat!(
            "SELECT ",
            meeting_columns!(),
            " FROM meetings WHERE meeting_id = $1"
        );
        let row: Option<MeetingRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(meeting_id).fetch_optional(pool).await
        })?;
        Ok(self.attach(row.into_iter().collect()).await?.pop())
    }

    /// The meetings a user owns or co-owns: the personal room first, then the latest start
    /// first (Pod's order).
    pub async fn meetings_of(&self, user_id: i64) -> Result<Vec<Meeting>> {
        let sql = concat!(
            "SELECT ",
            meeting_columns!(),
            " FROM meetings WHERE owner_id = $1 OR id IN \
             (SELECT meeting_id FROM meeting_owners WHERE user_id = $1) \
             ORDER BY is_personal DESC, start_at DESC, id DESC"
        );
        let rows: Vec<MeetingRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(user_id).fetch_all(pool).await
        })?;
        self.attach(rows).await
    }

    pub async fn personal_room(&self, user_id: i64) -> Result<Option<Meeting>> {
        let sql = concat!(
            "SELECT ",
            meeting_columns!(),
            " FROM meetings WHERE owner_id = $1 AND is_personal"
        );
        let row: Option<MeetingRow> = on_pool!(self, pool => {
            sqlx::query_as(sql).bind(user_id).fetch_optional(pool).await
        })?;
        Ok(self.attach(row.into_iter().collect()).await?.pop())
    }

    /// The admin list: filtered, latest start first; also the total count.
    pub async fn search_meetings(&self, search: &MeetingSearch) -> Result<(Vec<Meeting>, u64)> {
        let pattern = format!(
            "%{}%",
            search
                .text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let filter = "(LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(meeting_id) LIKE $1 ESCAPE '\\') \
             AND ($2 IS NULL OR is_running = $2) AND ($3 IS NULL OR start_at >= $3) \
             AND ($4 IS NULL OR start_at < $4)";
        let list_sql = format!(
            "SELECT {} FROM meetings WHERE {filter} ORDER BY start_at DESC, id DESC LIMIT $5 OFFSET $6",
            meeting_columns!()
        );
        let count_sql = format!("SELECT COUNT(*) FROM meetings WHERE {filter}");
        let from = search.from.map(|t| t.timestamp_millis());
        let to = search.to.map(|t| t.timestamp_millis());
        let (rows, total): (Vec<MeetingRow>, i64) = on_pool!(self, pool => {
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(list_sql))
                .bind(&pattern)
                .bind(search.running)
                .bind(from)
                .bind(to)
                .bind(i64::from(search.limit.clamp(1, 10_000)))
                .bind(i64::from(search.offset))
                .fetch_all(pool)
                .await?;
            let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
                .bind(&pattern)
                .bind(search.running)
                .bind(from)
                .bind(to)
                .fetch_one(pool)
                .await?;
            Ok::<_, sqlx::Error>((rows, total))
        })?;
        Ok((self.attach(rows).await?, u64::try_from(total).unwrap_or(0)))
    }

    /// Records what BBB's `create` answered.
    pub async fn set_meeting_created(
        &self,
        id: i64,
        internal_meeting_id: &str,
        create_time: i64,
        moderator_password: &str,
    ) -> Result<()> {
        execute!(self, pool => {
            sqlx::query(
                "UPDATE meetings SET internal_meeting_id = $1, bbb_create_time = $2, \
                 moderator_password = $3, is_running = TRUE WHERE id = $4",
            )
            .bind(internal_meeting_id)
            .bind(create_time)
            .bind(moderator_password)
            .bind(id)
            .execute(pool)
            .await
        })?;
        Ok(())
    }

    /// Records whether BBB says the meeting is running (by BBB meeting id).
    pub async fn set_meeting_running(&self, meeting_id: &str, running: bool) -> Result<bool> {
        let updated = execute!(self, pool => {
            sqlx::query("UPDATE meetings SET is_running = $1 WHERE meeting_id = $2 AND is_running <> $1")
                .bind(running)
                .bind(meeting_id)
                .execute(pool)
                .await
        })?;
        Ok(updated == 1)
    }

    /// Opens a session of the journal.
    pub async fn open_session(
        &self,
        meeting_id: i64,
        creator_id: Option<i64>,
        internal_meeting_id: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let id: i64 = on_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO meeting_sessions (meeting_id, creator_id, internal_meeting_id, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(meeting_id)
            .bind(creator_id)
            .bind(internal_meeting_id)
            .bind(now.timestamp_millis())
            .fetch_one(pool)
            .await
        })?;
        Ok(id)
    }

    /// The latest session of a meeting (Pod's `get_current_session`).
    pub async fn current_session(&self, meeting_id: i64) -> Result<Option<MeetingSession>> {
        let row: Option<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(
                concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM meeting_sessions WHERE meeting_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
            )
            .bind(meeting_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(Into::into))
    }

    /// Every session of a meeting, latest first.
    pub async fn sessions_of(&self, meeting_id: i64) -> Result<Vec<MeetingSession>> {
        let rows: Vec<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(
                concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM meeting_sessions WHERE meeting_id = $1 \
                     ORDER BY created_at DESC, id DESC"
                ),
            )
            .bind(meeting_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Closes the open sessions of a meeting (it ended), leaving everyone still in.
    pub async fn close_sessions(&self, meeting_id: i64, now: DateTime<Utc>) -> Result<u64> {
        let now_ms = now.timestamp_millis();
        let closed = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE meeting_participants SET left_at = $1 WHERE left_at IS NULL AND session_id IN \
                 (SELECT id FROM meeting_sessions WHERE meeting_id = $2 AND ended_at IS NULL)",
            )
            .bind(now_ms)
            .bind(meeting_id)
            .execute(&mut *tx)
            .await?;
            let closed = sqlx::query(
                "UPDATE meeting_sessions SET ended_at = $1 WHERE meeting_id = $2 AND ended_at IS NULL",
            )
            .bind(now_ms)
            .bind(meeting_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(closed)
        })?;
        Ok(closed)
    }

    /// Records that someone joined a session through amphi.
    pub async fn add_participant(
        &self,
        session_id: i64,
        user_id: Option<i64>,
        full_name: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let id: i64 = on_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO meeting_participants (session_id, user_id, full_name, role, joined_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(session_id)
            .bind(user_id)
            .bind(full_name)
            .bind(role)
            .bind(now.timestamp_millis())
            .fetch_one(pool)
            .await
        })?;
        Ok(id)
    }

    pub async fn participants(&self, session_id: i64) -> Result<Vec<Participant>> {
        let rows: Vec<ParticipantRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, session_id, user_id, full_name, role, bbb_user_id, joined_at, left_at \
                 FROM meeting_participants WHERE session_id = $1 ORDER BY joined_at, id",
            )
            .bind(session_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Records a participant count sample and keeps the session's peak.
    pub async fn record_participant_count(
        &self,
        session_id: i64,
        count: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO meeting_session_counts (session_id, at, participants) VALUES ($1, $2, $3) \
                 ON CONFLICT (session_id, at) DO UPDATE SET participants = excluded.participants",
            )
            .bind(session_id)
            .bind(now.timestamp_millis())
            .bind(i64::from(count))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE meeting_sessions SET peak_participants = $1 WHERE id = $2 AND peak_participants < $1",
            )
            .bind(i64::from(count))
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// The participant counts of a session, oldest first: `(instant, count)`.
    pub async fn participant_counts(&self, session_id: i64) -> Result<Vec<(DateTime<Utc>, u32)>> {
        let rows: Vec<(i64, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT at, participants FROM meeting_session_counts WHERE session_id = $1 ORDER BY at",
            )
            .bind(session_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(at, n)| (from_millis(at), small(n)))
            .collect())
    }

    /// Ties a BBB user (from a `user-joined` webhook) to the latest journal entry of the same
    /// person that has none yet, or records them when they joined BBB another way. Returns
    /// whether a new entry was made.
    pub async fn link_participant(
        &self,
        session_id: i64,
        username: &str,
        full_name: &str,
        role: &str,
        bbb_user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let linked = execute!(self, pool => {
            sqlx::query(
                "UPDATE meeting_participants SET bbb_user_id = $1 WHERE id = ( \
                 SELECT p.id FROM meeting_participants p LEFT JOIN users u ON u.id = p.user_id \
                 WHERE p.session_id = $2 AND p.bbb_user_id IS NULL AND p.left_at IS NULL \
                 AND (u.username = $3 OR p.full_name = $4) ORDER BY p.joined_at DESC, p.id DESC LIMIT 1)",
            )
            .bind(bbb_user_id)
            .bind(session_id)
            .bind(username)
            .bind(full_name)
            .execute(pool)
            .await
        })?;
        if linked == 1 {
            return Ok(false);
        }
        let role = if role == "MODERATOR" {
            "MODERATOR"
        } else {
            "VIEWER"
        };
        execute!(self, pool => {
            sqlx::query(
                "INSERT INTO meeting_participants (session_id, full_name, role, bbb_user_id, joined_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(session_id)
            .bind(full_name)
            .bind(role)
            .bind(bbb_user_id)
            .bind(now.timestamp_millis())
            .execute(pool)
            .await
        })?;
        Ok(true)
    }

    /// Records that a BBB user left (a `user-left` webhook).
    pub async fn participant_left(
        &self,
        session_id: i64,
        bbb_user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let updated = execute!(self, pool => {
            sqlx::query(
                "UPDATE meeting_participants SET left_at = $1 \
                 WHERE session_id = $2 AND bbb_user_id = $3 AND left_at IS NULL",
            )
            .bind(now.timestamp_millis())
            .bind(session_id)
            .bind(bbb_user_id)
            .execute(pool)
            .await
        })?;
        Ok(updated > 0)
    }

    /// Journal entries of a session still marked present: `(id, full name, username, joined)`.
    pub async fn present_participants(
        &self,
        session_id: i64,
    ) -> Result<Vec<(i64, String, Option<String>, DateTime<Utc>)>> {
        let rows: Vec<(i64, String, Option<String>, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT p.id, p.full_name, u.username, p.joined_at FROM meeting_participants p \
                 LEFT JOIN users u ON u.id = p.user_id WHERE p.session_id = $1 AND p.left_at IS NULL",
            )
            .bind(session_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, name, username, joined)| (id, name, username, from_millis(joined)))
            .collect())
    }

    /// Marks journal entries as left at `now`.
    pub async fn mark_left(&self, participant_ids: &[i64], now: DateTime<Utc>) -> Result<()> {
        for id in participant_ids {
            execute!(self, pool => {
                sqlx::query("UPDATE meeting_participants SET left_at = $1 WHERE id = $2 AND left_at IS NULL")
                    .bind(now.timestamp_millis())
                    .bind(*id)
                    .execute(pool)
                    .await
            })?;
        }
        Ok(())
    }

    /// Sessions that started in `[from, to)`, of one meeting or of all, latest first.
    pub async fn sessions_between(
        &self,
        meeting_id: Option<i64>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<MeetingSession>> {
        let rows: Vec<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(
                concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM meeting_sessions WHERE ($1 IS NULL OR meeting_id = $1) \
                     AND ($2 IS NULL OR created_at >= $2) AND ($3 IS NULL OR created_at < $3) \
                     ORDER BY created_at DESC, id DESC LIMIT 100000"
                ),
            )
            .bind(meeting_id)
            .bind(from.map(|t| t.timestamp_millis()))
            .bind(to.map(|t| t.timestamp_millis()))
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
