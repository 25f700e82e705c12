//! `cetrail verify` (integrity of the trail) and `cetrail coverage` (what the lake holds).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cetrail::lake::coverage::coverage as lake_coverage;
use cetrail::render::{self, Cell, Format, Table, TimeStyle};
use cetrail::source::Prune;
use cetrail::verify::keys::PublicKeys;
use cetrail::verify::{Severity, VerifyOptions, VerifyReport, verify};
use chrono::{DateTime, Utc};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder or `s3://bucket/prefix` holding the trail and its `CloudTrail-Digest/` files.
    source: String,
    /// Digests whose period ends after this instant (a date = 00:00 UTC, or RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Digests whose period starts before this instant (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Only these accounts (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    accounts: Vec<String>,
    /// Only these regions (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    regions: Vec<String>,
    /// The JSON of `aws cloudtrail list-public-keys`: check the RSA signatures.
    #[arg(long, value_name = "FILE")]
    public_keys: Option<PathBuf>,
    /// Digest signatures as a JSON object of digest key → hex signature (default: a
    /// `digest-signatures.json` in the source, then S3 object metadata).
    #[arg(long, value_name = "FILE")]
    signatures: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Output format: table, or json (the whole report).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    s3: super::S3Args,
}

fn instant(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    let d = super::parse_day(s)?;
    Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut options = VerifyOptions {
        accounts: super::split_list(&args.accounts),
        regions: super::split_list(&args.regions),
        from: args
            .from
            .as_deref()
            .map(instant)
            .transpose()
            .context("--from")?,
        to: args
            .to
            .as_deref()
            .map(instant)
            .transpose()
            .context("--to")?,
        threads: args.threads.unwrap_or(0),
        ..VerifyOptions::default()
    };
    if let Some(p) = &args.public_keys {
        options.keys = PublicKeys::load(p)?;
    }
    if let Some(p) = &args.signatures {
        let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let map: std::collections::HashMap<String, String> = serde_json::from_slice(&text)
            .with_context(|| {
                format!(
                    "{}: not a JSON object of digest key → signature",
                    p.display()
                )
            })?;
        options.signatures = map
            .into_iter()
            .map(|(k, v)| (cetrail::verify::digest::tail(&k).to_string(), v))
            .collect();
    }
    let prune = Prune {
        accounts: options.accounts.clone(),
        regions: options.regions.clone(),
        ..Prune::default()
    };
    let source = args.s3.open(&args.source, prune, true)?;
    let report = verify(source.as_ref(), &options)
        .with_context(|| format!("verifying {}", source.describe()))?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json | Format::Jsonl => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        format => print_report(&mut out, &report, format)?,
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

fn print_report(out: &mut dyn Write, r: &VerifyReport, format: Format) -> Result<()> {
    let style = TimeStyle { local: None };
    let colour = format == Format::Table && std::io::stdout().is_terminal();
    let verdict = match (r.passed(), colour) {
        (true, true) => "\x1b[32mPASS\x1b[0m".to_string(),
        (false, true) => "\x1b[31mFAIL\x1b[0m".to_string(),
        (true, false) => "PASS".to_string(),
        (false, false) => "FAIL".to_string(),
    };
    writeln!(out, "cetrail verify {}: {verdict}", r.source)?;
    writeln!(
        out,
        "  {} digest(s) in {} chain(s) · signatures {} · {} of {} listed log file(s) intact · {} failure(s) · {} warning(s)",
        r.digests,
        r.chains.len(),
        if r.signatures_checked {
            format!("{} verified", r.signatures_verified)
        } else {
            "not checked (no --public-keys)".to_string()
        },
        r.log_files_ok,
        r.log_files_listed,
        r.failures,
        r.warnings
    )?;
    let chains = Table {
        columns: [
            "account",
            "region",
            "trail",
            "digests",
            "first_start",
            "last_end",
            "signatures",
            "logs_listed",
            "logs_ok",
            "failures",
        ]
        .map(String::from)
        .to_vec(),
        rows: r
            .chains
            .iter()
            .map(|c| {
                vec![
                    text(&c.account),
                    text(&c.region),
                    text(&c.trail),
                    Cell::Int((c.digests + c.backfill_digests) as i64),
                    c.first_start.as_deref().map_or(Cell::Null, text),
                    c.last_end.as_deref().map_or(Cell::Null, text),
                    Cell::Int(c.signatures_verified as i64),
                    Cell::Int(c.log_files_listed as i64),
                    Cell::Int(c.log_files_ok as i64),
                    Cell::Int(c.failures as i64),
                ]
            })
            .collect(),
    };
    writeln!(out)?;
    render::write(out, &chains, format, style)?;
    if !r.findings.is_empty() {
        let findings = Table {
            columns: [
                "severity", "problem", "account", "region", "object", "detail",
            ]
            .map(String::from)
            .to_vec(),
            rows: r
                .findings
                .iter()
                .map(|f| {
                    vec![
                        text(match f.severity {
                            Severity::Fail => "fail",
                            Severity::Warn => "warn",
                        }),
                        text(f.problem.as_str()),
                        text(&f.account),
                        text(&f.region),
                        text(&f.object),
                        text(&f.detail),
                    ]
                })
                .collect(),
        };
        writeln!(out)?;
        render::write(out, &findings, format, style)?;
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// The lake: a folder or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|S3")]
    lake: PathBuf,
    /// First delivery day (YYYY-MM-DD, UTC).
    #[arg(long)]
    from: Option<String>,
    /// Day after the last delivery day (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    s3: super::S3Args,
}

pub fn coverage(args: CoverageArgs) -> Result<ExitCode> {
    let from = args
        .from
        .as_deref()
        .map(super::parse_day)
        .transpose()
        .context("--from")?;
    let to = args
        .to
        .as_deref()
        .map(super::parse_day)
        .transpose()
        .context("--to")?;
    let lake = args.s3.readable_lake(&args.lake)?;
    let c = lake_coverage(&lake, from, to)
        .with_context(|| format!("reading the ledger of {}", args.lake.display()))?;
    let mut out = std::io::stdout().lock();
    if matches!(args.format, Format::Json) {
        serde_json::to_writer_pretty(&mut out, &c)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |s: &Option<String>| s.as_deref().map_or(Cell::Null, text);
    let days = Table {
        columns: [
            "account",
            "region",
            "day",
            "log_files",
            "events_read",
            "events_kept",
            "bad_records",
            "rejected",
            "gap_hours",
        ]
        .map(String::from)
        .to_vec(),
        rows: c
            .days
            .iter()
            .map(|d| {
                vec![
                    opt(&d.account),
                    opt(&d.region),
                    opt(&d.day),
                    Cell::Int(d.log_files as i64),
                    Cell::Int(d.events_read as i64),
                    Cell::Int(d.events_kept as i64),
                    Cell::Int(d.bad_records as i64),
                    Cell::Int(d.rejected as i64),
                    Cell::Int(d.gap_hours as i64),
                ]
            })
            .collect(),
    };
    let style = TimeStyle { local: None };
    render::write(&mut out, &days, args.format, style)?;
    if args.format == Format::Csv || args.format == Format::Jsonl {
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "\n{} log file(s), {} CE event(s), {} gap(s), {} rejected object(s), {} object(s) skipped (not logs)",
        c.log_files,
        c.events_kept,
        c.gaps.len(),
        c.rejected.len(),
        c.skipped_not_a_log
    )?;
    if !c.gaps.is_empty() {
        let gaps = Table {
            columns: ["account", "region", "start", "end", "hours"]
                .map(String::from)
                .to_vec(),
            rows: c
                .gaps
                .iter()
                .map(|g| {
                    vec![
                        text(&g.account),
                        text(&g.region),
                        text(&g.start),
                        text(&g.end),
                        Cell::Int(g.hours as i64),
                    ]
                })
                .collect(),
        };
        writeln!(out)?;
        render::write(&mut out, &gaps, args.format, style)?;
    }
    if !c.sources.is_empty() {
        let sources = Table {
            columns: [
                "account",
                "region",
                "day",
                "source_kind",
                "events",
                "read_only_events",
            ]
            .map(String::from)
            .to_vec(),
            rows: c
                .sources
                .iter()
                .map(|d| {
                    vec![
                        opt(&d.account),
                        opt(&d.region),
                        text(&d.day),
                        text(&d.source_kind),
                        Cell::Int(d.events as i64),
                        Cell::Int(d.read_only_events as i64),
                    ]
                })
                .collect(),
        };
        writeln!(out, "\nsources of the lake's events (per event day, UTC):")?;
        render::write(&mut out, &sources, args.format, style)?;
    }
    for w in &c.warnings {
        writeln!(out, "warning: {w}")?;
    }
    for r in &c.rejected {
        writeln!(out, "rejected {}: {}", r.key, r.reason)?;
    }
    Ok(ExitCode::SUCCESS)
}
