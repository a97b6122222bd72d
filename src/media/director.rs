//! Keeps a live's picture and sound in step with the meeting as the bot sees it: the meeting's
//! audio once the bot is in, a camera input per shared camera (the presenter's first), the
//! screenshare while it runs (with its audio when it has some), and the current slide, fetched
//! with the bot's session and shown as a still picture. Each change of the bot's state adds or
//! removes inputs in the running pipeline and places them again with the layout.
//!
//! A subscription the bridge gave up on stays off until the meeting stops and starts that media
//! again (the bridge already retried it); what happens is reported as [`Cue`]s.

use super::inputs::{self, Input, Role};
use super::layout::Layout;
use crate::bridge::appsrc::Feeder;
use crate::bridge::{EndReason, Event, Item, Media, MediaBridge, Subscription, TrackKind};
use crate::client::slides::{SlideCache, SlideImage};
use crate::client::state::{MeetingState, Slide};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// The media server amphi can receive from.
const SFU: &str = "bbb-webrtc-sfu";

/// Where the inputs go.
#[derive(Debug, Clone)]
pub struct Stage {
    pub layout: Layout,
    /// The composed picture's size.
    pub size: (u32, u32),
    pub fps: u32,
}

/// What the director did, for the live's task and its journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cue {
    /// An input was added (`audio`, `camera <id>`, `screenshare <id>`).
    Added(String),
    /// An input was removed, and why.
    Removed(String, String),
    /// A slide is on screen.
    Slide { num: u32, total: u32 },
    /// Something that could not be done (a slide not fetched, a media server not supported).
    Warning(String),
    /// What is placed now: the presentation (slide or screenshare) and how many cameras.
    Placed { presentation: bool, cameras: usize },
}

/// An input fed by a bridge subscription.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Audio,
    Camera(String),
    Screenshare(String),
}

impl Key {
    fn label(&self) -> String {
        match self {
            Self::Audio => "audio".to_owned(),
            Self::Camera(id) => format!("camera {id}"),
            Self::Screenshare(id) => format!("screenshare {id}"),
        }
    }
}

/// A subscription's inputs and the task moving its packets.
struct Feed {
    generation: u64,
    inputs: Vec<Input>,
    pump: tokio::task::JoinHandle<()>,
}

/// The running director; dropping it stops the subscriptions (the inputs stay in the pipeline
/// until it is dropped too).
pub struct Director {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Director {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts directing `pipeline` from the bot's `state`; cues go to `cues`.
pub fn start(
    pipeline: gst::Pipeline,
    bridge: Arc<dyn MediaBridge>,
    state: watch::Receiver<MeetingState>,
    slides: Arc<SlideCache>,
    stage: Stage,
    cues: mpsc::UnboundedSender<Cue>,
) -> Director {
    let task = tokio::spawn(async move {
        let mut director = Running {
            pipeline,
            bridge,
            slides,
            stage,
            cues,
            feeds: BTreeMap::new(),
            given_up: BTreeSet::new(),
            generation: 0,
            slide: None,
            slide_wanted: None,
            warned_media_server: false,
        };
        director.run(state).await;
    });
    Director { task }
}

struct Running {
    pipeline: gst::Pipeline,
    bridge: Arc<dyn MediaBridge>,
    slides: Arc<SlideCache>,
    stage: Stage,
    cues: mpsc::UnboundedSender<Cue>,
    feeds: BTreeMap<Key, Feed>,
    /// Subscriptions that failed, kept off while the meeting still lists them.
    given_up: BTreeSet<Key>,
    generation: u64,
    slide: Option<Input>,
    /// The slide asked for last.
    slide_wanted: Option<Slide>,
    warned_media_server: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        for feed in self.feeds.values() {
            feed.pump.abort();
        }
    }
}

type Ended = (Key, u64, EndReason);
type Fetched = (Slide, Result<SlideImage, String>);

impl Running {
    async fn run(&mut self, mut state: watch::Receiver<MeetingState>) {
        let (ended_tx, mut ended) = mpsc::unbounded_channel::<Ended>();
        let (fetched_tx, mut fetched) = mpsc::unbounded_channel::<Fetched>();
        let current = state.borrow_and_update().clone();
        self.reconcile(&current, &ended_tx, &fetched_tx);
        loop {
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let current = state.borrow_and_update().clone();
                    self.reconcile(&current, &ended_tx, &fetched_tx);
                }
                Some((key, generation, reason)) = ended.recv() => {
                    if self.feeds.get(&key).is_some_and(|f| f.generation == generation) {
                        if matches!(reason, EndReason::Failed(_)) {
                            self.given_up.insert(key.clone());
                        }
                        self.remove(&key, &reason.to_string());
                        self.place();
                    }
                }
                Some((slide, image)) = fetched.recv() => self.show(slide, image),
            }
        }
    }

    fn cue(&self, cue: Cue) {
        let _ = self.cues.send(cue);
    }

    /// What the meeting shows now, as subscriptions.
    fn wanted(&mut self, state: &MeetingState) -> BTreeMap<Key, Media> {
        let mut wanted = BTreeMap::new();
        let bridges = &state.bridges;
        if [&bridges.audio, &bridges.camera, &bridges.screenshare]
            .iter()
            .any(|b| b.as_str() != SFU)
            && !self.warned_media_server
        {
            self.warned_media_server = true;
            self.cue(Cue::Warning(format!(
                "this meeting sends some media through {}, which amphi cannot receive yet; \
                 only what goes through {SFU} is shown",
                [&bridges.audio, &bridges.camera, &bridges.screenshare]
                    .into_iter()
                    .find(|b| b.as_str() != SFU)
                    .map_or("", |b| b.as_str())
            )));
        }
        if !state.joined || state.ended.is_some() {
            return wanted;
        }
        if bridges.audio == SFU {
            wanted.insert(Key::Audio, Media::Audio);
        }
        if bridges.camera == SFU {
            for camera in state.cameras.values() {
                wanted.insert(
                    Key::Camera(camera.stream_id.clone()),
                    Media::Camera {
                        stream_id: camera.stream_id.clone(),
                    },
                );
            }
        }
        if bridges.screenshare == SFU
            && let Some(share) = &state.screenshare
        {
            wanted.insert(
                Key::Screenshare(share.id.clone()),
                Media::Screenshare {
                    voice_conf: share.voice_conf.clone(),
                    has_audio: share.has_audio,
                },
            );
        }
        wanted
    }

    fn reconcile(
        &mut self,
        state: &MeetingState,
        ended: &mpsc::UnboundedSender<Ended>,
        fetched: &mpsc::UnboundedSender<Fetched>,
    ) {
        let wanted = self.wanted(state);
        let gone: Vec<Key> = self
            .feeds
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key, "no longer shared");
        }
        self.given_up.retain(|k| wanted.contains_key(k));
        for (key, media) in wanted {
            if self.feeds.contains_key(&key) || self.given_up.contains(&key) {
                continue;
            }
            match self.add(&key, media, ended) {
                Ok(()) => self.cue(Cue::Added(key.label())),
                Err(e) => {
                    self.given_up.insert(key.clone());
                    self.cue(Cue::Warning(format!("{}: {e}", key.label())));
                }
            }
        }
        self.rank(state);
        self.want_slide(state.slide.clone(), fetched);
        self.place();
    }

    /// The presenter's camera first, then the others by name.
    fn rank(&mut self, state: &MeetingState) {
        let mut cameras: Vec<_> = state.cameras.values().collect();
        cameras.sort_by_key(|c| (!c.presenter, c.name.to_lowercase(), c.stream_id.clone()));
        for (rank, camera) in cameras.into_iter().enumerate() {
            if let Some(feed) = self.feeds.get_mut(&Key::Camera(camera.stream_id.clone())) {
                for input in &mut feed.inputs {
                    if let Role::Camera { rank: r, .. } = &mut input.role {
                        *r = rank as u32;
                    }
                }
            }
        }
    }

    fn add(
        &mut self,
        key: &Key,
        media: Media,
        ended: &mpsc::UnboundedSender<Ended>,
    ) -> Result<(), String> {
        let mut inputs = Vec::new();
        let mut feeders = Vec::new();
        let mut attach = |role: Role, kind: TrackKind| -> Result<(), String> {
            let (input, feeder) = inputs::rtp(&self.pipeline, role, kind)?;
            inputs.push(input);
            feeders.push((kind, feeder));
            Ok(())
        };
        let attached = match &media {
            Media::Audio => attach(
                Role::Audio {
                    id: "meeting".to_owned(),
                },
                TrackKind::Audio,
            ),
            Media::Camera { stream_id } => attach(
                Role::Camera {
                    rank: u32::MAX,
                    id: stream_id.clone(),
                },
                TrackKind::Video,
            ),
            Media::Screenshare { has_audio, .. } => attach(Role::Screenshare, TrackKind::Video)
                .and_then(|()| {
                    if *has_audio {
                        attach(
                            Role::Audio {
                                id: "screenshare".to_owned(),
                            },
                            TrackKind::Audio,
                        )
                    } else {
                        Ok(())
                    }
                }),
        };
        if let Err(e) = attached {
            for input in inputs {
                inputs::detach(&self.pipeline, input);
            }
            return Err(e);
        }
        self.generation += 1;
        let generation = self.generation;
        let subscription = self.bridge.subscribe(media);
        let pump = tokio::spawn(pump(
            subscription,
            feeders,
            key.clone(),
            generation,
            ended.clone(),
        ));
        self.feeds.insert(
            key.clone(),
            Feed {
                generation,
                inputs,
                pump,
            },
        );
        Ok(())
    }

    fn remove(&mut self, key: &Key, why: &str) {
        if let Some(feed) = self.feeds.remove(key) {
            // Aborting drops the subscription, which tells the SFU.
            feed.pump.abort();
            for input in feed.inputs {
                inputs::detach(&self.pipeline, input);
            }
            self.cue(Cue::Removed(key.label(), why.to_owned()));
        }
    }

    fn want_slide(&mut self, slide: Option<Slide>, fetched: &mpsc::UnboundedSender<Fetched>) {
        if slide == self.slide_wanted {
            return;
        }
        self.slide_wanted = slide.clone();
        let Some(slide) = slide else {
            // No presentation any more.
            if let Some(input) = self.slide.take() {
                inputs::detach(&self.pipeline, input);
            }
            return;
        };
        let (cache, fetched) = (Arc::clone(&self.slides), fetched.clone());
        tokio::spawn(async move {
            let image = cache.image(&slide).await.map_err(|e| e.to_string());
            let _ = fetched.send((slide, image));
        });
    }

    fn show(&mut self, slide: Slide, image: Result<SlideImage, String>) {
        // A slower fetch of a slide that is no longer current.
        if self.slide_wanted.as_ref() != Some(&slide) {
            return;
        }
        let shown = image.and_then(|image| {
            inputs::show_slide(
                &self.pipeline,
                &mut self.slide,
                &image.content_type,
                &image.bytes,
                self.stage.fps,
            )
        });
        match shown {
            Ok(_) => {
                self.cue(Cue::Slide {
                    num: slide.num,
                    total: slide.total,
                });
                self.place();
            }
            Err(e) => self.cue(Cue::Warning(format!(
                "slide {} could not be shown: {e}",
                slide.num
            ))),
        }
    }

    fn place(&self) {
        let mut all: Vec<&Input> = self.feeds.values().flat_map(|f| &f.inputs).collect();
        if let Some(slide) = &self.slide {
            all.push(slide);
        }
        let placement = inputs::arrange(&self.pipeline, &self.stage.layout, &all, self.stage.size);
        self.cue(Cue::Placed {
            presentation: placement.main.is_some(),
            cameras: placement.cameras.len(),
        });
    }
}

/// Moves a subscription's packets into its inputs until it ends.
async fn pump(
    mut subscription: Subscription,
    mut feeders: Vec<(TrackKind, Feeder)>,
    key: Key,
    generation: u64,
    ended: mpsc::UnboundedSender<Ended>,
) {
    while let Some(item) = subscription.next().await {
        match item {
            Item::Rtp(packet) => {
                if let Some((_, feeder)) = feeders.iter_mut().find(|(k, _)| *k == packet.kind) {
                    // A refused push means the input was detached: the end follows.
                    let _ = feeder.push(&packet);
                }
            }
            Item::Event(Event::Ended(reason)) => {
                let _ = ended.send((key, generation, reason));
                return;
            }
            Item::Event(_) => {}
        }
    }
}
