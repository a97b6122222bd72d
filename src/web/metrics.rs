//! Prometheus metrics at `/metrics`: HTTP requests by route and status, their latency, logins,
//! and each live's frame rates, bitrates, dropped frames and encoder latency.

use super::AppState;
use crate::hls::stats::{OutputSnapshot, Snapshot};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    pub outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The registry and the metrics amphi updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    logins: Family<LoginLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A metric of each live: name, help, type, and its value from the viewers and the counters.
type PerLive = (
    &'static str,
    &'static str,
    MetricType,
    fn(i64, &Snapshot) -> f64,
);
/// A metric of each rendition of each live.
type PerRendition = (
    &'static str,
    &'static str,
    MetricType,
    fn(&Snapshot, &OutputSnapshot) -> f64,
);

/// The counters of every live served, read at each scrape.
#[derive(Debug)]
struct LiveCollector {
    lives: crate::hls::Lives,
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let lives: Vec<_> = self
            .lives
            .all()
            .into_iter()
            .map(|live| {
                let viewers = live.viewers.load(std::sync::atomic::Ordering::Relaxed) as i64;
                (live.slug.clone(), viewers, live.stats.snapshot())
            })
            .collect();
        let per_live: [PerLive; 4] = [
            (
                "live_viewers",
                "Live pages open",
                MetricType::Gauge,
                |viewers, _| viewers as f64,
            ),
            (
                "live_input_frames",
                "Video frames the inputs brought to the compositor",
                MetricType::Counter,
                |_, s| s.frames_in as f64,
            ),
            (
                "live_meeting_frames",
                "Video frames from the meeting (cameras, screenshare) brought to the compositor",
                MetricType::Counter,
                |_, s| s.meeting_frames_in as f64,
            ),
            (
                "live_composed_frames",
                "Pictures composed (the output frame rate)",
                MetricType::Counter,
                |_, s| s.frames_composed as f64,
            ),
        ];
        for (name, help, kind, value) in per_live {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (slug, viewers, snapshot) in &lives {
                let labels = vec![("live".to_owned(), slug.clone())];
                let mut metric = family.encode_family(&labels)?;
                encode_value(&mut metric, kind, value(*viewers, snapshot))?;
            }
        }
        let per_rendition: [PerRendition; 6] = [
            (
                "live_encoder_input_frames",
                "Frames the encoder took in",
                MetricType::Counter,
                |_, o| o.frames_in as f64,
            ),
            (
                "live_output_frames",
                "Frames encoded (audio: AAC frames)",
                MetricType::Counter,
                |_, o| o.frames_out as f64,
            ),
            (
                "live_output_bytes",
                "Bytes encoded (the bitrate is its rate)",
                MetricType::Counter,
                |_, o| o.bytes_out as f64,
            ),
            (
                "live_dropped_frames",
                "Pictures composed that the encoder did not take (dropped, or the one or two in flight)",
                MetricType::Gauge,
                |s, o| {
                    if o.video {
                        s.frames_composed.saturating_sub(o.frames_in) as f64
                    } else {
                        0.0
                    }
                },
            ),
            (
                "live_encoder_latency_seconds",
                "Time the last frame spent in the encoder",
                MetricType::Gauge,
                |_, o| o.latency_us as f64 / 1e6,
            ),
            (
                "live_encoder_latency_max_seconds",
                "Longest time a frame spent in the encoder",
                MetricType::Gauge,
                |_, o| o.latency_max_us as f64 / 1e6,
            ),
        ];
        for (name, help, kind, value) in per_rendition {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (slug, _, snapshot) in &lives {
                for (rendition, output) in &snapshot.outputs {
                    let labels = vec![
                        ("live".to_owned(), slug.clone()),
                        ("rendition".to_owned(), rendition.clone()),
                    ];
                    let mut metric = family.encode_family(&labels)?;
                    encode_value(&mut metric, kind, value(snapshot, output))?;
                }
            }
        }
        Ok(())
    }
}

fn encode_value(
    metric: &mut prometheus_client::encoding::MetricEncoder,
    kind: MetricType,
    value: f64,
) -> Result<(), std::fmt::Error> {
    if matches!(kind, MetricType::Counter) {
        metric.encode_counter::<NoLabelSet, _, f64>(&(value as u64), None)
    } else {
        metric.encode_gauge(&value)
    }
}

impl Metrics {
    /// The metrics, with those of the lives in `lives`.
    pub fn with_lives(lives: crate::hls::Lives) -> Self {
        let mut metrics = Self::new();
        metrics
            .registry
            .register_collector(Box::new(LiveCollector { lives }));
        metrics
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("amphi");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let in_flight = Gauge::default();
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered",
            in_flight.clone(),
        );
        registry.register("logins", "Login attempts by outcome", logins.clone());
        let build = Family::<Vec<(String, String)>, Gauge>::default();
        build
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        registry.register("build_info", "amphi version", build);
        Self {
            registry,
            requests,
            latency,
            in_flight,
            logins,
        }
    }

    /// Counts one login attempt: `success`, `invalid` or `throttled`.
    pub fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// Counts and times every request.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let metrics = &state.metrics;
    metrics.in_flight.inc();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.in_flight.dec();
    metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`.
pub async fn handler(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
