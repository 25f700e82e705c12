//! `cetrail generate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cetrail::generate::{GenerateOptions, generate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write the trail archive into (created if needed).
    #[arg(long, value_name = "DIR", required_unless_present_any = ["log_group_export", "eventbridge", "event_history"])]
    out: Option<PathBuf>,
    /// Also write the CE events as a CloudWatch Logs export of the log group the CE
    /// stack feeds (`exportedlogs/<task-id>/<stream>/NNNNNN.gz`, EventBridge events a
    /// line).
    #[arg(long, value_name = "DIR")]
    log_group_export: Option<PathBuf>,
    /// Also write the CE events as EventBridge events in JSON Lines, gzip, as Firehose
    /// delivers them (`YYYY/MM/DD/…gz`).
    #[arg(long, value_name = "DIR")]
    eventbridge: Option<PathBuf>,
    /// Also write the CE management events as `aws cloudtrail lookup-events` prints
    /// them (Event History holds no data events); gzip when FILE ends in `.gz`.
    #[arg(long, value_name = "FILE")]
    event_history: Option<PathBuf>,
    /// Seed: the same seed and parameters give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of days.
    #[arg(long, default_value_t = 49)]
    days: u32,
    /// Number of client accounts (the first with a plain trail, the others through an
    /// organization trail).
    #[arg(long, default_value_t = 2)]
    accounts: u32,
    /// Regions per account.
    #[arg(long, default_value_t = 2)]
    regions: u32,
    /// Records per account × region × day.
    #[arg(long, default_value_t = 150)]
    events_per_day: u32,
    /// Share of records that are CE events (0–1).
    #[arg(long, default_value_t = 0.3)]
    ce_share: f64,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-09-07")]
    start: String,
    /// Minutes of events per log file (CloudTrail delivers about every 5).
    #[arg(long, default_value_t = 5)]
    file_minutes: u32,
    /// Hours per digest file (CloudTrail: 1).
    #[arg(long, default_value_t = 1)]
    digest_hours: u32,
    /// Do not write CloudTrail-Digest files.
    #[arg(long)]
    no_digests: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let options = GenerateOptions {
        out: args.out.clone().unwrap_or_default(),
        trail: args.out.is_some(),
        shapes: cetrail::generate::shapes::ShapeOutputs {
            log_group_export: args.log_group_export.clone(),
            eventbridge: args.eventbridge.clone(),
            event_history: args.event_history.clone(),
        },
        seed: args.seed,
        days: args.days,
        accounts: args.accounts,
        regions: args.regions,
        events_per_day: args.events_per_day,
        ce_share: args.ce_share,
        start: super::parse_day(&args.start).context("--start")?,
        digests: !args.no_digests,
        file_minutes: args.file_minutes,
        digest_hours: args.digest_hours,
    };
    let s = generate(&options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        if let Some(shapes) = &s.shapes {
            println!(
                "{} CE events: {} export files, {} EventBridge files, {} Event History events",
                shapes.ce_events,
                shapes.export_files,
                shapes.eventbridge_files,
                shapes.event_history_events
            );
        }
        let Some(out) = &args.out else {
            return Ok(ExitCode::SUCCESS);
        };
        println!(
            "wrote {} log files ({} records, {} CE events, {} duplicated), {} digest and {} insight files to {}",
            s.log_files,
            s.records,
            s.ce_events,
            s.duplicates,
            s.digest_files,
            s.insight_files,
            out.display()
        );
        println!(
            "  {} → {} (UTC days), accounts {}, regions {}; {:.1} MB of JSON, {:.1} MB gzip",
            s.first_day,
            s.last_day,
            s.accounts.join(", "),
            s.regions.join(", "),
            s.bytes_uncompressed as f64 / 1e6,
            s.bytes_compressed as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}
