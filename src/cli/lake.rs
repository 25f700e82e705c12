//! `cetrail lake …`: inspect the lake.

use std::io::Write;
use std::process::ExitCode;

use std::path::PathBuf;

use anyhow::{Context, Result};
use cetrail::lake::schema::{COLUMNS, SCHEMA_VERSION};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LakeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LakeCommand {
    /// Print the lake schema, one line per column.
    Schema,
    /// Merge each month's files into few large ones (sorted by time, one row per
    /// event id), crash-safe: run it after ingest, e.g. when every shard is done.
    Compact {
        /// The lake: a folder or `s3://bucket/prefix`.
        #[arg(long, value_name = "DIR|S3")]
        lake: PathBuf,
        /// Only this month (YYYY-MM); default every month with more than one file.
        #[arg(long)]
        month: Option<String>,
        /// Target size of the merged files, in MB (Athena prefers 64 MB and more).
        #[arg(long, default_value_t = 128)]
        target_mb: u64,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        s3: super::S3Args,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        LakeCommand::Compact {
            lake,
            month,
            target_mb,
            json,
            s3,
        } => {
            if let Some(m) = &month
                && chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").is_err()
            {
                anyhow::bail!("--month {m}: expected YYYY-MM");
            }
            let done = cetrail::lake::compact::compact_at(
                s3.lake(&lake)?,
                month.as_deref(),
                target_mb.saturating_mul(1 << 20),
            )
            .with_context(|| format!("compacting {}", lake.display()))?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&done)?)?;
            } else if done.is_empty() {
                writeln!(out, "nothing to compact: every month is one file")?;
            } else {
                for m in &done {
                    writeln!(
                        out,
                        "month {}: {} files → {} · {} rows → {} ({} duplicates removed)",
                        m.month,
                        m.files_before,
                        m.files_after,
                        m.rows_before,
                        m.rows_after,
                        m.duplicates_removed
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LakeCommand::Schema => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "# cetrail lake schema, version {SCHEMA_VERSION}: events/month=YYYY-MM/*.parquet"
            )?;
            let width = COLUMNS.iter().map(|c| c.name.len()).max().unwrap_or(0);
            let twidth = COLUMNS
                .iter()
                .map(|c| c.kind.type_name().len())
                .max()
                .unwrap_or(0)
                .min(18);
            for c in COLUMNS {
                writeln!(
                    out,
                    "{:width$}  {:twidth$}  {}",
                    c.name,
                    c.kind.type_name(),
                    c.doc
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
