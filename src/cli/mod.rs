//! Command-line interface: one file per subcommand (`Args` + `run`).

mod bench;
mod config;
mod generate;
mod ingest;
mod lake;
mod query;

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
        Command::Widgets(a) => query::list(a),
        Command::Dashboard(a) => query::dashboard(a),
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
