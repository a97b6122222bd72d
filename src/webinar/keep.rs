//! Keeping a live as a video: while the live runs, every complete segment of every rendition
//! (and each init segment) is written to a folder as it leaves the in-memory window's edge;
//! when the live ends, each rendition gets a VOD playlist (its discontinuities and init
//! segments as they were) and the folder a multivariant playlist, ready for any HLS player.

use crate::hls::Live;
use crate::hls::playlist::SegmentInfo;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path`, or leaves no file: a full disk leaves part of one, which a
/// player must never get.
fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// One rendition's files so far.
#[derive(Default)]
struct Kept {
    inits: BTreeSet<u32>,
    /// By segment number.
    segments: BTreeMap<u64, SegmentInfo>,
}

/// The files of a live being kept.
pub struct Keeper {
    dir: PathBuf,
    renditions: BTreeMap<String, Kept>,
}

impl Keeper {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            renditions: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes what `live` completed since the last call (call it more often than the window
    /// slides: every second for a window of many seconds).
    pub fn collect(&mut self, live: &Live) -> io::Result<()> {
        for rendition in live.renditions() {
            let dir = self.dir.join(&rendition.name);
            let kept = self.renditions.entry(rendition.name.clone()).or_default();
            for segment in rendition.complete_segments() {
                if kept.segments.contains_key(&segment.msn) {
                    continue;
                }
                let Some(parts) = rendition.segment(segment.msn) else {
                    continue;
                };
                std::fs::create_dir_all(&dir)?;
                if kept.inits.insert(segment.init) {
                    match rendition.init(segment.init) {
                        Some(init) => {
                            let path = dir.join(format!("init-{}.mp4", segment.init));
                            if let Err(e) = write_whole(&path, &init) {
                                kept.inits.remove(&segment.init);
                                return Err(e);
                            }
                        }
                        None => {
                            kept.inits.remove(&segment.init);
                            continue;
                        }
                    }
                }
                let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
                // On failure the segment is tried again at the next call while it is in the
                // window.
                write_whole(&dir.join(format!("seg-{}.m4s", segment.msn)), &bytes)?;
                kept.segments.insert(segment.msn, segment);
            }
        }
        Ok(())
    }

    /// Writes the playlists; returns the video's duration (its longest rendition).
    pub fn finish(&self, live: &Live) -> io::Result<std::time::Duration> {
        let duration = self.write_media_playlists()?;
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join("master.m3u8"), live.multivariant())?;
        Ok(duration)
    }

    /// The renditions that kept at least one segment.
    pub fn kept(&self) -> impl Iterator<Item = &str> {
        self.renditions
            .iter()
            .filter(|(_, kept)| !kept.segments.is_empty())
            .map(|(name, _)| name.as_str())
    }

    /// Writes each kept rendition's VOD playlist; returns the longest one's duration.
    pub fn write_media_playlists(&self) -> io::Result<std::time::Duration> {
        let mut longest = 0.0f64;
        for (name, kept) in &self.renditions {
            if kept.segments.is_empty() {
                continue;
            }
            let target = kept
                .segments
                .values()
                .map(|s| s.duration().ceil() as u64)
                .max()
                .unwrap_or(1);
            let mut out = String::new();
            let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:7");
            let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
            let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
            let first = kept.segments.keys().next().copied().unwrap_or(0);
            let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
            let mut previous: Option<(u64, u32)> = None;
            let mut total = 0.0;
            for segment in kept.segments.values() {
                // A gap in the numbers (a restart in another process) is a break as well.
                let gap = previous.is_some_and(|(msn, _)| msn + 1 != segment.msn);
                if previous.is_some() && (segment.discontinuity || gap) {
                    let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
                }
                if previous.is_none_or(|(_, init)| init != segment.init) {
                    let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", segment.init);
                }
                let _ = writeln!(
                    out,
                    "#EXTINF:{:.5},\nseg-{}.m4s",
                    segment.duration(),
                    segment.msn
                );
                total += segment.duration();
                previous = Some((segment.msn, segment.init));
            }
            let _ = writeln!(out, "#EXT-X-ENDLIST");
            std::fs::create_dir_all(self.dir.join(name))?;
            std::fs::write(self.dir.join(name).join("index.m3u8"), out)?;
            longest = longest.max(total);
        }
        Ok(std::time::Duration::from_secs_f64(longest))
    }
}
