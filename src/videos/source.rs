//! Where a video's file is: a BBB recording's `video` playback (the HTML player page's
//! `<source>`, fetched in the page's cookie session, as ESR one-time tokens need), a PeerTube
//! watch page (through PeerTube's API), another BBB video playback page, or a direct media
//! file. Every fetch goes through the [`Guard`].

use crate::bbb::{BbbApi, RecordingsQuery};
use crate::fetch::{FetchError, Guard};
use reqwest::cookie::Jar;
use std::sync::Arc;
use url::Url;

/// What a job downloads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A BBB recording of a meeting of amphi.
    Recording { meeting_id: i64, record_id: String },
    /// A URL a user gave; `titled` when they chose the title (else the source's is taken).
    Url {
        url: String,
        #[serde(default)]
        titled: bool,
    },
}

/// The media file found, and what was learnt on the way.
pub struct Located {
    pub url: Url,
    /// The session the file must be fetched in (the playback page's cookies).
    pub jar: Option<Arc<Jar>>,
    /// Size announced before the download, when the source says it.
    pub size: Option<u64>,
    pub title: Option<String>,
    pub description: Option<String>,
}

/// Largest HTML page or API answer read while looking for the file.
const MAX_PAGE: u64 = 2 << 20;

/// File extensions of media files.
const MEDIA_EXTENSIONS: [&str; 9] = [
    "mp4", "m4v", "webm", "mkv", "mov", "ogv", "mp3", "m4a", "ogg",
];

fn media_extension(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| MEDIA_EXTENSIONS.iter().any(|m| m.eq_ignore_ascii_case(ext)))
}

/// The first `<source src="…">` of an HTML page, attribute quoted or not.
pub fn source_in_page(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("<source") {
        let start = from + at;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        if let Some(src) = tag_lower.find("src=") {
            let value = &tag[src + 4..];
            let found = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next(),
                // Unquoted: up to the next space, a self-closing slash left out.
                Some(_) => value
                    .split(char::is_whitespace)
                    .next()
                    .map(|v| v.trim_end_matches('/')),
                None => None,
            };
            if let Some(found) = found.map(str::trim).filter(|s| !s.is_empty()) {
                return Some(found.replace("&amp;", "&"));
            }
        }
        from = end;
    }
    None
}

/// A PeerTube video id from a watch URL (`/w/<id>`, `/videos/watch/<id>`).
pub fn peertube_id(url: &Url) -> Option<String> {
    let path = url.path();
    let id = path
        .strip_prefix("/w/")
        .or_else(|| path.strip_prefix("/videos/watch/"))?;
    let id = id.trim_end_matches('/');
    (!id.is_empty()
        && !id.contains('/')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    .then(|| id.to_owned())
}

/// The video file of a BBB `video` playback: the URL itself when it names a media file, else
/// the player page's `<source>`, beside the page (or, for an ESR token page
/// `…/recording/<id>/video?token=…`, at `/video/<id>/<file>` on the same host), in the
/// page's cookie session.
pub async fn in_playback_page(guard: &Guard, page: &Url) -> Result<Located, String> {
    if media_extension(page.path()) {
        return Ok(Located {
            url: page.clone(),
            jar: None,
            size: None,
            title: None,
            description: None,
        });
    }
    let jar = Arc::new(Jar::default());
    let (final_url, html) = guard
        .text(page, Some(&jar), MAX_PAGE)
        .await
        .map_err(|e| e.to_string())?;
    let src = source_in_page(&html)
        .ok_or("the playback page has no video in it (no <source> element)")?;
    let file_name = src.rsplit('/').next().unwrap_or(&src).to_owned();
    if !media_extension(&file_name) {
        return Err(format!(
            "the playback page's video “{file_name}” is not a video file"
        ));
    }
    let token_page = final_url.query_pairs().any(|(k, _)| k == "token");
    let url = match (token_page, esr_record_id(&final_url)) {
        (true, Some(record_id)) => {
            let mut url = final_url.clone();
            url.set_query(None);
            url.set_path(&format!("/video/{record_id}/{file_name}"));
            url
        }
        _ => final_url
            .join(&src)
            .map_err(|_| "the playback page's video address is not valid".to_owned())?,
    };
    Ok(Located {
        url,
        jar: Some(jar),
        size: None,
        title: None,
        description: None,
    })
}

/// `<id>` of an ESR playback URL `/recording/<id>/video`.
fn esr_record_id(url: &Url) -> Option<String> {
    let mut segments = url.path_segments()?;
    (segments.next()? == "recording")
        .then(|| segments.next().map(str::to_owned))
        .flatten()
        .filter(|id| !id.is_empty())
}

/// A recording's video file, from a playback URL asked for just now (ESR tokens are single
/// use).
pub async fn recording(
    guard: &Guard,
    bbb: &dyn BbbApi,
    record_id: &str,
) -> Result<(Located, String), String> {
    let query = RecordingsQuery {
        record_ids: vec![record_id.to_owned()],
        states: vec!["any".to_owned()],
        ..RecordingsQuery::default()
    };
    let found = bbb
        .get_recordings(&query)
        .await
        .map_err(|e| format!("the BBB server did not list the recording: {e}"))?;
    let recording = found
        .recordings
        .items
        .into_iter()
        .find(|r| r.record_id == record_id && r.state != "deleted")
        .ok_or("the recording no longer exists on the BBB server")?;
    let playback = recording
        .playback
        .formats
        .iter()
        .find(|f| f.kind == "video")
        .ok_or(
            "this recording has only a presentation playback: it cannot be converted to a video yet",
        )?;
    let page = Url::parse(&playback.url)
        .map_err(|_| "the BBB server gave a playback address that is not valid".to_owned())?;
    let mut located = in_playback_page(guard, &page).await?;
    located.size = playback.size.filter(|s| *s > 0).or(located.size);
    Ok((located, recording.name))
}

/// The video file behind a URL a user gave.
pub async fn from_url(guard: &Guard, url: &Url) -> Result<Located, String> {
    if let Some(id) = peertube_id(url) {
        return peertube(guard, url, &id).await;
    }
    let path = url.path();
    if path.contains("/playback/video/") || esr_record_id(url).is_some() {
        return in_playback_page(guard, url).await;
    }
    // A file, or a page with a <source>: the HEAD (when the server answers one) tells.
    let head = guard.get(url, None, true).await;
    let (size, content_type) = match &head {
        Ok(f) => (
            f.response.content_length(),
            f.response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase),
        ),
        Err(FetchError::Private { .. } | FetchError::Scheme(_) | FetchError::Dns(_)) => {
            return Err(head.err().map(|e| e.to_string()).unwrap_or_default());
        }
        Err(_) => (None, None),
    };
    match content_type.as_deref() {
        Some(t) if t.starts_with("text/html") => in_playback_page(guard, url).await,
        Some(t) if !is_media_type(t) => Err(format!(
            "the address does not lead to a video (the server says it is “{}”)",
            t.split(';').next().unwrap_or(t)
        )),
        _ => Ok(Located {
            url: url.clone(),
            jar: None,
            size,
            title: None,
            description: None,
        }),
    }
}

/// Content types a video (or sound) file may come with.
pub fn is_media_type(content_type: &str) -> bool {
    let t = content_type.split(';').next().unwrap_or("").trim();
    t.starts_with("video/")
        || t.starts_with("audio/")
        || t == "application/octet-stream"
        || t == "application/mp4"
        || t == "binary/octet-stream"
}

#[derive(serde::Deserialize)]
struct PeerTubeVideo {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    files: Vec<PeerTubeFile>,
    #[serde(default, rename = "streamingPlaylists")]
    streaming_playlists: Vec<PeerTubePlaylist>,
}

#[derive(serde::Deserialize)]
struct PeerTubePlaylist {
    #[serde(default)]
    files: Vec<PeerTubeFile>,
}

#[derive(serde::Deserialize)]
struct PeerTubeFile {
    #[serde(rename = "fileDownloadUrl")]
    file_download_url: String,
    #[serde(default)]
    size: Option<u64>,
}

/// PeerTube's API `GET /api/v1/videos/<id>`: the first downloadable file (web video, else
/// the HLS playlist's), its size, the title and description.
async fn peertube(guard: &Guard, watch: &Url, id: &str) -> Result<Located, String> {
    let api = watch
        .join(&format!("/api/v1/videos/{id}"))
        .map_err(|_| "this PeerTube address is not valid".to_owned())?;
    let (_, json) = guard
        .text(&api, None, MAX_PAGE)
        .await
        .map_err(|e| format!("PeerTube did not describe the video: {e}"))?;
    let video: PeerTubeVideo = serde_json::from_str(&json)
        .map_err(|_| "PeerTube's answer is not a video description".to_owned())?;
    let file = video
        .files
        .into_iter()
        .chain(video.streaming_playlists.into_iter().flat_map(|p| p.files))
        .next()
        .ok_or("this PeerTube video has no downloadable file")?;
    let url = Url::parse(&file.file_download_url)
        .map_err(|_| "PeerTube gave a download address that is not valid".to_owned())?;
    Ok(Located {
        url,
        jar: None,
        size: file.size,
        title: Some(video.name).filter(|n| !n.trim().is_empty()),
        description: video.description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_source_of_a_player_page_is_found() {
        assert_eq!(
            source_in_page(
                "<video controls><SOURCE type=\"video/mp4\" SRC=\"video-0.m4v\"><source src='b.webm'></video>"
            )
            .as_deref(),
            Some("video-0.m4v")
        );
        assert_eq!(
            source_in_page("<source src=a.mp4 type=video/mp4>").as_deref(),
            Some("a.mp4")
        );
        assert_eq!(
            source_in_page("<source src=videos/a.mp4/>").as_deref(),
            Some("videos/a.mp4")
        );
        assert_eq!(
            source_in_page("<source src=\"x.mp4?a=1&amp;b=2\">").as_deref(),
            Some("x.mp4?a=1&b=2")
        );
        assert_eq!(source_in_page("<source type=video/mp4>"), None);
        assert_eq!(source_in_page("<p>no player</p>"), None);
        assert_eq!(source_in_page("<source src=\""), None);
    }

    proptest::proptest! {
        #[test]
        fn any_page_is_searched_without_panic(page in ".{0,300}", src in "[a-z0-9./_-]{1,20}") {
            if let Some(found) = source_in_page(&page) {
                proptest::prop_assert!(!found.is_empty() && found.trim() == found);
            }
            let wrapped = format!("{page}<video><source src=\"{src}\"></video>");
            let found = source_in_page(&wrapped);
            proptest::prop_assert!(found.is_some());
        }
    }

    #[test]
    fn peertube_watch_addresses_give_the_video_id() {
        let id = |u: &str| peertube_id(&Url::parse(u).unwrap());
        assert_eq!(
            id("https://tube.example.fr/w/kkGMgK9ZtnKfYAgnEtQxbv").as_deref(),
            Some("kkGMgK9ZtnKfYAgnEtQxbv")
        );
        assert_eq!(
            id("https://tube.example.fr/videos/watch/9c9de5e8-0a1e-484a-b099-e80766180a6d/")
                .as_deref(),
            Some("9c9de5e8-0a1e-484a-b099-e80766180a6d")
        );
        assert_eq!(id("https://tube.example.fr/w/"), None);
        assert_eq!(id("https://tube.example.fr/w/a/b"), None);
        assert_eq!(id("https://example.fr/video.mp4"), None);
    }

    #[test]
    fn esr_playback_pages_name_their_recording() {
        let url = Url::parse("https://x.example/recording/abc-123/video?token=t").unwrap();
        assert_eq!(esr_record_id(&url).as_deref(), Some("abc-123"));
        let url = Url::parse("https://x.example/playback/video/abc-123/").unwrap();
        assert_eq!(esr_record_id(&url), None);
        assert!(media_extension("/a/video-0.m4v"));
        assert!(!media_extension("/a/index.html"));
        assert!(is_media_type("video/mp4; charset=binary"));
        assert!(!is_media_type("text/plain"));
    }
}
