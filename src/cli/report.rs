//! `cetrail report`: the monthly compliance report (HTML or Markdown).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cetrail::query::report::{build, month_bounds};
use cetrail::render::html::report_html;
use cetrail::render::report_markdown;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lake: a folder or `s3://bucket/prefix`.
    #[arg(long, value_name = "DIR|S3")]
    lake: PathBuf,
    /// The month, YYYY-MM (local to the configured zone).
    #[arg(long)]
    month: String,
    /// Only this client account.
    #[arg(long)]
    account: Option<String>,
    /// Where to write the report (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// html (one self-contained file) or md.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    format: ReportFormat,
    /// Configuration file (default ./cetrail.toml, else built-in defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// IANA time zone (overrides the configuration).
    #[arg(long)]
    tz: Option<String>,
    /// Print the wall time of the report's steps on stderr (JSON).
    #[arg(long)]
    timings: bool,
    #[command(flatten)]
    s3: super::S3Args,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut config = super::load_config(args.config.as_deref())?;
    if let Some(tz) = &args.tz {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            bail!("--tz: `{tz}` is not an IANA time zone");
        }
        config.time.zone = tz.clone();
    }
    let Some((first, next)) = month_bounds(&args.month) else {
        bail!("--month: `{}` is not YYYY-MM", args.month);
    };
    let lake = args.s3.readable_lake(&args.lake)?;
    let mut report = build(
        &lake,
        &config,
        &args.month,
        first,
        next,
        args.account.clone(),
    )
    .with_context(|| format!("building the report from {}", args.lake.display()))?;
    let text = match args.format {
        ReportFormat::Html => report_html(&report),
        ReportFormat::Md => report_markdown(&report),
    };
    match &args.out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("cetrail report: {} written", p.display());
        }
        None => print!("{text}"),
    }
    if args.timings {
        report.stages.lap("render and write");
        super::print_timings(started, &report.stages, ("events", report.events));
    }
    Ok(ExitCode::SUCCESS)
}
