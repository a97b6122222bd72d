//! The in-memory origin of one rendition: a sliding window of CMAF segments made of parts
//! (zero-copy `Bytes`), init segments per capture generation, and waits that wake exactly
//! when the part they want exists. A waiting request registers a `Notify` under the position
//! it wants and sleeps: thousands of them cost memory, not CPU, and each publication wakes
//! only those it satisfies.

use super::playlist::{MediaPlaylist, PartInfo, SegmentInfo};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Where a rendition's live edge is: the last part published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub msn: u64,
    pub part: usize,
}

/// How a rendition is cut and kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowConfig {
    /// Target segment length in whole seconds.
    pub target_duration: u32,
    /// Seconds.
    pub part_target: f64,
    /// Complete segments kept.
    pub segments: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            target_duration: 1,
            part_target: 0.25,
            segments: 20,
        }
    }
}

#[derive(Debug, Clone)]
struct Part {
    data: Bytes,
    info: PartInfo,
}

#[derive(Debug, Clone)]
struct Segment {
    info: SegmentInfo,
    parts: Vec<Bytes>,
}

#[derive(Debug, Default)]
struct State {
    segments: VecDeque<Segment>,
    inits: HashMap<u32, Bytes>,
    generation: u32,
    discontinuity_sequence: u64,
    /// The next segment starts after a capture restart.
    pending_discontinuity: bool,
    next_msn: u64,
    edge: Option<Position>,
    ended: bool,
    /// Waiting requests by the position they want.
    waiters: BTreeMap<Position, Arc<Notify>>,
    /// Rounded-up longest segment seen: the target duration never shrinks.
    target_duration: u32,
}

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Ready,
    /// Not there before the deadline.
    TimedOut,
    /// Asked too far ahead (more than two segments past the edge): HTTP 400.
    TooFar,
}

/// One rendition's window.
#[derive(Debug)]
pub struct Rendition {
    pub name: String,
    config: WindowConfig,
    state: Mutex<State>,
}

impl Rendition {
    pub fn new(name: &str, config: WindowConfig) -> Self {
        Self {
            name: name.to_owned(),
            config,
            state: Mutex::new(State {
                target_duration: config.target_duration,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new init segment (ftyp+moov): segments from now on use it.
    pub fn push_init(&self, data: Bytes) {
        let mut state = self.lock();
        state.generation += 1;
        let generation = state.generation;
        state.inits.insert(generation, data);
    }

    /// The capture restarted: the next segment is marked `EXT-X-DISCONTINUITY`.
    pub fn discontinuity(&self) {
        self.lock().pending_discontinuity = true;
    }

    /// Goes on from a capture whose segments are gone (it ran in another process): segments
    /// are numbered from `next_msn`, `discontinuities` were counted before, init segments are
    /// numbered after `generation`, and the first new segment is marked `EXT-X-DISCONTINUITY`.
    /// Only a rendition that has published nothing yet resumes.
    pub fn resume(&self, next_msn: u64, discontinuities: u64, generation: u32) {
        let mut state = self.lock();
        if state.edge.is_some() || next_msn == 0 {
            return;
        }
        state.next_msn = next_msn;
        state.discontinuity_sequence = discontinuities;
        state.generation = generation;
        state.pending_discontinuity = true;
    }

    /// The complete segments in the window, oldest first.
    pub fn complete_segments(&self) -> Vec<SegmentInfo> {
        self.lock()
            .segments
            .iter()
            .filter(|s| s.info.complete)
            .map(|s| s.info.clone())
            .collect()
    }

    /// Where a later capture should resume (see [`Self::resume`]): the next segment number,
    /// the discontinuities so far and the last init generation.
    pub fn progress(&self) -> (u64, u64, u32) {
        let state = self.lock();
        let in_window = state
            .segments
            .iter()
            .filter(|s| s.info.discontinuity)
            .count() as u64;
        (
            state.next_msn,
            state.discontinuity_sequence + in_window,
            state.generation,
        )
    }

    /// Publishes a part; `new_segment` closes the current segment and starts the next one.
    /// Returns its position.
    pub fn push_part(
        &self,
        data: Bytes,
        duration: f64,
        independent: bool,
        new_segment: bool,
        wall_clock_ms: i64,
    ) -> Position {
        let mut state = self.lock();
        let start_new = new_segment || state.segments.back().is_none_or(|s| s.info.complete);
        if start_new {
            if let Some(last) = state.segments.back_mut() {
                last.info.complete = true;
                let rounded = last.info.duration().round() as u32;
                state.target_duration = state.target_duration.max(rounded);
            }
            let msn = state.next_msn;
            state.next_msn += 1;
            let discontinuity = std::mem::take(&mut state.pending_discontinuity) && msn > 0;
            let init = state.generation;
            state.segments.push_back(Segment {
                info: SegmentInfo {
                    msn,
                    parts: Vec::new(),
                    complete: false,
                    discontinuity,
                    program_date_time_ms: wall_clock_ms,
                    init,
                },
                parts: Vec::new(),
            });
            let complete = state.segments.iter().filter(|s| s.info.complete).count();
            let excess = complete.saturating_sub(self.config.segments);
            for _ in 0..excess {
                if let Some(gone) = state.segments.pop_front()
                    && gone.info.discontinuity
                {
                    state.discontinuity_sequence += 1;
                }
            }
            let oldest_init = state.segments.front().map_or(init, |s| s.info.init);
            state
                .inits
                .retain(|generation, _| *generation >= oldest_init);
        }
        let segment = state.segments.back_mut().expect("a segment in progress");
        let part = Part {
            data,
            info: PartInfo {
                duration,
                independent,
            },
        };
        segment.info.parts.push(part.info);
        segment.parts.push(part.data);
        let position = Position {
            msn: segment.info.msn,
            part: segment.parts.len() - 1,
        };
        state.edge = Some(position);
        self.wake(&mut state, position);
        position
    }

    /// The live is over: the last segment completes and every waiter is answered.
    pub fn end(&self) {
        let mut state = self.lock();
        if let Some(last) = state.segments.back_mut() {
            if last.parts.is_empty() {
                state.segments.pop_back();
            } else {
                last.info.complete = true;
            }
        }
        state.ended = true;
        let waiters = std::mem::take(&mut state.waiters);
        for notify in waiters.values() {
            notify.notify_waiters();
        }
    }

    fn wake(&self, state: &mut State, edge: Position) {
        // A segment is complete once the next one has begun, so a wait for "segment M" is a
        // wait for part 0 of M+1: every key up to the edge is satisfied.
        let later = state.waiters.split_off(&Position {
            msn: edge.msn,
            part: edge.part + 1,
        });
        let ready = std::mem::replace(&mut state.waiters, later);
        for notify in ready.values() {
            notify.notify_waiters();
        }
    }

    /// Waits until `wanted` is published (or the live ends), at most `timeout`.
    pub async fn wait_for(&self, wanted: Position, timeout: Duration) -> Wait {
        let notify = {
            let mut state = self.lock();
            if state.ended || state.edge.is_some_and(|e| e >= wanted) {
                return Wait::Ready;
            }
            let edge_msn = state.edge.map_or(0, |e| e.msn);
            if wanted.msn > edge_msn + 2 {
                return Wait::TooFar;
            }
            Arc::clone(state.waiters.entry(wanted).or_default())
        };
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        // Published between the unlock and `enable`?
        {
            let state = self.lock();
            if state.ended || state.edge.is_some_and(|e| e >= wanted) {
                return Wait::Ready;
            }
        }
        match tokio::time::timeout(timeout, notified).await {
            Ok(()) => Wait::Ready,
            Err(_) => Wait::TimedOut,
        }
    }

    /// Waits for a whole segment `msn` (`_HLS_msn` without `_HLS_part`).
    pub async fn wait_for_segment(&self, msn: u64, timeout: Duration) -> Wait {
        self.wait_for(
            Position {
                msn: msn + 1,
                part: 0,
            },
            timeout,
        )
        .await
    }

    /// The media playlist now.
    pub fn playlist(&self, skip: bool) -> String {
        let state = self.lock();
        let segments: Vec<SegmentInfo> = state.segments.iter().map(|s| s.info.clone()).collect();
        MediaPlaylist {
            target_duration: state.target_duration,
            part_target: self.config.part_target,
            discontinuity_sequence: state.discontinuity_sequence,
            segments: &segments,
            ended: state.ended,
        }
        .render(skip)
    }

    /// An init segment.
    pub fn init(&self, generation: u32) -> Option<Bytes> {
        self.lock().inits.get(&generation).cloned()
    }

    /// A complete segment, as the list of its parts' buffers (no copy).
    pub fn segment(&self, msn: u64) -> Option<Vec<Bytes>> {
        let state = self.lock();
        state
            .segments
            .iter()
            .find(|s| s.info.msn == msn && s.info.complete)
            .map(|s| s.parts.clone())
    }

    /// The durations of a segment's parts, in seconds.
    pub fn part_durations(&self, msn: u64) -> Option<Vec<f64>> {
        let state = self.lock();
        state
            .segments
            .iter()
            .find(|s| s.info.msn == msn)
            .map(|s| s.info.parts.iter().map(|p| p.duration).collect())
    }

    /// A part.
    pub fn part(&self, msn: u64, part: usize) -> Option<Bytes> {
        let state = self.lock();
        state
            .segments
            .iter()
            .find(|s| s.info.msn == msn)
            .and_then(|s| s.parts.get(part).cloned())
    }

    /// The live edge, if anything was published.
    pub fn edge(&self) -> Option<Position> {
        self.lock().edge
    }

    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// Requests waiting (for metrics and tests).
    pub fn waiting(&self) -> usize {
        self.lock()
            .waiters
            .values()
            .map(|n| Arc::strong_count(n) - 1)
            .sum()
    }

    /// The target duration, for wait timeouts (three of them, as the spec suggests).
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.lock().target_duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(segments: usize) -> Rendition {
        Rendition::new(
            "720p",
            WindowConfig {
                segments,
                ..WindowConfig::default()
            },
        )
    }

    fn publish(r: &Rendition, parts: usize, first_starts_segment: bool) -> Position {
        let mut last = Position { msn: 0, part: 0 };
        for i in 0..parts {
            last = r.push_part(
                Bytes::from(vec![i as u8; 10]),
                0.25,
                i == 0,
                first_starts_segment && i == 0,
                1_795_000_000_000,
            );
        }
        last
    }

    #[tokio::test]
    async fn a_wait_wakes_exactly_when_its_part_exists() {
        let r = Arc::new(rendition(10));
        r.push_init(Bytes::from_static(b"init"));
        publish(&r, 2, true);
        assert_eq!(r.edge(), Some(Position { msn: 0, part: 1 }));
        let waiting = Arc::clone(&r);
        let waiter = tokio::spawn(async move {
            waiting
                .wait_for(Position { msn: 0, part: 3 }, Duration::from_secs(3600))
                .await
        });
        // Registered before anything more is published.
        while r.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        r.push_part(Bytes::from_static(b"p2"), 0.25, false, false, 0);
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "part 2 does not satisfy a wait for part 3"
        );
        assert_eq!(r.waiting(), 1);
        r.push_part(Bytes::from_static(b"p3"), 0.25, false, false, 0);
        assert_eq!(waiter.await.unwrap(), Wait::Ready);
        assert_eq!(r.waiting(), 0);
        assert_eq!(r.part(0, 3), Some(Bytes::from_static(b"p3")));
    }

    #[tokio::test]
    async fn a_segment_is_ready_when_the_next_one_starts() {
        let r = Arc::new(rendition(10));
        publish(&r, 4, true);
        assert_eq!(r.segment(0), None, "still in progress");
        let waiting = Arc::clone(&r);
        let waiter =
            tokio::spawn(
                async move { waiting.wait_for_segment(0, Duration::from_secs(3600)).await },
            );
        while r.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        publish(&r, 1, true);
        assert_eq!(waiter.await.unwrap(), Wait::Ready);
        let parts = r.segment(0).unwrap();
        assert_eq!(parts.len(), 4);
        assert!(r.playlist(false).contains("#EXTINF:1.00000,\nseg-0.m4s\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_time_out_and_far_futures_are_refused() {
        let r = rendition(10);
        publish(&r, 1, true);
        let far = r
            .wait_for(Position { msn: 3, part: 0 }, Duration::from_secs(3))
            .await;
        assert_eq!(far, Wait::TooFar);
        let late = r
            .wait_for(Position { msn: 2, part: 0 }, Duration::from_secs(3))
            .await;
        assert_eq!(late, Wait::TimedOut);
        let now = r
            .wait_for(Position { msn: 0, part: 0 }, Duration::from_secs(3))
            .await;
        assert_eq!(now, Wait::Ready);
    }

    #[tokio::test]
    async fn the_end_answers_every_waiter_and_closes_the_playlist() {
        let r = Arc::new(rendition(10));
        publish(&r, 3, true);
        let mut waiters = Vec::new();
        for part in 3..1003 {
            let waiting = Arc::clone(&r);
            waiters.push(tokio::spawn(async move {
                waiting
                    .wait_for(
                        Position {
                            msn: 1,
                            part: part % 7,
                        },
                        Duration::from_secs(3600),
                    )
                    .await
            }));
        }
        while r.waiting() < 1000 {
            tokio::task::yield_now().await;
        }
        r.end();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Wait::Ready);
        }
        let text = r.playlist(false);
        assert!(text.ends_with("seg-0.m4s\n#EXT-X-ENDLIST\n"), "{text}");
        assert!(r.is_ended());
    }

    #[test]
    fn a_resumed_rendition_goes_on_from_the_earlier_capture() {
        let r = Rendition::new("720p", WindowConfig::default());
        r.resume(40, 2, 3);
        r.push_init(Bytes::from_static(b"init"));
        r.push_part(Bytes::from_static(b"a"), 1.0, true, true, 0);
        let playlist = r.playlist(false);
        assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:40"), "{playlist}");
        // The break is on the first segment: the sequence counts it.
        assert!(
            playlist.contains("#EXT-X-DISCONTINUITY-SEQUENCE:3"),
            "{playlist}"
        );
        assert!(playlist.contains("init-4.mp4"), "{playlist}");
        assert_eq!(r.progress(), (41, 3, 4));
        // Resuming is only for a rendition that has published nothing.
        r.resume(100, 9, 9);
        assert_eq!(r.progress(), (41, 3, 4));
    }

    #[test]
    fn the_window_slides_and_counts_discontinuities() {
        let r = rendition(3);
        r.push_init(Bytes::from_static(b"init-1"));
        publish(&r, 4, true);
        r.discontinuity();
        r.push_init(Bytes::from_static(b"init-2"));
        for _ in 0..5 {
            publish(&r, 4, true);
        }
        let text = r.playlist(false);
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
        assert!(text.contains("init-2.mp4") && !text.contains("init-1.mp4"));
        assert_eq!(r.init(1), None, "an init no segment needs is dropped");
        assert_eq!(r.init(2), Some(Bytes::from_static(b"init-2")));
        assert_eq!(r.segment(1), None, "out of the window");
        assert!(r.segment(2).is_some());
    }

    #[test]
    fn a_restart_marks_the_next_segment() {
        let r = rendition(10);
        r.push_init(Bytes::from_static(b"a"));
        publish(&r, 4, true);
        r.discontinuity();
        r.push_init(Bytes::from_static(b"b"));
        publish(&r, 2, true);
        let text = r.playlist(false);
        let expected = "seg-0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\"\n";
        assert!(text.contains(expected), "{text}");
    }
}
