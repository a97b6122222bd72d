//! The in-memory (LL-)HLS origin: renditions fed by the live pipeline (`origin`), playlists
//! rendered by pure functions (`playlist`), and the HTTP handlers students' players and CDNs
//! call (`http`). Nothing touches the disk.

pub mod http;
pub mod origin;
pub mod playlist;
pub mod stats;

pub use origin::{Position, Rendition, Wait, WindowConfig};
pub use playlist::Variant;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// The audio of a live, as announced in the multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// Its rendition's name (`audio`).
    pub name: String,
    /// `mp4a.40.2`.
    pub codecs: String,
    pub bandwidth: u64,
}

/// One live's renditions.
#[derive(Debug)]
pub struct Live {
    pub slug: String,
    /// Shown on the live page.
    pub title: String,
    /// Live pages open now (each holds an event stream).
    pub viewers: std::sync::atomic::AtomicUsize,
    pub variants: Vec<Variant>,
    pub audio: AudioInfo,
    renditions: HashMap<String, Arc<Rendition>>,
    /// What the pipeline feeding it did (frame rates, bitrates, encoder latency).
    pub stats: stats::LiveStats,
    /// Codec strings read from the encoders' output, replacing the announced ones.
    codecs: RwLock<HashMap<String, String>>,
}

impl Live {
    /// A live with one rendition per video variant plus the audio one.
    pub fn new(slug: &str, variants: Vec<Variant>, audio: AudioInfo, window: WindowConfig) -> Self {
        let mut renditions = HashMap::new();
        for name in variants
            .iter()
            .map(|v| v.name.clone())
            .chain([audio.name.clone()])
        {
            renditions.insert(name.clone(), Arc::new(Rendition::new(&name, window)));
        }
        let stats = stats::LiveStats::new(
            variants
                .iter()
                .map(|v| (v.name.as_str(), true))
                .chain([(audio.name.as_str(), false)]),
        );
        Self {
            slug: slug.to_owned(),
            title: slug.to_owned(),
            viewers: std::sync::atomic::AtomicUsize::new(0),
            stats,
            variants,
            audio,
            renditions,
            codecs: RwLock::default(),
        }
    }

    /// Names the live for its page.
    pub fn with_title(mut self, title: &str) -> Self {
        self.title = title.to_owned();
        self
    }

    /// Waiting (nothing published yet), live, or ended.
    pub fn status(&self) -> LiveStatus {
        let any = self.renditions.values().next();
        match any {
            Some(r) if r.is_ended() => LiveStatus::Ended,
            Some(r) if r.edge().is_some() => LiveStatus::Live,
            _ => LiveStatus::Waiting,
        }
    }

    /// The codecs a rendition really carries (from its init segment).
    pub fn set_codecs(&self, rendition: &str, codecs: &str) {
        self.codecs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rendition.to_owned(), codecs.to_owned());
    }

    pub fn rendition(&self, name: &str) -> Option<Arc<Rendition>> {
        self.renditions.get(name).cloned()
    }

    pub fn renditions(&self) -> impl Iterator<Item = &Arc<Rendition>> {
        self.renditions.values()
    }

    /// The codec string a rendition's init segment announced, once known.
    pub fn codecs_of(&self, rendition: &str) -> Option<String> {
        let known = self.codecs.read().unwrap_or_else(|e| e.into_inner());
        known.get(rendition).cloned()
    }

    /// The multivariant playlist.
    pub fn multivariant(&self) -> String {
        let known = self.codecs.read().unwrap_or_else(|e| e.into_inner());
        let variants: Vec<Variant> = self
            .variants
            .iter()
            .map(|v| Variant {
                codecs: known
                    .get(&v.name)
                    .cloned()
                    .unwrap_or_else(|| v.codecs.clone()),
                ..v.clone()
            })
            .collect();
        playlist::render_multivariant(
            &variants,
            Some((&self.audio.name, &self.audio.codecs, self.audio.bandwidth)),
        )
    }

    /// Marks every rendition ended (`EXT-X-ENDLIST`).
    pub fn end(&self) {
        for rendition in self.renditions.values() {
            rendition.end();
        }
    }

    /// Goes on from a capture that ran in another process (see [`Rendition::resume`]).
    pub fn resume(&self, next_msn: u64, discontinuities: u64, generation: u32) {
        for rendition in self.renditions.values() {
            rendition.resume(next_msn, discontinuities, generation);
        }
    }

    /// Where a later capture should resume: the furthest of the renditions.
    pub fn progress(&self) -> (u64, u64, u32) {
        self.renditions
            .values()
            .map(|r| r.progress())
            .fold((0, 0, 0), |(a, b, c), (x, y, z)| {
                (a.max(x), b.max(y), c.max(z))
            })
    }

    /// The capture restarted: each rendition marks its next segment as a discontinuity.
    pub fn discontinuity(&self) {
        for rendition in self.renditions.values() {
            rendition.discontinuity();
        }
    }
}

/// Lives served, and slugs of lives removed.
type Registry = (HashMap<String, Arc<Live>>, HashSet<String>);

/// Where a live stands, as its page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveStatus {
    Waiting,
    Live,
    Ended,
}

/// Every live served, by slug; lives that were removed answer 410 Gone.
#[derive(Debug, Clone, Default)]
pub struct Lives {
    inner: Arc<RwLock<Registry>>,
}

/// What a slug is.
pub enum Lookup {
    Live(Arc<Live>),
    Gone,
    Unknown,
}

impl Lives {
    pub fn insert(&self, live: Arc<Live>) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.1.remove(&live.slug);
        inner.0.insert(live.slug.clone(), live);
    }

    /// Stops serving a live; its URLs answer 410 from now on.
    pub fn remove(&self, slug: &str) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.0.remove(slug).is_some() {
            inner.1.insert(slug.to_owned());
        }
    }

    /// Every live served now.
    pub fn all(&self) -> Vec<Arc<Live>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.0.values().cloned().collect()
    }

    pub fn lookup(&self, slug: &str) -> Lookup {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match inner.0.get(slug) {
            Some(live) => Lookup::Live(Arc::clone(live)),
            None if inner.1.contains(slug) => Lookup::Gone,
            None => Lookup::Unknown,
        }
    }
}
