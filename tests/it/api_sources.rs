//! `logs:<group>` against moto_server's CloudWatch Logs (and its export into moto's
//! S3), and `event-history:<region>` against a small local stub that replays
//! `LookupEvents` pages in their documented shape (moto has no `LookupEvents`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::config::{Credentials, Region};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Value, json};

use crate::s3::moto_endpoint;
use crate::util::*;

const GROUP: &str = "continuous.engineering-access";

fn iso_ms(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// An EventBridge event of a CE-DevOps call at `ms`.
fn bus_event(id: &str, ms: i64) -> String {
    json!({
        "version": "0",
        "id": format!("bus-{id}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ssm",
        "account": "111122223333",
        "time": iso_ms(ms),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/CE-DevOps/bob.nguyen",
                "accountId": "111122223333",
                "accessKeyId": "ASIAEXAMPLEDEVOPS001",
                "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "CE-DevOps"},
                    "attributes": {"creationDate": iso_ms(ms - 600_000), "mfaAuthenticated": "false"}}
            },
            "eventTime": iso_ms(ms),
            "eventSource": "ssm.amazonaws.com",
            "eventName": "DescribeInstanceInformation",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.11",
            "userAgent": "aws-cli/2",
            "requestParameters": null,
            "responseElements": null,
            "eventID": id,
            "readOnly": true,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": "111122223333",
            "eventCategory": "Management"
        }
    })
    .to_string()
}

fn logs_client(endpoint: &str, interceptor: Option<Throttle>) -> aws_sdk_cloudwatchlogs::Client {
    let mut b = aws_sdk_cloudwatchlogs::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(
            aws_sdk_cloudwatchlogs::config::retry::RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(5)),
        );
    if let Some(i) = interceptor {
        b = b.interceptor(i);
    }
    aws_sdk_cloudwatchlogs::Client::from_conf(b.build())
}

/// Turns every `every`-th response into CloudWatch Logs' throttling answer (the call
/// itself reached moto: FilterLogEvents only reads).
#[derive(Debug, Clone)]
struct Throttle {
    every: u64,
    seen: Arc<AtomicU64>,
    injected: Arc<AtomicU64>,
}

impl Intercept for Throttle {
    fn name(&self) -> &'static str {
        "inject-throttling"
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(self.every) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            let resp = ctx.response_mut();
            *resp.status_mut() = 400u16.try_into()?;
            resp.headers_mut().insert(
                "x-amzn-errortype",
                "ThrottlingException:http://internal.amazon.com/",
            );
            *resp.body_mut() =
                SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#);
        }
        Ok(())
    }
}

/// A fresh log group with `events` (id, ms) put into two streams; returns its name.
fn put_events(
    client: &aws_sdk_cloudwatchlogs::Client,
    rt: &tokio::runtime::Runtime,
    group: &str,
    events: &[(String, i64)],
) {
    rt.block_on(async {
        let _ = client.create_log_group().log_group_name(group).send().await;
        for (s, stream) in ["ce-a", "ce-b"].iter().enumerate() {
            let _ = client
                .create_log_stream()
                .log_group_name(group)
                .log_stream_name(*stream)
                .send()
                .await;
            let mut mine: Vec<&(String, i64)> = events
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == s)
                .map(|(_, e)| e)
                .collect();
            mine.sort_by_key(|(_, t)| *t);
            if mine.is_empty() {
                continue;
            }
            let batch: Vec<aws_sdk_cloudwatchlogs::types::InputLogEvent> = mine
                .iter()
                .map(|(id, t)| {
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(*t + 1_500)
                        .message(bus_event(id, *t))
                        .build()
                        .expect("event")
                })
                .collect();
            client
                .put_log_events()
                .log_group_name(group)
                .log_stream_name(*stream)
                .set_log_events(Some(batch))
                .send()
                .await
                .expect("put log events");
        }
    });
}

fn ids(lake: &Path) -> BTreeSet<String> {
    distinct_events(lake).into_keys().collect()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn two_days_ago() -> String {
    (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string()
}

fn run_cetrail(args: &[&str], crash: Option<&str>) -> (i32, Value) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("CETRAIL_CRASH_AT");
    if let Some(c) = crash {
        cmd.env("CETRAIL_CRASH_AT", c);
    }
    let out = cmd.output().expect("run cetrail");
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if v.is_null() && crash.is_none() {
        panic!("no summary: {}", stderr(&out));
    }
    (code, v)
}

#[test]
fn a_log_group_is_read_incrementally_and_its_export_equals_it() {
    let Some(endpoint) = moto_endpoint() else {
        eprintln!("SKIPPED log-group test: no CETRAIL_MOTO_ENDPOINT (run .ci/run)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = logs_client(&endpoint, None);
    let group = format!("{GROUP}-{}", std::process::id());
    let now = now_ms();
    // 40 events over the last 29 hours, the newest minutes ago (inside the overlap):
    // at any time of day they fall on two UTC days at least, so the run commits more
    // than one day slice holding events (over 20 hours, a run in the evening found them
    // all on one day, and the crash at the second commit never came).
    let events: Vec<(String, i64)> = (0..40)
        .map(|i| (format!("evt-{i:03}"), now - 60_000 - i * 45 * 60_000))
        .collect();
    put_events(&client, &rt, &group, &events);
    let want: BTreeSet<String> = events.iter().map(|(id, _)| id.clone()).collect();

    let dir = tempdir();
    let lake = dir.path().join("lake");
    let source = format!("logs:{group}");
    let from = two_days_ago();
    let args = [
        "ingest",
        source.as_str(),
        "--lake",
        lake.to_str().unwrap_or(""),
        "--endpoint-url",
        endpoint.as_str(),
        "--region",
        "us-east-1",
        "--from",
        from.as_str(),
        "--page-size",
        "7",
        "--rate",
        "50",
        "--commit-every",
        "1",
        "--json",
    ];
    // Killed at its second commit: the first slice is in, the rest is not.
    let (code, _) = run_cetrail(&args, Some("before-commit:2"));
    assert_ne!(code, 0, "the crash hook must kill the run");
    let (code, s) = run_cetrail(&args, None);
    assert_eq!(code, 0, "{s}");
    assert_eq!(ids(&lake), want, "resumed: every event once");
    assert_eq!(rows(&lake).len(), want.len(), "no duplicate rows");
    for r in distinct_events(&lake).values() {
        assert_eq!(r["source_kind"], "log-group");
        assert!(
            r["source_object"] == format!("logs:{group}/ce-a")
                || r["source_object"] == format!("logs:{group}/ce-b"),
            "{}",
            r["source_object"]
        );
    }
    // A rerun reads only the overlap again and adds nothing…
    let (_, again) = run_cetrail(&args, None);
    assert_eq!(n(&again, "kept_total"), 0, "{again}");
    assert!(
        n(&again, "records_read") >= 1,
        "the overlap is read again: {again}"
    );
    assert_eq!(rows(&lake).len(), want.len());
    // …but an event delivered late, inside the overlap, is caught.
    let late = vec![("evt-late".to_string(), now - 5 * 60_000)];
    put_events(&client, &rt, &group, &late);
    let (_, third) = run_cetrail(&args, None);
    assert_eq!(n(&third, "kept_total"), 1, "{third}");
    // Without --from, the whole group: from its creation less the 14 days CloudWatch
    // Logs accepts events from the past.
    let whole = dir.path().join("whole");
    let (code, s) = run_cetrail(
        &[
            "ingest",
            source.as_str(),
            "--lake",
            whole.to_str().unwrap_or(""),
            "--endpoint-url",
            endpoint.as_str(),
            "--region",
            "us-east-1",
            "--rate",
            "50",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{s}");
    assert!(
        n(&s, "objects_seen") >= 15,
        "day slices since creation - 14 days: {s}"
    );
    let mut with_late = want.clone();
    with_late.insert("evt-late".into());
    assert_eq!(ids(&whole), with_late);

    // The same group exported to S3 (create-export-task), read from the bucket.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("ce-export-{}", std::process::id());
    rt.block_on(async {
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket");
        client
            .create_export_task()
            .log_group_name(&group)
            .from(now - 2 * 86_400_000)
            .to(now + 60_000)
            .destination(&bucket)
            .destination_prefix("exportedlogs")
            .send()
            .await
            .expect("export task");
    });
    let export_lake = dir.path().join("export-lake");
    let url = format!("s3://{bucket}/exportedlogs");
    let (code, s) = run_cetrail(
        &[
            "ingest",
            &url,
            "--lake",
            export_lake.to_str().unwrap_or(""),
            "--endpoint-url",
            &endpoint,
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{s}");
    let mut all = want.clone();
    all.insert("evt-late".into());
    assert_eq!(ids(&export_lake), all);
    assert!(
        distinct_events(&export_lake)
            .values()
            .all(|r| r["source_kind"] == "log-export")
    );
}

#[test]
fn throttling_of_filter_log_events_loses_nothing() {
    let Some(endpoint) = moto_endpoint() else {
        eprintln!("SKIPPED log-group throttling test: no CETRAIL_MOTO_ENDPOINT (run .ci/run)");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let group = format!("{GROUP}-throttled-{}", std::process::id());
    let now = now_ms();
    let events: Vec<(String, i64)> = (0..30)
        .map(|i| (format!("thr-{i:03}"), now - 120_000 - i * 40 * 60_000))
        .collect();
    put_events(&logs_client(&endpoint, None), &rt, &group, &events);
    let throttle = Throttle {
        every: 2,
        seen: Arc::default(),
        injected: Arc::default(),
    };
    let injected = throttle.injected.clone();
    let client = logs_client(&endpoint, Some(throttle));
    let source = cetrail::source::log_group::LogGroupSource::with_client(
        client,
        tokio::runtime::Runtime::new().expect("runtime"),
        &group,
        cetrail::source::log_group::ApiOptions {
            from: Some(now - 2 * 86_400_000),
            to: None,
            overlap_ms: 15 * 60_000,
            rate: 100.0,
            page_size: Some(4),
        },
    );
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let s = cetrail::ingest::ingest(
        &source,
        &lake,
        &cetrail::config::Config::default(),
        &cetrail::ingest::IngestOptions::default(),
        &cetrail::ingest::Progress::default(),
    )
    .expect("ingest");
    assert!(
        injected.load(Ordering::SeqCst) >= 3,
        "throttling was injected"
    );
    assert_eq!(s.rejected, 0, "{:?}", s.rejections);
    let want: BTreeSet<String> = events.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids(&lake), want);
}

/// A `LookupEvents` stub on 127.0.0.1: the first request is throttled, then pages are
/// served by their `NextToken`; the last page hands back the token it was asked with
/// (a loop the reader must end). Returns the port and the tokens asked for.
fn lookup_stub(pages: Vec<Value>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let pages = Arc::new(pages);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (log, pages) = (log.clone(), pages.clone());
            std::thread::spawn(move || serve_lookup(conn, &log, &pages));
        }
    });
    (port, asked)
}

/// Answers the requests of one connection (see [`lookup_stub`]).
fn serve_lookup(conn: std::net::TcpStream, log: &Mutex<Vec<String>>, pages: &[Value]) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = conn;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut headers = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            headers += 1;
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        if headers == 0 {
            return;
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let token = req["NextToken"].as_str().unwrap_or("").to_string();
        let requests = match log.lock() {
            Ok(mut l) => {
                l.push(token.clone());
                l.len()
            }
            Err(_) => return,
        };
        let (status, answer) = if requests == 1 {
            (
                "400 Bad Request",
                json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
            )
        } else {
            let i = token
                .strip_prefix("page-")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            let mut page = pages.get(i).cloned().unwrap_or(json!({"Events": []}));
            // Every page names the next; the last names itself.
            page["NextToken"] = json!(format!(
                "page-{}",
                (i + 1).min(pages.len().saturating_sub(1))
            ));
            ("200 OK", page)
        };
        let text = answer.to_string();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: stub-{requests}\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(text.as_bytes()).is_err()
        {
            return;
        }
    }
}

#[test]
fn event_history_pages_are_read_through_throttling_and_a_token_loop() {
    // Pages in LookupEvents' documented shape: EventTime in epoch seconds, the record
    // as the JSON string CloudTrailEvent.
    let day = "2026-10-01";
    let t0 = chrono::NaiveDate::from_ymd_opt(2026, 10, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0);
    let mut pages = Vec::new();
    let mut want = BTreeSet::new();
    for p in 0..3 {
        let events: Vec<Value> = (0..4)
            .map(|i| {
                let id = format!("hist-{p}-{i}");
                want.insert(id.clone());
                let t = t0 + (p * 4 + i) * 60_000;
                let bus: Value = serde_json::from_str(&bus_event(&id, t)).unwrap_or_default();
                json!({
                    "EventId": id,
                    "EventName": "DescribeInstanceInformation",
                    "ReadOnly": "true",
                    "AccessKeyId": "ASIAEXAMPLEDEVOPS001",
                    "EventTime": t as f64 / 1000.0,
                    "EventSource": "ssm.amazonaws.com",
                    "Username": "bob.nguyen",
                    "Resources": [],
                    "CloudTrailEvent": bus["detail"].to_string(),
                })
            })
            .collect();
        pages.push(json!({ "Events": events }));
    }
    let (port, asked) = lookup_stub(pages);
    let dir = tempdir();
    let lake = dir.path().join("lake");
    let endpoint = format!("http://127.0.0.1:{port}");
    let args = [
        "ingest",
        "event-history:eu-west-1",
        "--lake",
        lake.to_str().unwrap_or(""),
        "--endpoint-url",
        endpoint.as_str(),
        "--from",
        day,
        "--to",
        "2026-10-02",
        "--rate",
        "50",
        "--json",
    ];
    let (code, s) = run_cetrail(&args, None);
    assert_eq!(code, 0, "{s}");
    assert_eq!(ids(&lake), want);
    for r in distinct_events(&lake).values() {
        assert_eq!(r["source_kind"], "event-history");
        assert_eq!(r["source_object"], "event-history:eu-west-1");
    }
    // The throttled first request was retried; the pages were asked by their tokens
    // and the loop (page-2 → page-2) ended the slice.
    let tokens = asked.lock().map(|t| t.clone()).unwrap_or_default();
    assert_eq!(tokens, vec!["", "", "page-1", "page-2"], "{tokens:?}");
    // A rerun of the settled day reads nothing.
    let (_, again) = run_cetrail(&args, None);
    assert_eq!(n(&again, "objects_seen"), 0, "{again}");
}
