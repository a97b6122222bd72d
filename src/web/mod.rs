//! HTTP: the axum router built by [`router`], pages rendered from `web/templates`, static files
//! from `web/static`, the JSON API, and the middleware that resolves who is asking (session,
//! trusted proxy headers or API token), in which language, and checks CSRF on every form.

mod admin;
mod api_meetings;
pub mod callbacks;
pub mod context;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod i18n;
mod invite;
mod join;
mod live;
mod lives;
mod meeting_form;
mod meetings;
pub mod metrics;
mod openapi;
mod pages;
mod recordings;
mod slides;
pub mod templates;
mod videos;

pub use context::RequestContext;
pub use error::{AppError, Msg};

use crate::accounts::Accounts;
use crate::bbb::callbacks::{BbbEvent, MAX_HOOK_BODY};
use crate::bbb::{BbbApi, Client};
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::redact::Redacted;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rust_embed::RustEmbed;
use std::sync::Arc;
use tokio::sync::broadcast;

/// BBB events kept for a subscriber that falls behind.
const EVENT_BACKLOG: usize = 1024;

/// Everything a request handler may use.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub accounts: Accounts,
    pub clock: Arc<dyn Clock>,
    pub templates: Arc<templates::Templates>,
    pub metrics: Arc<metrics::Metrics>,
    /// Key for CSRF tokens and callback tokens (from `secret_key` or generated into the
    /// database).
    pub secret_key: Arc<Redacted<Vec<u8>>>,
    /// The configured BBB server, if any.
    pub bbb: Option<Arc<dyn BbbApi>>,
    /// What BBB calls back, for whoever subscribes.
    pub events: broadcast::Sender<BbbEvent>,
    /// Which meetings run, from one `getMeetings` shared for a few seconds.
    pub meeting_status: Arc<crate::meetings::start::StatusCache>,
    /// Outgoing mail, when `mail.smtp_url` is set.
    pub mailer: Option<Arc<dyn crate::mail::Mailer>>,
    /// The lives this instance serves over HLS.
    pub lives: crate::hls::Lives,
    /// Their audience chat rooms.
    pub chat: crate::chat::hub::Hub,
    /// The webinars' lives: start, stop, and the captures of this instance.
    pub webinars: crate::webinar::Webinars,
    /// The video library's jobs.
    pub library: crate::videos::Library,
}

impl AppState {
    /// Builds the state; `secret_key` must already be resolved (see `server::resolve_secret_key`).
    pub fn new(
        config: Config,
        db: Db,
        clock: Arc<dyn Clock>,
        secret_key: Redacted<Vec<u8>>,
    ) -> Result<Self, String> {
        let catalog = Arc::new(i18n::Catalog::load()?);
        let accounts = Accounts::new(db.clone(), Arc::clone(&clock), config.auth.clone());
        let mailer = crate::mail::SmtpMailer::from_config(&config.mail)
            .map_err(|e| e.to_string())?
            .map(|m| Arc::new(m) as Arc<dyn crate::mail::Mailer>);
        let status_ttl =
            std::time::Duration::from_secs(u64::from(config.meetings.status_cache_seconds));
        let bbb = match Client::from_config(&config.bbb) {
            Ok(client) => Some(Arc::new(client) as Arc<dyn BbbApi>),
            Err(crate::bbb::Error::NotConfigured) => None,
            Err(e) => return Err(e.to_string()),
        };
        let lives = crate::hls::Lives::default();
        let mut chat = crate::chat::hub::Hub::with_connection_cap(
            config.chat.connections_per_address as usize,
        );
        if !config.chat.redis_url.is_empty() {
            chat = chat.with_cluster(crate::chat::cluster::Cluster::new(
                config.chat.redis_url.expose(),
            )?);
        }
        let config = Arc::new(config);
        let webinars = crate::webinar::Webinars::new(crate::webinar::Parts {
            db: db.clone(),
            config: Arc::clone(&config),
            api: bbb.clone(),
            lives: lives.clone(),
            chat: chat.clone(),
            catalog: Arc::clone(&catalog),
        });
        let library = crate::videos::Library::new(
            db.clone(),
            Arc::clone(&config),
            bbb.clone(),
            webinars.instance(),
        );
        Ok(Self {
            config,
            db,
            accounts,
            clock,
            templates: Arc::new(templates::Templates::load(catalog)),
            metrics: Arc::new(metrics::Metrics::with_lives(lives.clone())),
            secret_key: Arc::new(secret_key),
            bbb,
            events: broadcast::channel(EVENT_BACKLOG).0,
            meeting_status: Arc::new(crate::meetings::start::StatusCache::new(status_ttl)),
            mailer,
            lives,
            chat,
            webinars,
            library,
        })
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/account", get(pages::account))
        .route("/language", post(pages::language))
        .route("/api/v1/me", get(pages::api_me))
        .route("/api/v1/openapi.json", get(api_meetings::openapi))
        .route(
            "/api/v1/meetings",
            get(api_meetings::list).post(api_meetings::create),
        )
        .route(
            "/api/v1/meetings/{id}",
            get(api_meetings::read)
                .put(api_meetings::update)
                .delete(api_meetings::delete),
        )
        .route("/api/v1/meetings/{id}/status", get(api_meetings::status))
        .route("/api/v1/meetings/{id}/join", post(api_meetings::join))
        .route("/api/v1/meetings/{id}/end", post(api_meetings::end))
        .route("/api/v1/meetings/{id}/invite", post(api_meetings::invite))
        .route("/static/{*path}", get(static_file))
        .route(
            "/bbb/callbacks/recording-ready",
            post(callbacks::recording_ready).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .route("/bbb/callbacks/end", get(callbacks::meeting_ended))
        .route(
            "/bbb/callbacks/hooks",
            post(callbacks::webhook).layer(DefaultBodyLimit::max(MAX_HOOK_BODY)),
        )
        .route(
            "/meeting",
            get(|| async { Redirect::permanent("/meeting/") }),
        )
        .route("/meeting/", get(meetings::list))
        // Pod's URLs end with a slash: both forms work, so Pod's links and bookmarks do.
        .route(
            "/meeting/add/",
            get(meeting_form::add_form).post(meeting_form::add),
        )
        .route(
            "/meeting/edit/{link}/",
            get(meeting_form::edit_form).post(meeting_form::edit),
        )
        .route(
            "/meeting/delete/{link}/",
            get(meetings::delete_form).post(meetings::delete),
        )
        .route(
            "/meeting/invite/{link}/",
            get(invite::invite_form).post(invite::invite),
        )
        .route("/meeting/status/{link}/", get(meetings::status))
        .route("/meeting/get_meeting_info/{link}/", get(meetings::info))
        .route("/meeting/end/{link}/", post(meetings::end))
        .route(
            "/meeting/add",
            get(meeting_form::add_form).post(meeting_form::add),
        )
        .route(
            "/meeting/edit/{link}",
            get(meeting_form::edit_form).post(meeting_form::edit),
        )
        .route(
            "/meeting/delete/{link}",
            get(meetings::delete_form).post(meetings::delete),
        )
        .route(
            "/meeting/slides/{link}",
            get(slides::form)
                .post(slides::upload)
                .layer(DefaultBodyLimit::max(context::UPLOAD_LIMIT_BYTES)),
        )
        .route("/meeting/slides/{link}/remove", post(slides::remove))
        .route("/meeting/slides/{id}/{key}/{name}", get(slides::file))
        .route("/meeting/status/{link}", get(meetings::status))
        .route("/meeting/get_meeting_info/{link}", get(meetings::info))
        .route("/meeting/end/{link}", post(meetings::end))
        .route(
            "/meeting/invite/{link}",
            get(invite::invite_form).post(invite::invite),
        )
        .route("/meeting/{link}/", get(join::join).post(join::join_submit))
        .route(
            "/meeting/{link}",
            get(|Path(link): Path<String>| async move {
                Redirect::permanent(&format!("/meeting/{link}/"))
            }),
        )
        .route(
            "/meeting/{link}/{direct}",
            get(join::join_direct).post(join::join_direct_submit),
        )
        .route("/admin/meetings", get(admin::meetings))
        .route("/admin/meetings/{id}/journal", get(admin::journal))
        .route("/admin/journal.csv", get(admin::export))
        .route("/lives", get(lives::list))
        .route("/meeting/recordings/{link}/", get(recordings::list))
        .route(
            "/meeting/recordings/{link}/{record_id}/play/{kind}",
            get(recordings::play),
        )
        .route(
            "/meeting/recordings/{link}/{record_id}/{action}",
            post(recordings::act),
        )
        .route("/videos/", get(videos::mine))
        .route("/videos/import", post(videos::import))
        .route("/video/{id}/", get(videos::page))
        .route("/video/{id}/status", get(videos::status))
        .route(
            "/video/{id}/edit",
            get(videos::edit_form).post(videos::edit),
        )
        .route("/video/{id}/delete", post(videos::delete))
        .route("/video/{id}/files/{*file}", get(videos::file))
        .route("/admin/videos", get(videos::admin_list))
        .route("/meeting/live/{link}/{action}", post(lives::control))
        .route(
            "/api/v1/meetings/{id}/live/{action}",
            post(lives::api_control),
        )
        .route("/live/{slug}", get(live::live_page))
        .route("/live/{slug}/embed", get(live::embed))
        .route("/live/{slug}/events", get(live::events))
        .route("/live/{slug}/chat", get(live::chat))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.config.site.metrics {
        app = app.route("/metrics", get(metrics::handler));
    }
    // The HLS origin's routes skip the session and page middleware: public media, cheap
    // per request, cacheable by a CDN.
    let origin = crate::hls::http::router(state.lives.clone());
    let pages = app
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::middleware,
        ))
        .with_state(state);
    origin.merge(pages)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers within two seconds.
async fn readyz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response(),
    }
}

#[derive(RustEmbed)]
#[folder = "web/static/"]
struct StaticFiles;

/// Files of `web/static`: from disk in debug builds, embedded in release builds.
async fn static_file(Path(path): Path<String>) -> Response {
    let Some(file) = StaticFiles::get(&path) else {
        return AppError::NotFound.into_response();
    };
    let content_type = match path.rsplit('.').next().unwrap_or("") {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let cache = if cfg!(debug_assertions) {
        "no-cache"
    } else {
        "public, max-age=3600"
    };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
