//! Criterion benchmarks of amphi's hot pure functions: BBB checksums and signed URLs, BBB XML
//! parsing, HLS playlist rendering, the chat room's handling and fan-out of a message, and
//! recurrence expansion.
//!
//! `cargo bench --bench micro` (all), `cargo bench --bench micro -- playlist` (one group).

use amphi::bbb::checksum::{api_checksum, checksums_match};
use amphi::bbb::query::Query;
use amphi::bbb::xml::{Meetings, parse};
use amphi::chat::protocol::{self, ServerEvent};
use amphi::chat::room::{Member, Out, Room, Settings};
use amphi::config::ChecksumAlgorithm;
use amphi::hls::Variant;
use amphi::hls::playlist::{MediaPlaylist, PartInfo, SegmentInfo, render_multivariant};
use amphi::meetings::recurrence::{
    End, Frequency, MonthlyType, Rule, Weekdays, current_or_next, resolve,
};
use chrono::{NaiveDate, Weekday};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::fmt::Write;
use std::hint::black_box;
use std::sync::Arc;

const SECRET: &str = "8cd8ef52e8e101574e400365b55e11a6";

fn checksums(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    let query = Query::new()
        .param("fullName", "Zoé Lefèvre")
        .param("meetingID", "amphi-7f3a9c2e-physique-l1")
        .param("role", "VIEWER")
        .param("createTime", "1795000123456")
        .param("userID", "user:4211")
        .param("redirect", "true");
    for algorithm in [
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha512,
    ] {
        group.bench_function(BenchmarkId::new("api_checksum", algorithm.name()), |b| {
            b.iter(|| api_checksum(algorithm, "join", black_box(query.as_str()), SECRET));
        });
    }
    group.bench_function("signed_join_url_sha256", |b| {
        b.iter(|| {
            black_box(&query)
                .signed("join", SECRET, ChecksumAlgorithm::Sha256)
                .url("https://bbb.univ.example/bigbluebutton/api", "join")
        });
    });
    let expected = api_checksum(ChecksumAlgorithm::Sha256, "join", query.as_str(), SECRET);
    group.bench_function("checksums_match_sha256", |b| {
        b.iter(|| checksums_match(black_box(&expected), black_box(&expected)));
    });
    group.finish();
}

/// A `getMeetings` answer with `meetings` meetings of `attendees` attendees each.
fn get_meetings_xml(meetings: usize, attendees: usize) -> String {
    let mut xml = String::from("<response><returncode>SUCCESS</returncode><meetings>");
    for m in 0..meetings {
        let _ = write!(
            xml,
            "<meeting><meetingName>Cours de physique {m}</meetingName>\
             <meetingID>amphi-{m:08x}</meetingID>\
             <internalMeetingID>{m:040x}-1795000123456</internalMeetingID>\
             <createTime>1795000123456</createTime><createDate>Fri Nov 27 10:00:00 CET 2026</createDate>\
             <voiceBridge>7{m:04}</voiceBridge><dialNumber>613-555-1234</dialNumber>\
             <attendeePW>ap</attendeePW><moderatorPW>mp</moderatorPW>\
             <running>true</running><duration>0</duration><hasUserJoined>true</hasUserJoined>\
             <recording>false</recording><hasBeenForciblyEnded>false</hasBeenForciblyEnded>\
             <startTime>1795000124000</startTime><endTime>0</endTime>\
             <participantCount>{attendees}</participantCount><listenerCount>{attendees}</listenerCount>\
             <voiceParticipantCount>1</voiceParticipantCount><videoCount>1</videoCount>\
             <maxUsers>0</maxUsers><moderatorCount>1</moderatorCount><attendees>"
        );
        for a in 0..attendees {
            let role = if a == 0 { "MODERATOR" } else { "VIEWER" };
            let _ = write!(
                xml,
                "<attendee><userID>w_{m}_{a}</userID><fullName>Étudiant {a}</fullName>\
                 <role>{role}</role><isPresenter>{}</isPresenter>\
                 <isListeningOnly>true</isListeningOnly><hasJoinedVoice>false</hasJoinedVoice>\
                 <hasVideo>false</hasVideo><clientType>HTML5</clientType><customdata></customdata></attendee>",
                a == 0
            );
        }
        let _ = write!(
            xml,
            "</attendees><metadata><bbb-origin>amphi</bbb-origin>\
             <bbb-origin-server-name>amphi.univ.example</bbb-origin-server-name></metadata>\
             <isBreakout>false</isBreakout></meeting>"
        );
    }
    xml.push_str("</meetings></response>");
    xml
}

fn bbb_xml(c: &mut Criterion) {
    let mut group = c.benchmark_group("bbb_xml");
    for (meetings, attendees) in [(1, 10), (20, 20), (100, 50)] {
        let xml = get_meetings_xml(meetings, attendees);
        let parsed = parse::<Meetings>(&xml).unwrap().1.unwrap();
        assert_eq!(parsed.meetings.items.len(), meetings);
        assert_eq!(parsed.meetings.items[0].attendees.items.len(), attendees);
        group.throughput(Throughput::Bytes(xml.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("get_meetings", format!("{meetings}x{attendees}")),
            &xml,
            |b, xml| b.iter(|| parse::<Meetings>(black_box(xml)).unwrap()),
        );
    }
    group.finish();
}

/// A live edge as the origin holds it: `segments` 1 s segments of four 250 ms parts, the last
/// one in progress.
fn window(segments: u64) -> Vec<SegmentInfo> {
    (0..segments)
        .map(|i| SegmentInfo {
            msn: 1000 + i,
            parts: vec![
                PartInfo {
                    duration: 0.25,
                    independent: true,
                };
                if i + 1 == segments { 2 } else { 4 }
            ],
            complete: i + 1 < segments,
            discontinuity: i == 3,
            program_date_time_ms: 1_795_000_123_456 + 1000 * i as i64,
            init: 1,
        })
        .collect()
}

fn playlists(c: &mut Criterion) {
    let mut group = c.benchmark_group("playlist");
    for segments in [20u64, 120] {
        let held = window(segments);
        let playlist = MediaPlaylist {
            target_duration: 1,
            part_target: 0.25,
            discontinuity_sequence: 0,
            segments: &held,
            ended: false,
        };
        assert!(playlist.render(false).contains("#EXT-X-PART:"));
        group.bench_function(BenchmarkId::new("media", segments), |b| {
            b.iter(|| black_box(&playlist).render(false));
        });
        group.bench_function(BenchmarkId::new("media_delta", segments), |b| {
            b.iter(|| black_box(&playlist).render(true));
        });
    }
    let variants = [
        Variant {
            name: "720p".into(),
            bandwidth: 2_628_000,
            codecs: "avc1.4d401f".into(),
            width: 1280,
            height: 720,
            frame_rate: 25.0,
        },
        Variant {
            name: "360p".into(),
            bandwidth: 928_000,
            codecs: "avc1.4d401e".into(),
            width: 640,
            height: 360,
            frame_rate: 25.0,
        },
    ];
    group.bench_function("multivariant", |b| {
        b.iter(|| render_multivariant(black_box(&variants), Some(("audio", "mp4a.40.2", 128_000))));
    });
    group.finish();
}

fn chat(c: &mut Criterion) {
    let mut group = c.benchmark_group("chat");
    // One audience message through the room: parse the client's frame, check and keep it,
    // encode the event every viewer gets. A new author each time: no flood limit applies.
    let mut room = Room::new(Settings::default(), 1);
    let mut n: i64 = 0;
    group.bench_function("message_in_room", |b| {
        b.iter(|| {
            n += 1;
            let member = Member {
                key: format!("user:{n}"),
                name: Some("Zoé Lefèvre".into()),
                moderator: false,
            };
            let frame = protocol::parse(
                r#"{"type":"message","text":"Pourquoi l'entropie augmente-t-elle ?"}"#,
            )
            .unwrap();
            let outs = room.handle(1_795_000_000_000 + n * 1000, n as u64, &member, frame);
            let mut encoded = 0;
            for out in &outs {
                if let Out::All(event) = out {
                    encoded += protocol::encode(event).len();
                }
            }
            assert!(encoded > 0, "{outs:?}");
            encoded
        });
    });
    // The fan-out: one encoded frame to every viewer's receiver, as the hub does.
    let event = ServerEvent::Pong;
    let frame: Arc<str> = protocol::encode(&event).into();
    for viewers in [1_000usize, 10_000] {
        let (everyone, _) = tokio::sync::broadcast::channel::<Arc<str>>(64);
        let mut receivers: Vec<_> = (0..viewers).map(|_| everyone.subscribe()).collect();
        group.throughput(Throughput::Elements(viewers as u64));
        group.bench_function(BenchmarkId::new("fan_out", viewers), |b| {
            b.iter(|| {
                everyone.send(Arc::clone(&frame)).unwrap();
                let mut bytes = 0;
                for receiver in &mut receivers {
                    bytes += receiver.try_recv().unwrap().len();
                }
                bytes
            });
        });
    }
    group.finish();
}

fn recurrence(c: &mut Criterion) {
    let mut group = c.benchmark_group("recurrence");
    let start = NaiveDate::from_ymd_opt(2026, 9, 7).unwrap(); // a Monday
    let weekly = Rule {
        frequency: Frequency::Weekly,
        interval: 1,
        weekdays: Weekdays::of(&[Weekday::Mon, Weekday::Thu]),
        monthly: MonthlyType::DateDay,
    };
    let until = NaiveDate::from_ymd_opt(2027, 6, 30).unwrap();
    group.bench_function("weekly_two_days_academic_year", |b| {
        b.iter(|| resolve(black_box(start), weekly, End::Until(until)).unwrap());
    });
    let monthly = Rule {
        frequency: Frequency::Monthly,
        interval: 1,
        weekdays: Weekdays::default(),
        monthly: MonthlyType::NthDay,
    };
    group.bench_function("monthly_nth_weekday_999", |b| {
        b.iter(|| resolve(black_box(start), monthly, End::Count(999)).unwrap());
    });
    let daily = Rule {
        frequency: Frequency::Daily,
        interval: 1,
        weekdays: Weekdays::default(),
        monthly: MonthlyType::DateDay,
    };
    let series = resolve(start, daily, End::Count(999)).unwrap().unwrap();
    let begins = start.and_hms_opt(9, 0, 0).unwrap();
    let late = (start + chrono::Duration::days(900))
        .and_hms_opt(12, 0, 0)
        .unwrap();
    group.bench_function("current_or_next_daily_999_day_900", |b| {
        b.iter(|| {
            current_or_next(
                begins,
                chrono::Duration::hours(2),
                Some(black_box(&series)),
                late,
            )
            .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, checksums, bbb_xml, playlists, chat, recurrence);
criterion_main!(benches);
