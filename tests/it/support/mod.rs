//! Shared test support: databases (SQLite always, PostgreSQL when `AMPHI_TEST_DATABASE_URL` is
//! set, each in a fresh schema), an in-process app with a cookie jar, and HTML helpers.
#![allow(dead_code)]

pub mod media;

use amphi::clock::{Clock, ManualClock};
use amphi::config::Config;
use amphi::db::{self, Db};
use amphi::redact::Redacted;
use amphi::web::{self, AppState};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

/// A migrated database that cleans up after itself.
pub struct TestDb {
    pub db: Db,
    pub label: &'static str,
    pub schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        amphi::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("amphi.sqlite3").display());
        let db = Db::connect(&url, &db::Options::default())
            .await
            .expect("open SQLite");
        db.migrate().await.expect("migrate SQLite");
        TestDb {
            db,
            label: "sqlite",
            schema: None,
            _dir: Some(dir),
        }
    }

    /// PostgreSQL in a new schema, when `AMPHI_TEST_DATABASE_URL` is set.
    pub async fn postgres() -> Option<TestDb> {
        amphi::install_crypto_provider();
        let url = std::env::var("AMPHI_TEST_DATABASE_URL").ok()?;
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).expect("random");
        let schema = format!("amphi_test_{}", hex::encode(suffix));
        let options = db::Options {
            max_connections: 4,
            schema: Some(schema.clone()),
            ..db::Options::default()
        };
        let db = Db::connect(&url, &options)
            .await
            .unwrap_or_else(|e| panic!("AMPHI_TEST_DATABASE_URL is set but unusable: {e}"));
        db.migrate().await.expect("migrate PostgreSQL");
        Some(TestDb {
            db,
            label: "postgres",
            schema: Some(schema),
            _dir: None,
        })
    }

    /// SQLite, plus PostgreSQL when configured.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        if let Some(pg) = TestDb::postgres().await {
            dbs.push(pg);
        }
        dbs
    }

    pub async fn cleanup(self) {
        if let Some(schema) = &self.schema {
            self.db.drop_schema(schema).await.expect("drop test schema");
        }
        self.db.close().await;
    }
}

pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

/// The app in process, driven through tower with a cookie jar and a chosen peer address.
pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    router: Router,
    pub peer: SocketAddr,
    cookies: HashMap<String, String>,
    pub test_db: Option<TestDb>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
    /// The body as it came, for binary files.
    pub raw: Vec<u8>,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first `csrf_token` hidden field.
    pub fn csrf_token(&self) -> String {
        csrf_in(&self.body)
    }
}

impl TestApp {
    pub async fn new(mut config: Config) -> TestApp {
        let test_db = TestDb::sqlite().await;
        // Files the app writes (slides) go to the test's own folder, never /var/lib/amphi.
        if config.data_dir == Config::default().data_dir
            && let Some(dir) = &test_db._dir
        {
            config.data_dir = dir.path().to_owned();
        }
        let mut app = TestApp::with_db(config, test_db.db.clone()).await;
        app.test_db = Some(test_db);
        app
    }

    pub async fn with_db(config: Config, db: Db) -> TestApp {
        amphi::install_crypto_provider();
        let clock = Arc::new(ManualClock::new(start_time()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let state = AppState::new(
            config,
            db,
            dyn_clock,
            Redacted::new(b"test-secret-key-for-csrf".to_vec()),
        )
        .expect("state");
        TestApp {
            router: web::router(state.clone()),
            state,
            clock,
            peer: "127.0.0.1:40000".parse().unwrap(),
            cookies: HashMap::new(),
            test_db: None,
        }
    }

    /// A second browser on the same app: same state, its own cookies.
    pub fn another_browser(&self) -> TestApp {
        TestApp {
            router: self.router.clone(),
            state: self.state.clone(),
            clock: Arc::clone(&self.clock),
            peer: self.peer,
            cookies: HashMap::new(),
            test_db: None,
        }
    }

    pub fn forget_cookies(&mut self) {
        self.cookies.clear();
    }

    pub fn cookie(&self, name: &str) -> Option<&String> {
        self.cookies.get(name)
    }

    pub async fn send(&mut self, mut request: Request<Body>) -> Page {
        if !self.cookies.is_empty() && !request.headers().contains_key(header::COOKIE) {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.join("; ").parse().unwrap());
        }
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response: Response<Body> = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        for value in headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            raw: bytes.to_vec(),
        }
    }

    /// The bytes of a file that must be there.
    pub async fn get_bytes(&mut self, path: &str) -> Vec<u8> {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        page.raw
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut builder = Request::get(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Body::empty()).unwrap()).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// Fetches the login page for a CSRF token, then posts the credentials.
    pub async fn login(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let token = form.csrf_token();
        self.post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("password", password),
                ("next", "/account"),
            ],
        )
        .await
    }

    /// The first meeting of `username` that is not their personal room.
    pub async fn first_meeting_of(&self, username: &str) -> amphi::db::Meeting {
        let user = self
            .state
            .db
            .user_by_username(username)
            .await
            .unwrap()
            .expect("the user exists");
        self.state
            .db
            .meetings_of(user.id)
            .await
            .unwrap()
            .into_iter()
            .find(|m| !m.is_personal)
            .expect("a meeting besides the personal room")
    }

    /// Creates a local user with a password.
    pub async fn add_user(&self, username: &str, password: &str) -> amphi::db::User {
        self.state
            .accounts
            .create_user(&amphi::accounts::UserSpec {
                username: username.to_owned(),
                password: Some(Redacted::new(password.to_owned())),
                email: format!("{username}@univ.example"),
                ..Default::default()
            })
            .await
            .expect("create user")
    }
}

/// The value of the first `csrf_token` hidden field of an HTML page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// Path of the built `amphi` binary.
/// A folder of `../shared/reference/fixtures`, or `None` (with a message) where it is absent,
/// as on a user's machine: the reference data is read in place, never copied.
pub fn reference_fixtures(subdir: &str) -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/fixtures")
        .join(subdir);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: reference fixtures not found at {}", dir.display());
        None
    }
}

pub fn amphi_bin() -> &'static str {
    env!("CARGO_BIN_EXE_amphi")
}

/// Runs `amphi --config CONFIG ARGS…`, which must succeed; returns its standard output.
pub fn amphi_with(config: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new(amphi_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Serves `state`'s whole router on 127.0.0.1 (a free port), for browsers and WebSocket
/// clients; returns the address.
pub async fn serve_app(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = web::router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}
