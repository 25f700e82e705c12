//! `cetrail serve`: the dashboard in a browser, read-only over the lake (SPEC §13).
//!
//! - [`worker`]: the thread that reads the lake (the view kept between requests).
//! - [`page`]: the HTML of the dashboard page and of a timeline.
//!
//! HTTP runs on a small tokio runtime (axum) and only moves requests and answers:
//! every request needs the access token printed at start (in the URL once, then a
//! cookie), or gets 403; every answer forbids other origins (Content-Security-Policy).

pub mod page;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;

use crate::config::Config;
use worker::{Answer, Job, Params, Reply, Worker};

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP runtime: {0}")]
    Runtime(std::io::Error),
    #[error("no randomness for the access token: {0}")]
    Token(String),
}

/// The Content-Security-Policy of every answer: nothing from another origin, no
/// inline script.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const COOKIE: &str = "cetrail_token";

/// A fresh access token: 128 random bits, hex.
pub fn new_token() -> Result<String, ServeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ServeError::Token(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Clone)]
struct App {
    token: String,
    jobs: mpsc::Sender<Job>,
}

/// Equal without telling how much of it matched.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn answer(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: u16, message: &str) -> Response {
    answer(
        status,
        "text/plain; charset=utf-8",
        message.as_bytes().to_vec(),
    )
}

async fn ask(app: &App, job: impl FnOnce(tokio::sync::oneshot::Sender<Answer>) -> Job) -> Answer {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if app.jobs.send(job(tx)).is_err() {
        return Err((500, "the lake reader stopped".into()));
    }
    rx.await
        .unwrap_or_else(|_| Err((500, "the lake reader stopped".into())))
}

async fn handle(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    Query(mut params): Query<Params>,
) -> Response {
    // The token: in the URL (then set as a cookie) or in the cookie.
    let from_url = params.remove("token");
    let given = from_url.clone().or_else(|| cookie_token(&headers));
    if !given.as_deref().is_some_and(|t| same(t, &app.token)) {
        return text(
            403,
            "403: this page needs the access token `cetrail serve` printed\n",
        );
    }
    let path = uri.path().to_string();
    let result = match path.as_str() {
        "/assets/app.css" => Ok((
            "text/css; charset=utf-8",
            Reply {
                body: page::CSS.as_bytes().to_vec(),
                timing: String::new(),
            },
        )),
        "/" => ask(&app, |reply| Job::Page { params, reply })
            .await
            .map(|b| ("text/html; charset=utf-8", b)),
        "/timeline" => ask(&app, |reply| Job::Timeline { params, reply })
            .await
            .map(|b| ("text/html; charset=utf-8", b)),
        p => match p.strip_prefix("/api/widgets/") {
            Some(name) => {
                let name = name.to_string();
                ask(&app, |reply| Job::Widget {
                    name,
                    params,
                    reply,
                })
                .await
                .map(|b| ("application/json", b))
            }
            None => Err((404, format!("no page {p}"))),
        },
    };
    let mut r = match result {
        Ok((kind, reply)) => {
            let mut r = answer(200, kind, reply.body);
            if let Ok(v) = HeaderValue::from_str(&reply.timing)
                && !reply.timing.is_empty()
            {
                r.headers_mut().insert("server-timing", v);
            }
            r
        }
        Err((status, message)) => text(status, &format!("{status}: {message}\n")),
    };
    if from_url.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
            app.token
        ))
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// What `serve` needs.
pub struct Options {
    pub lake: PathBuf,
    pub config: Config,
    pub addr: SocketAddr,
    pub token: String,
}

/// Binds, then calls `ready` with the address bound (the port chosen when 0 was asked),
/// then serves until the process ends.
pub fn serve(opts: Options, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let (jobs, rx) = mpsc::channel();
    let worker = Worker::new(opts.lake, opts.config);
    std::thread::Builder::new()
        .name("cetrail-serve-lake".into())
        .spawn(move || worker.run(rx))
        .map_err(ServeError::Runtime)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.addr,
                source,
            })?;
        let bound = listener.local_addr().map_err(ServeError::Runtime)?;
        ready(bound);
        let app = Router::new().fallback(handle).with_state(App {
            token: opts.token,
            jobs,
        });
        axum::serve(listener, app)
            .await
            .map_err(ServeError::Runtime)
    })
}
