//! Recordings: `getRecordings` merged per record id with a size per format and in total,
//! publish, unpublish, delete and update, and the playback pages. The `video` format is a real
//! HTML page whose `<source>` is a real MP4, made once with GStreamer. With `--esr-tokens`,
//! playback URLs carry single-use tokens as on the ESR Scalelite, and the video file is served
//! only to the session the token opened.

use super::state::{SimRecording, SimState, random_alnum};
use super::xml::{element, escape, failure, success};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// The video file name BBB's video format uses.
pub const VIDEO_FILE: &str = "video-0.m4v";
/// Cookie of a playback session opened by an ESR token.
const PLAYBACK_COOKIE: &str = "sim_playback";

/// Query parameters as `(name, value)` pairs.
pub(crate) type Pairs = [(String, String)];

fn get<'a>(params: &'a Pairs, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn list(params: &Pairs, name: &str) -> Vec<String> {
    get(params, name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl SimState {
    fn playback_url(
        &self,
        recording: &SimRecording,
        kind: &str,
        tokens: &mut Vec<(String, String, String)>,
    ) -> String {
        if self.options.esr_tokens {
            let token = random_alnum(24);
            tokens.push((token.clone(), recording.record_id.clone(), kind.to_owned()));
            format!(
                "{}/recording/{}/{kind}?token={token}",
                self.base_url, recording.record_id
            )
        } else if kind == "video" {
            format!("{}/playback/video/{}/", self.base_url, recording.record_id)
        } else {
            format!(
                "{}/playback/presentation/2.3/{}",
                self.base_url, recording.record_id
            )
        }
    }

    /// One `<recording>` in the element order of bbb-web's `RecMetaResponse`.
    fn recording_xml(
        &self,
        recording: &SimRecording,
        tokens: &mut Vec<(String, String, String)>,
    ) -> String {
        let metadata: String = recording
            .metadata
            .iter()
            .map(|(k, v)| element(k, v))
            .collect();
        let formats: String = recording
            .formats
            .iter()
            .map(|format| {
                let preview = if format.kind == "presentation" {
                    format!(
                        "<preview><images><image width=\"176\" height=\"136\" alt=\"{}\">{}/presentation/{}/presentation/thumbnail-1.png</image></images></preview>",
                        escape(&recording.name),
                        escape(&self.base_url),
                        escape(&recording.record_id)
                    )
                } else {
                    String::new()
                };
                format!(
                    "<format>{}{}{}{}{}{preview}</format>",
                    element("type", &format.kind),
                    element("url", self.playback_url(recording, &format.kind, tokens)),
                    element("processingTime", format.processing_time_ms),
                    element("length", format.length_minutes),
                    element("size", format.size),
                )
            })
            .collect();
        let total: u64 = recording.formats.iter().map(|f| f.size).sum();
        [
            element("recordID", &recording.record_id),
            element("meetingID", &recording.meeting_id),
            element("internalMeetingID", &recording.record_id),
            element("name", &recording.name),
            element("isBreakout", false),
            element("published", recording.state == "published"),
            element("state", &recording.state),
            element("startTime", recording.start_time),
            element("endTime", recording.end_time),
            element("participants", recording.participants),
            element("rawSize", recording.raw_size),
            format!("<metadata>{metadata}</metadata>"),
            element("size", total),
            format!("<playback>{formats}</playback>"),
            "<data></data>".to_owned(),
        ]
        .concat()
    }

    /// `getRecordings`: filters by meeting ids, record id prefixes, states and metadata, then
    /// pages with `offset`/`limit`.
    pub(crate) fn get_recordings(&self, params: &Pairs) -> String {
        let meeting_ids = list(params, "meetingID");
        let record_ids = list(params, "recordID");
        let mut states = list(params, "state");
        if states.is_empty() {
            states = vec!["published".to_owned(), "unpublished".to_owned()];
        }
        let any = states.iter().any(|s| s == "any");
        let meta: Vec<(String, &str)> = params
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("meta_")
                    .filter(|k| super::api::is_meta_name(k))
                    .map(|k| (k.to_ascii_lowercase(), v.as_str()))
            })
            .collect();
        let offset: Option<usize> = get(params, "offset").and_then(|v| v.parse().ok());
        let limit: Option<usize> = get(params, "limit")
            .and_then(|v| v.parse().ok())
            .filter(|l| (1..=100).contains(l));
        let mut inner = self.lock();
        let matching: Vec<SimRecording> = inner
            .recordings
            .values()
            .filter(|r| meeting_ids.is_empty() || meeting_ids.contains(&r.meeting_id))
            .filter(|r| {
                record_ids.is_empty()
                    || record_ids
                        .iter()
                        .any(|id| r.record_id.starts_with(id.as_str()))
            })
            .filter(|r| {
                if any {
                    r.state != "deleted" || states.iter().any(|s| s == "deleted")
                } else {
                    states.contains(&r.state)
                }
            })
            .filter(|r| {
                meta.iter()
                    .all(|(k, v)| r.metadata.get(k).is_some_and(|m| m == v))
            })
            .cloned()
            .collect();
        let total = matching.len();
        let paged = offset.is_some() || limit.is_some();
        let page: Vec<&SimRecording> = matching
            .iter()
            .skip(offset.unwrap_or(0))
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        let mut tokens = Vec::new();
        let body: String = page
            .iter()
            .map(|r| {
                format!(
                    "<recording>{}</recording>",
                    self.recording_xml(r, &mut tokens)
                )
            })
            .collect();
        for (token, record_id, kind) in tokens {
            inner
                .playback_tokens
                .insert(token.clone(), (record_id, kind));
            inner.playback_token_order.push_back(token);
        }
        while inner.playback_token_order.len() > super::state::MAX_PLAYBACK_TOKENS {
            if let Some(oldest) = inner.playback_token_order.pop_front() {
                inner.playback_tokens.remove(&oldest);
            }
        }
        let pagination = if paged {
            format!(
                "<pagination><pageable><offset>{}</offset><limit>{}</limit><paged>true</paged><unpaged>false</unpaged></pageable><totalElements>{total}</totalElements><empty>{}</empty></pagination>",
                offset.unwrap_or(0),
                limit.unwrap_or(100),
                page.is_empty()
            )
        } else {
            String::new()
        };
        if page.is_empty() {
            return success(&format!(
                "<recordings></recordings><messageKey>noRecordings</messageKey><message>There are no recordings for the meeting(s).</message>{pagination}"
            ));
        }
        success(&format!("<recordings>{body}</recordings>{pagination}"))
    }

    /// `publishRecordings`, `deleteRecordings`, `updateRecordings`.
    pub(crate) fn change_recordings(&self, call: &str, params: &Pairs) -> String {
        let ids = list(params, "recordID");
        if ids.is_empty() {
            return failure(
                "missingParamRecordID",
                "You must specify one or more a record IDs.",
            );
        }
        let publish = match (call, get(params, "publish")) {
            ("publishRecordings", Some(p)) => Some(p.eq_ignore_ascii_case("true")),
            ("publishRecordings", None) => {
                return failure(
                    "missingParamPublish",
                    "You must specify a publish value true or false.",
                );
            }
            _ => None,
        };
        let mut inner = self.lock();
        let found: Vec<String> = ids
            .iter()
            .filter(|id| {
                inner
                    .recordings
                    .get(*id)
                    .is_some_and(|r| r.state != "deleted" || call == "updateRecordings")
            })
            .cloned()
            .collect();
        if found.is_empty() {
            return failure("notFound", "We could not find recordings");
        }
        let mut events = Vec::new();
        for id in &found {
            let Some(recording) = inner.recordings.get_mut(id) else {
                continue;
            };
            match call {
                "publishRecordings" => {
                    let publish = publish.unwrap_or(true);
                    if recording.state == "processing" {
                        continue;
                    }
                    recording.state = if publish { "published" } else { "unpublished" }.to_owned();
                    events.push((
                        recording.clone(),
                        if publish {
                            "rap-published"
                        } else {
                            "rap-unpublished"
                        },
                    ));
                }
                "deleteRecordings" => {
                    recording.state = "deleted".to_owned();
                    events.push((recording.clone(), "rap-deleted"));
                }
                _ => {
                    for (k, v) in params.iter() {
                        if let Some(key) = k
                            .strip_prefix("meta_")
                            .filter(|k| super::api::is_meta_name(k))
                        {
                            let key = key.to_ascii_lowercase();
                            if v.is_empty() {
                                recording.metadata.remove(&key);
                            } else {
                                recording.metadata.insert(key, v.clone());
                            }
                        }
                    }
                }
            }
        }
        for (recording, id) in events {
            for format in &recording.formats {
                self.hook_event(
                    &inner,
                    Some(&recording.meeting_id),
                    id,
                    json!({
                        "meeting": {"internal-meeting-id": recording.record_id, "external-meeting-id": recording.meeting_id},
                        "record-id": recording.record_id,
                        "format": format.kind,
                    }),
                );
            }
        }
        let answer = match call {
            "publishRecordings" => element("published", publish.unwrap_or(true)),
            "deleteRecordings" => element("deleted", true),
            _ => element("updated", true),
        };
        success(&answer)
    }

    /// The playback video, made with GStreamer the first time it is needed: five seconds of
    /// test pattern with a running clock and a tone, H.264 + AAC in MP4.
    pub async fn media_file(&self) -> Result<PathBuf, String> {
        let dir = self
            .options
            .media_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("amphi-sim-media"));
        self.media
            .get_or_init(|| async move { generate_video(dir).await })
            .await
            .clone()
    }
}

async fn generate_video(dir: PathBuf) -> Result<PathBuf, String> {
    let path = dir.join(VIDEO_FILE);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.len() > 0) {
        return Ok(path);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let partial = dir.join(format!("{VIDEO_FILE}.{}.part", random_alnum(12)));
    let pipeline = format!(
        "videotestsrc num-buffers=125 pattern=smpte ! video/x-raw,width=320,height=180,framerate=25/1,format=I420 \
         ! timeoverlay ! x264enc speed-preset=ultrafast key-int-max=25 ! video/x-h264,profile=constrained-baseline \
         ! h264parse ! mp4mux name=mux faststart=true ! filesink location={} \
         audiotestsrc num-buffers=235 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=1 ! audioconvert \
         ! avenc_aac ! aacparse ! mux.",
        partial.display()
    );
    let mut command = tokio::process::Command::new("gst-launch-1.0");
    command
        .arg("-q")
        .arg("-e")
        .args(pipeline.split_whitespace())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .map_err(|_| "gst-launch-1.0 took more than two minutes".to_owned())?
        .map_err(|e| format!("cannot run gst-launch-1.0 (install gstreamer1.0-tools): {e}"))?;
    if !output.status.success() {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(format!(
            "gst-launch-1.0 failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| format!("cannot move the video into place: {e}"))?;
    Ok(path)
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{} · BBB simulator</title>{body}</html>",
        escape(title)
    ))
    .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such recording\n").into_response()
}

fn published(state: &SimState, record_id: &str) -> Option<SimRecording> {
    state
        .lock()
        .recordings
        .get(record_id)
        .filter(|r| r.state == "published")
        .cloned()
}

fn presentation_page(recording: &SimRecording) -> Response {
    page(
        &recording.name,
        &format!(
            "<h1>{}</h1><p>Presentation playback of recording <code>{}</code>.</p>",
            escape(&recording.name),
            escape(&recording.record_id)
        ),
    )
}

fn video_page(recording: &SimRecording) -> Response {
    page(
        &recording.name,
        &format!(
            "<h1>{}</h1><video controls width=\"640\"><source src=\"{VIDEO_FILE}\" type=\"video/mp4\"></video>",
            escape(&recording.name)
        ),
    )
}

/// `GET /playback/presentation/2.3/{recordID}`.
pub async fn presentation(
    State(state): State<SimState>,
    Path(record_id): Path<String>,
) -> Response {
    if state.options.esr_tokens {
        return not_found();
    }
    published(&state, &record_id).map_or_else(not_found, |r| presentation_page(&r))
}

/// `GET /playback/video/{recordID}/`.
pub async fn video(State(state): State<SimState>, Path(record_id): Path<String>) -> Response {
    if state.options.esr_tokens {
        return not_found();
    }
    published(&state, &record_id).map_or_else(not_found, |r| video_page(&r))
}

/// `GET /playback/video/{recordID}/video-0.m4v` and, with ESR tokens, `/video/{recordID}/…`
/// and `/recording/{recordID}/…` for the session a token opened.
pub async fn video_file(
    State(state): State<SimState>,
    Path((record_id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if file != VIDEO_FILE || published(&state, &record_id).is_none() {
        return not_found();
    }
    if state.options.esr_tokens {
        let session = crate::web::cookies::get(&headers, PLAYBACK_COOKIE);
        let allowed = session.is_some_and(|s| state.lock().playback_sessions.contains(&s));
        if !allowed {
            return (StatusCode::FORBIDDEN, "this playback session has expired\n").into_response();
        }
    }
    match state.media_file().await {
        Ok(path) => match tokio::fs::read(&path).await {
            Ok(bytes) => (
                [(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"))],
                bytes,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        },
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// `GET /recording/{recordID}/{presentation|video}?token=…`, or the video file beside it.
pub async fn esr_playback_or_file(
    state: State<SimState>,
    Path((record_id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    raw: axum::extract::RawQuery,
) -> Response {
    if kind == VIDEO_FILE {
        return video_file(state, Path((record_id, kind)), headers).await;
    }
    esr_playback(state, record_id, kind, raw).await
}

/// ESR playback: the token works once and opens a session (cookie) for the video file.
async fn esr_playback(
    State(state): State<SimState>,
    record_id: String,
    kind: String,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    if !state.options.esr_tokens {
        return not_found();
    }
    let token = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let session = {
        let mut inner = state.lock();
        match inner.playback_tokens.get(&token) {
            Some((id, k)) if *id == record_id && *k == kind => {
                inner.playback_tokens.remove(&token);
                let session = random_alnum(32);
                inner.playback_sessions.insert(session.clone());
                session
            }
            _ => {
                return (
                    StatusCode::FORBIDDEN,
                    "this link has already been used or is not valid; ask for a new one\n",
                )
                    .into_response();
            }
        }
    };
    let Some(recording) = published(&state, &record_id) else {
        return not_found();
    };
    let mut response = match kind.as_str() {
        "video" => video_page(&recording),
        "presentation" => presentation_page(&recording),
        _ => return not_found(),
    };
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{PLAYBACK_COOKIE}={session}; Path=/; HttpOnly; Max-Age=3600"
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
