//! `cetrail ingest`: progress on a terminal, a summary at the end, exit status 3 when
//! anything was rejected.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use cetrail::ingest::{IngestOptions, Progress, ReadAhead, Summary, ingest_at};
use cetrail::source::Prune;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the events are: a folder or `s3://bucket/prefix` (trail files under
    /// `AWSLogs/`, log-group exports, EventBridge deliveries, Event History files: told
    /// by content), `logs:<log-group>` (the CloudWatch Logs API) or
    /// `event-history:<region>[,<region>…]` (CloudTrail's LookupEvents).
    source: String,
    /// The lake: a folder or `s3://bucket/prefix` (created if needed).
    #[arg(long, value_name = "DIR|S3")]
    lake: PathBuf,
    /// Only log files that may hold events from this day on (YYYY-MM-DD); for `logs:`
    /// and `event-history:`, events from 00:00 UTC of this day (default: the log
    /// group's creation, Event History's 90 days).
    #[arg(long)]
    from: Option<String>,
    /// Only log files that may hold events before this day (exclusive; one day of slack
    /// for late delivery); for `logs:` and `event-history:`, events before 00:00 UTC of
    /// this day (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Only these accounts (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    accounts: Vec<String>,
    /// Only these regions (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// Keep every event, not only CE events (kind `other` for the rest).
    #[arg(long)]
    all_events: bool,
    /// Take only part K of N of the archive (split by account × region × day), so N
    /// machines can ingest one archive into one lake with no overlap and no gap.
    #[arg(long, value_name = "K/N", value_parser = cetrail::source::Shard::parse)]
    shard: Option<cetrail::source::Shard>,
    /// Parsing threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// How local files are read: opened ahead of the parsers with the kernel's
    /// read-ahead started (`always`: a cold disk), by the parsers themselves (`never`:
    /// a page-cached archive), or chosen as the ingest goes from whether files were in
    /// the page cache (`auto`).
    #[arg(long, value_enum, default_value_t = ReadAhead::Auto)]
    read_ahead: ReadAhead,
    /// Configuration file (default ./cetrail.toml, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// No progress and no summary (errors only).
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Commit after this many objects (tests use small values to get many commits).
    #[arg(long, hide = true)]
    commit_every: Option<usize>,
    /// Largest decompressed object accepted, in bytes.
    #[arg(long, hide = true)]
    max_decompressed: Option<u64>,
    /// `logs:` and `event-history:`: the source's delivery delay, in minutes. Events
    /// younger than this when read are read again by the next run (and dropped there
    /// when already kept).
    #[arg(long, default_value_t = 15)]
    overlap_minutes: i64,
    /// `logs:` and `event-history:`: events per page requested (the API's default or
    /// maximum otherwise).
    #[arg(long, hide = true)]
    page_size: Option<i32>,
    /// `logs:` and `event-history:`: requests a second (per region for Event History;
    /// default: the API's documented rate, 5 for FilterLogEvents, 2 for LookupEvents).
    #[arg(long)]
    rate: Option<f64>,
    #[command(flatten)]
    s3: super::S3Args,
}

/// The source named by `args.source`.
fn open_source(args: &Args, prune: &Prune) -> Result<Box<dyn cetrail::source::Source>> {
    use cetrail::source::event_history::{self, EventHistorySource};
    use cetrail::source::log_group::{ApiOptions, LogGroupSource};
    let day_ms = |d: Option<chrono::NaiveDate>| {
        d.and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
    };
    let api = |rate: f64| ApiOptions {
        from: day_ms(prune.from),
        to: day_ms(prune.to),
        overlap_ms: args.overlap_minutes.max(0) * 60_000,
        rate: args.rate.unwrap_or(rate),
        page_size: args.page_size,
    };
    if let Some(group) = args.source.strip_prefix("logs:") {
        anyhow::ensure!(
            !group.is_empty(),
            "logs: name the log group (logs:continuous.engineering-access)"
        );
        let s = LogGroupSource::connect(group, &args.s3.api_client(), api(5.0))?;
        return Ok(Box::new(s));
    }
    if let Some(regions) = args.source.strip_prefix("event-history:") {
        let regions = super::split_list(&[regions.to_string()]);
        let s =
            EventHistorySource::connect(&regions, &args.s3.api_client(), api(event_history::RATE))?;
        return Ok(Box::new(s));
    }
    args.s3.open(&args.source, prune.clone(), false)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = super::load_config(args.config.as_deref())?;
    let mut options = IngestOptions {
        all_events: args.all_events,
        shard: args.shard,
        prune: Prune {
            accounts: super::split_list(&args.accounts),
            regions: super::split_list(&args.regions),
            from: args
                .from
                .as_deref()
                .map(super::parse_day)
                .transpose()
                .context("--from")?,
            to: args
                .to
                .as_deref()
                .map(super::parse_day)
                .transpose()
                .context("--to")?,
        },
        read_ahead: args.read_ahead,
        ..IngestOptions::default()
    };
    if let Some(n) = args.commit_every {
        options.flush_objects = n.max(1);
    }
    if let Some(n) = args.max_decompressed {
        options.max_decompressed = n;
    }
    if let Some(t) = args.threads {
        options.threads = t.max(1);
    }
    let source = open_source(&args, &options.prune)?;
    let location = args.s3.lake(&args.lake)?;
    let progress = Progress::default();
    let show = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let done = AtomicBool::new(false);
    let summary = std::thread::scope(|scope| {
        if show {
            scope.spawn(|| draw_progress(&progress, &done));
        }
        let r = ingest_at(source.as_ref(), location, &config, &options, &progress);
        done.store(true, Ordering::Relaxed);
        r
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !args.quiet {
        print_summary(&summary)?;
    } else {
        for r in &summary.rejections {
            eprintln!("cetrail: rejected {}: {}", r.key, r.reason);
        }
    }
    Ok(if summary.has_rejections() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn draw_progress(p: &Progress, done: &AtomicBool) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    while !done.load(Ordering::Relaxed) {
        let total = p.objects_total.load(Ordering::Relaxed);
        if total == 0 {
            bar.set_message("listing objects…");
            bar.tick();
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        bar.set_length(total);
        bar.set_position(p.objects_done.load(Ordering::Relaxed));
        let secs = start.elapsed().as_secs_f64().max(1e-3);
        let mb = p.bytes_decompressed.load(Ordering::Relaxed) as f64 / 1e6;
        bar.set_message(format!(
            "{mb:.0} MB · {:.0} MB/s · {} CE events",
            mb / secs,
            p.events_kept.load(Ordering::Relaxed)
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

fn print_summary(s: &Summary) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "cetrail ingest: {} → {}", s.source, s.lake)?;
    writeln!(
        out,
        "  objects  {} seen · {} ingested · {} skipped (not logs) · {} already in ledger · {} pruned · {} rejected",
        s.objects_seen, s.ingested, s.skipped_not_a_log, s.already_in_ledger, s.pruned, s.rejected
    )?;
    if s.other_shards > 0 {
        writeln!(
            out,
            "  shard    {} objects left to the other shards",
            s.other_shards
        )?;
    }
    writeln!(
        out,
        "  records  {} read · {} rejected",
        s.records_read, s.bad_records
    )?;
    if s.skipped_records > 0 {
        writeln!(
            out,
            "  skipped  {} records by rule (Insights records, EventBridge events of other detail types than \"AWS API Call via CloudTrail\")",
            s.skipped_records
        )?;
    }
    let kinds: Vec<String> = s.kept.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(
        out,
        "  kept     {} CE events ({}) · {} duplicates dropped",
        s.kept_total,
        kinds.join(" · "),
        s.duplicates_dropped
    )?;
    writeln!(
        out,
        "  speed    {:.1} MB of JSON ({:.1} MB read) in {:.2} s · {:.0} MB/s · {:.0} records/s",
        s.bytes_decompressed as f64 / 1e6,
        s.bytes_read as f64 / 1e6,
        s.seconds,
        s.mb_per_second,
        s.events_per_second
    )?;
    if let Some(r) = &s.requests {
        writeln!(
            out,
            "  requests {} GET · {} LIST · {} throttled (retried) · up to {} in flight ({} allowed at the end, {} cuts)",
            r.gets, r.lists, r.throttled, r.peak_in_flight, r.final_limit, r.limit_cuts
        )?;
    }
    if s.recovered_files + s.discarded_staged_files > 0 {
        writeln!(
            out,
            "  recovery {} committed files published, {} uncommitted staged files discarded",
            s.recovered_files, s.discarded_staged_files
        )?;
    }
    for r in &s.rejections {
        writeln!(out, "  rejected {}: {}", r.key, r.reason)?;
    }
    Ok(())
}
