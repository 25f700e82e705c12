//! `logs:<log-group>`: the log group the CE stack feeds, read through the CloudWatch
//! Logs API (`FilterLogEvents`), incrementally.
//!
//! The range is read in day slices ([`super::slices`]), several at a time (the
//! ingest's readers), each slice's pages one after another (`nextToken`). Requests are
//! spaced to the API's rate (5 a second by default) and throttling is retried by the
//! SDK with exponential backoff and jitter. A slice's body is its pages as
//! `FilterLogEvents` returns them (`{"logGroupName":…,"events":[…]}` a line), which
//! the parser reads like the CLI's `filter-log-events` output
//! ([`crate::record::envelope::Format::LogEvents`]); each event keeps its stream as its
//! provenance (`logs:<group>/<stream>`).

use std::sync::Mutex;

use aws_sdk_cloudwatchlogs::Client;
use serde::Deserialize;

use super::slices::{
    RateLimit, Settled, SliceRead, Span, fetch_slice, fetched_bytes, read_pages, slice_objects,
};
use super::{Fetched, Object, Source};
use crate::error::SourceError;
use crate::lake::ledger::LedgerIndex;

/// How an API source reads.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// First instant wanted (ms since the epoch); `None`: as far back as the source
    /// holds events.
    pub from: Option<i64>,
    /// End of the range (exclusive); `None`: now.
    pub to: Option<i64>,
    /// The source's delivery delay: events younger than this when read are read again
    /// by the next run (dedup drops those already kept).
    pub overlap_ms: i64,
    /// Requests a second.
    pub rate: f64,
    /// Events per page requested (`None`: the API's default).
    pub page_size: Option<i32>,
}

/// The log group's delivery delay by default: EventBridge delivers CloudTrail's events
/// within minutes.
pub const DEFAULT_OVERLAP_MS: i64 = 15 * 60_000;

/// A log group through the CloudWatch Logs API.
pub struct LogGroupSource {
    client: Client,
    runtime: tokio::runtime::Runtime,
    group: String,
    options: ApiOptions,
    limit: RateLimit,
    plan: Mutex<Option<Vec<Span>>>,
}

/// How to reach CloudWatch Logs (the standard credential chain otherwise).
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub max_attempts: u32,
}

/// The shared AWS configuration for `options` (profile, region, credentials).
pub(crate) async fn sdk_config(options: &ClientOptions) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(p) = &options.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &options.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(e) = &options.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

fn err(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Remote(format!("{what}: {e}"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The CloudTrail `eventID` of a message (an EventBridge event or a bare record).
pub(crate) fn message_event_id(message: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Detail {
        #[serde(rename = "eventID")]
        event_id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Message {
        #[serde(rename = "eventID")]
        event_id: Option<String>,
        detail: Option<Detail>,
    }
    let m: Message = serde_json::from_str(message).ok()?;
    m.detail.and_then(|d| d.event_id).or(m.event_id)
}

impl LogGroupSource {
    /// Connects with the standard credential chain and `client_options`.
    pub fn connect(
        group: &str,
        client_options: &ClientOptions,
        options: ApiOptions,
    ) -> Result<Self, SourceError> {
        let runtime = super::s3::runtime()?;
        let client = runtime.block_on(async {
            let shared = sdk_config(client_options).await;
            let mut b = aws_sdk_cloudwatchlogs::config::Builder::from(&shared).retry_config(
                aws_sdk_cloudwatchlogs::config::retry::RetryConfig::standard()
                    .with_max_attempts(client_options.max_attempts.max(1)),
            );
            if shared.region().is_none() {
                b = b.region(aws_config::Region::new("us-east-1"));
            }
            Client::from_conf(b.build())
        });
        Ok(Self::with_client(client, runtime, group, options))
    }

    /// A source with a ready client (tests, custom transports).
    pub fn with_client(
        client: Client,
        runtime: tokio::runtime::Runtime,
        group: &str,
        options: ApiOptions,
    ) -> Self {
        Self {
            client,
            runtime,
            group: group.to_string(),
            limit: RateLimit::new(options.rate),
            options,
            plan: Mutex::new(None),
        }
    }

    /// The provenance prefix of this source (`logs:<group>`).
    pub fn name(&self) -> String {
        format!("logs:{}", self.group)
    }

    /// The earliest instant the group may hold events: its creation less the 14 days
    /// CloudWatch Logs accepts events from the past.
    fn earliest(&self) -> Result<i64, SourceError> {
        let mut token = None;
        loop {
            std::thread::sleep(self.limit.slot());
            let resp = self
                .runtime
                .block_on(
                    self.client
                        .describe_log_groups()
                        .log_group_name_prefix(&self.group)
                        .set_next_token(token)
                        .send(),
                )
                .map_err(|e| {
                    err(
                        &format!("describing log group {}", self.group),
                        aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e),
                    )
                })?;
            if let Some(g) = resp
                .log_groups()
                .iter()
                .find(|g| g.log_group_name() == Some(self.group.as_str()))
            {
                return Ok(g.creation_time().unwrap_or(0) - 14 * 86_400_000);
            }
            token = resp.next_token().map(str::to_string);
            if token.is_none() {
                return Err(SourceError::Remote(format!(
                    "log group {} does not exist (or is not visible with these credentials and region)",
                    self.group
                )));
            }
        }
    }

    fn planned(&self) -> Vec<Span> {
        self.plan
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_default()
    }

    /// Reads one slice: every page, in order.
    fn read_slice(&self, span: Span) -> Result<SliceRead, String> {
        let settled = (now_ms() - self.options.overlap_ms).clamp(span.from, span.to);
        let mut ids = Vec::new();
        let body = read_pages(&self.limit, |token, n| {
            let resp = self
                .runtime
                .block_on(
                    self.client
                        .filter_log_events()
                        .log_group_name(&self.group)
                        .start_time(span.from)
                        // The API's end is inclusive.
                        .end_time(span.to - 1)
                        .set_limit(self.options.page_size)
                        .set_next_token(token)
                        .send(),
                )
                .map_err(|e| {
                    format!(
                        "FilterLogEvents on {} (page {n}): {}",
                        self.group,
                        aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e)
                    )
                })?;
            let events: Vec<serde_json::Value> = resp
                .events()
                .iter()
                .map(|e| {
                    let message = e.message().unwrap_or("");
                    if e.timestamp().is_some_and(|t| t >= settled)
                        && let Some(id) = message_event_id(message)
                    {
                        ids.push(id);
                    }
                    serde_json::json!({
                        "logStreamName": e.log_stream_name(),
                        "timestamp": e.timestamp(),
                        "message": message,
                    })
                })
                .collect();
            let page = serde_json::json!({"logGroupName": self.group, "events": events});
            Ok((page, resp.next_token().map(str::to_string)))
        })?;
        Ok(SliceRead { body, settled, ids })
    }
}

impl Source for LogGroupSource {
    fn describe(&self) -> String {
        self.name()
    }

    fn resume(&self, ledger: &LedgerIndex) -> Result<Vec<String>, SourceError> {
        let from = match self.options.from {
            Some(f) => f,
            None => self.earliest()?,
        };
        let to = self.options.to.unwrap_or_else(now_ms).min(now_ms());
        let settled = Settled::of(&self.name(), ledger);
        let plan = if from < to {
            settled.plan(Span { from, to })
        } else {
            Vec::new()
        };
        let ids = settled.edge_ids(&plan);
        if let Ok(mut p) = self.plan.lock() {
            *p = Some(plan);
        }
        Ok(ids)
    }

    fn list(&self) -> Result<Vec<Object>, SourceError> {
        let name = self.name();
        Ok(slice_objects(
            self.planned().into_iter().map(|span| (name.clone(), span)),
        ))
    }

    fn read(&self, object: &Object) -> Result<Vec<u8>, String> {
        fetched_bytes(self.fetch(object, u64::MAX))
    }

    fn fetch(&self, object: &Object, _max_bytes: u64) -> Result<Fetched, String> {
        fetch_slice(&object.key, |_, span| self.read_slice(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_come_from_the_detail_or_the_record() {
        assert_eq!(
            message_event_id(
                r#"{"detail-type":"AWS API Call via CloudTrail","detail":{"eventID":"a"}}"#
            ),
            Some("a".into())
        );
        assert_eq!(message_event_id(r#"{"eventID":"b"}"#), Some("b".into()));
        assert_eq!(message_event_id("not json"), None);
    }
}
