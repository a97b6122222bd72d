//! Slide images for the picture: fetched once per page with the session cookie (BBB 3.0.27
//! and later want it), the PNG when the server has one, the SVG otherwise, and kept in memory.

use super::state::Slide;
use crate::redact::Redacted;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Pages kept at most.
const CACHED_PAGES: usize = 64;
/// Largest image accepted.
const MAX_IMAGE_BYTES: usize = 16 * 1024 * 1024;

/// An image of a slide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlideImage {
    /// `image/png` or `image/svg+xml`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why a slide image could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SlideError {
    #[error("the slide has no image URL")]
    NoUrl,
    #[error("the slide image could not be fetched: {0}")]
    Fetch(String),
    #[error("the slide image is larger than 16 MB")]
    TooLarge,
}

/// The cache.
pub struct SlideCache {
    http: reqwest::Client,
    cookie: Option<Redacted<String>>,
    pages: Mutex<(HashMap<String, SlideImage>, VecDeque<String>)>,
    fetched: std::sync::atomic::AtomicU64,
}

impl SlideCache {
    pub fn new(cookie: Option<Redacted<String>>) -> Self {
        crate::install_crypto_provider();
        Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .unwrap_or_default(),
            cookie,
            pages: Mutex::new((HashMap::new(), VecDeque::new())),
            fetched: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many images were downloaded (the others came from the cache).
    pub fn downloads(&self) -> u64 {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn download(&self, url: &str) -> Result<SlideImage, SlideError> {
        let mut request = self.http.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header(
                reqwest::header::COOKIE,
                format!("JSESSIONID={}", cookie.expose()),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|e| SlideError::Fetch(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(SlideError::Fetch(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        if response
            .content_length()
            .is_some_and(|l| l > MAX_IMAGE_BYTES as u64)
        {
            return Err(SlideError::TooLarge);
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SlideError::Fetch(e.without_url().to_string()))?
        {
            if bytes.len() + chunk.len() > MAX_IMAGE_BYTES {
                return Err(SlideError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        self.fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(SlideImage {
            content_type,
            bytes,
        })
    }

    /// The image of a slide, from the cache when it was fetched before.
    pub async fn image(&self, slide: &Slide) -> Result<SlideImage, SlideError> {
        let key = format!(
            "{}#{}",
            slide.page_id,
            slide
                .png_url
                .as_deref()
                .or(slide.svg_url.as_deref())
                .unwrap_or("")
        );
        if let Some(image) = self
            .pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(&key)
        {
            return Ok(image.clone());
        }
        let image = match (&slide.png_url, &slide.svg_url) {
            (Some(png), svg) => match self.download(png).await {
                Ok(image) => image,
                // BBB makes PNGs only with generatePngs=true: the SVG is always there.
                Err(e) => match svg {
                    Some(svg) => self.download(svg).await?,
                    None => return Err(e),
                },
            },
            (None, Some(svg)) => self.download(svg).await?,
            (None, None) => return Err(SlideError::NoUrl),
        };
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages.0.insert(key.clone(), image.clone());
        pages.1.push_back(key);
        while pages.1.len() > CACHED_PAGES {
            if let Some(old) = pages.1.pop_front() {
                pages.0.remove(&old);
            }
        }
        Ok(image)
    }
}
