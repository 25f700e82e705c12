//! Command-line interface: one file per subcommand (`Args` + `run`).

mod audit;
mod bench;
mod config;
mod detect;
mod generate;
mod ingest;
mod lake;
mod query;
mod report;
mod serve;
mod sql;
mod timeline;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};

/// Offline CloudTrail analytics for vendor cross-account access (CE roles).
#[derive(Debug, Parser)]
#[command(name = "cetrail", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print or check the configuration (SPEC §8).
    Config(config::Args),
    /// Write a synthetic CloudTrail archive in the S3 layout.
    Generate(generate::Args),
    /// Read CloudTrail log files into the Parquet lake.
    Ingest(ingest::Args),
    /// Inspect the lake.
    Lake(lake::Args),
    /// Run one widget, or your own SQL over the `events` view.
    Query(query::QueryArgs),
    /// List the 17 widgets.
    Widgets(query::WidgetsArgs),
    /// All 17 widgets at once, alarm states first.
    Dashboard(query::DashboardArgs),
    /// Conformance audit of the access model, one row per control.
    Audit(audit::Args),
    /// The forensic story of one session, engineer, source IP or resource.
    Timeline(timeline::Args),
    /// Sigma detections over the lake: our own rules and yours (SPEC §12).
    Detect(detect::Args),
    /// The monthly compliance report (one self-contained HTML file, or Markdown).
    Report(report::Args),
    /// The dashboard in a browser, live over the lake (127.0.0.1, with an access token).
    Serve(serve::Args),
    /// Print the widgets' SQL for DuckDB, Spark or Athena (view included).
    Sql(sql::SqlArgs),
    /// Print Athena's CREATE EXTERNAL TABLE (month projection) and events view.
    AthenaDdl(sql::AthenaArgs),
    /// Check the trail's integrity offline from its digest files.
    Verify(verify::Args),
    /// What the lake holds per account × region × day, and the gaps.
    Coverage(verify::CoverageArgs),
    /// Decompress an archive and discard the output: the gunzip bound for benchmarks.
    #[command(hide = true)]
    BenchGunzip(bench::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Config(a) => config::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Ingest(a) => ingest::run(a),
        Command::Lake(a) => lake::run(a),
        Command::Query(a) => query::query(a),
        Command::Sql(a) => sql::sql(a),
        Command::AthenaDdl(a) => sql::athena_ddl(a),
        Command::Widgets(a) => query::list(a),
        Command::Dashboard(a) => query::dashboard(a),
        Command::Audit(a) => audit::run(a),
        Command::Timeline(a) => timeline::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Report(a) => report::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Coverage(a) => verify::coverage(a),
        Command::BenchGunzip(a) => bench::run(a),
    }
}

/// Parses a `--from/--to` day: `YYYY-MM-DD`, or an RFC 3339 instant (its UTC day).
pub(crate) fn parse_day(s: &str) -> Result<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d);
    }
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => Ok(t.with_timezone(&chrono::Utc).date_naive()),
        Err(_) => bail!("`{s}` is neither a date (YYYY-MM-DD) nor an RFC 3339 instant"),
    }
}

/// How to reach S3, for a trail or a lake on `s3://`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct S3Args {
    /// S3: the AWS profile to use (default: the standard credential chain).
    #[arg(long)]
    profile: Option<String>,
    /// S3: the region of the bucket.
    #[arg(long)]
    region: Option<String>,
    /// S3: an S3-compatible endpoint (path-style addressing).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// S3: send unsigned requests (public buckets).
    #[arg(long)]
    no_sign_request: bool,
    /// S3: attempts per request, with exponential backoff and jitter.
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
    /// S3: the most requests in flight. The number in flight adapts below it: it grows
    /// while more requests do not queue, and shrinks when S3 throttles (SlowDown).
    #[arg(long, default_value_t = cetrail::source::s3::DEFAULT_CONCURRENCY)]
    concurrency: usize,
}

impl S3Args {
    /// How to reach the AWS APIs of `logs:` and `event-history:` sources.
    pub(crate) fn api_client(&self) -> cetrail::source::log_group::ClientOptions {
        cetrail::source::log_group::ClientOptions {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: self.max_attempts,
        }
    }

    fn options(&self) -> cetrail::source::s3::S3Options {
        cetrail::source::s3::S3Options {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            no_sign_request: self.no_sign_request,
            max_attempts: self.max_attempts,
            concurrency: self.concurrency,
        }
    }

    /// The lake at `location` for writing: a folder, or `s3://bucket/prefix` with a
    /// local spool under the cache folder.
    pub(crate) fn lake(&self, location: &Path) -> Result<cetrail::lake::LakeLocation> {
        use cetrail::lake::LakeLocation;
        let text = location.to_string_lossy();
        let Some((bucket, prefix)) = cetrail::source::s3::parse_url(&text) else {
            return Ok(LakeLocation::Local(location.to_path_buf()));
        };
        let (client, rt) = cetrail::source::s3::connect_client(&self.options())?;
        let remote = cetrail::lake::remote::RemoteLake::with_runtime(client, &bucket, &prefix, rt);
        Ok(LakeLocation::S3 {
            remote,
            spool: cache_dir().join("lakes").join(&bucket).join(&prefix),
        })
    }

    /// A local folder holding the lake at `location` for reading: the folder itself,
    /// or for `s3://…` a mirror in the cache folder brought up to date first.
    pub(crate) fn readable_lake(&self, location: &Path) -> Result<PathBuf> {
        self.readable_lake_with(location, false, true)
    }

    /// [`S3Args::readable_lake`]; on S3, `fresh`: every lake file is downloaded again
    /// (a deep check must see the objects, not an older local copy); `verify`: a file
    /// that is not what was committed stops the mirror (read commands; `lake check`
    /// and `lake repair` judge the copies themselves).
    pub(crate) fn readable_lake_with(
        &self,
        location: &Path,
        fresh: bool,
        verify: bool,
    ) -> Result<PathBuf> {
        let local = match self.lake(location)? {
            cetrail::lake::LakeLocation::Local(p) => p,
            cetrail::lake::LakeLocation::S3 { remote, spool } => {
                cetrail::lake::remote::mirror_with(&remote, &spool, fresh, verify).with_context(
                    || format!("mirroring {} to {}", remote.url(), spool.display()),
                )?;
                spool
            }
        };
        if !local.join("events").is_dir() {
            anyhow::bail!(
                "{} is not a cetrail lake (no events/ folder); run `cetrail ingest` first",
                location.display()
            );
        }
        Ok(local)
    }

    /// The source at `location` (`s3://bucket/prefix` or a folder); `digests` also lists
    /// `CloudTrail-Digest/` on S3 (a folder lists everything anyway).
    pub(crate) fn open(
        &self,
        location: &str,
        prune: cetrail::source::Prune,
        digests: bool,
    ) -> Result<Box<dyn cetrail::source::Source>> {
        use cetrail::source::local::LocalSource;
        use cetrail::source::s3::S3Source;
        if location.starts_with("s3://") {
            let mut s = S3Source::connect(location, &self.options(), prune)?;
            if digests {
                s = s.with_digests();
            }
            Ok(Box::new(s))
        } else {
            Ok(Box::new(LocalSource::new(std::path::PathBuf::from(
                location,
            ))?))
        }
    }
}

/// cetrail's cache folder: `CETRAIL_CACHE_DIR`, else `$XDG_CACHE_HOME/cetrail`, else
/// `~/.cache/cetrail` (mirrors and spools of lakes on S3).
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CETRAIL_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("cetrail");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache")
        .join("cetrail")
}

/// Splits comma-separated list arguments.
pub(crate) fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) fn load_config(path: Option<&std::path::Path>) -> Result<cetrail::config::Config> {
    cetrail::config::Config::load(path).context("loading the configuration")
}

/// Prints a command's `--timings` line on stderr: the total since `started`, a count
/// (`what`: its name and value) and the steps' wall times, as one JSON object.
fn print_timings(
    started: std::time::Instant,
    stages: &cetrail::query::view::Stages,
    what: (&str, usize),
) {
    let steps: serde_json::Map<String, serde_json::Value> = stages
        .laps
        .iter()
        .map(|(name, ms)| (name.to_string(), serde_json::json!(ms)))
        .collect();
    let mut line = serde_json::Map::new();
    line.insert(
        "total_ms".into(),
        serde_json::json!(started.elapsed().as_secs_f64() * 1e3),
    );
    line.insert(what.0.into(), serde_json::json!(what.1));
    line.insert("stages_ms".into(), serde_json::Value::Object(steps));
    eprintln!("{}", serde_json::Value::Object(line));
}
