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
    /// Check the lake's files against its ledger: every committed file present, of
    /// its committed size (`--deep`: its checksum, every file re-read), and no file in
    /// `events/` that no segment commits. Exit status 0 intact, 1 with one row per
    /// problem.
    Check {
        /// The lake: a folder or `s3://bucket/prefix` (its local mirror is checked).
        #[arg(long, value_name = "DIR|S3")]
        lake: PathBuf,
        /// Re-read every file and compare the xxh3 of its bytes with the ledger's.
        #[arg(long)]
        deep: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = cetrail::render::Format::Table)]
        format: cetrail::render::Format,
        #[command(flatten)]
        s3: super::S3Args,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        LakeCommand::Check {
            lake,
            deep,
            format,
            s3,
        } => check(&s3.readable_lake(&lake)?, &lake, deep, format),
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

/// `lake check`: one row per problem, a summary line; exit status 1 when damaged.
fn check(
    root: &std::path::Path,
    name: &std::path::Path,
    deep: bool,
    format: cetrail::render::Format,
) -> Result<ExitCode> {
    use cetrail::render::{Cell, Format, Table, TimeStyle};
    let started = std::time::Instant::now();
    let report = cetrail::lake::check::check(root, deep)
        .with_context(|| format!("checking the lake {}", name.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let table = Table {
            columns: ["file", "segment", "problem", "detail"]
                .map(String::from)
                .to_vec(),
            rows: report
                .problems
                .iter()
                .map(|p| {
                    vec![
                        Cell::Text(p.file.clone()),
                        p.segment.clone().map_or(Cell::Null, Cell::Text),
                        Cell::Text(p.problem.into()),
                        Cell::Text(p.detail.clone()),
                    ]
                })
                .collect(),
        };
        if !report.problems.is_empty() {
            cetrail::render::write(&mut out, &table, format, TimeStyle { local: None })?;
        }
        if matches!(format, Format::Table | Format::Md) {
            writeln!(
                out,
                "{}: {} committed file(s), {:.1} MB{}, {} problem(s) in {:.3} s",
                if report.problems.is_empty() {
                    "intact"
                } else {
                    "DAMAGED"
                },
                report.files,
                report.bytes as f64 / 1e6,
                if deep {
                    format!(
                        ", {} checksum(s) verified ({:.1} GB/s)",
                        report.hashed,
                        report.bytes as f64 / 1e9 / seconds.max(1e-9)
                    )
                } else {
                    String::new()
                },
                report.problems.len(),
                seconds
            )?;
            if !report.problems.is_empty() {
                writeln!(
                    out,
                    "to recover the events of a damaged file, ingest its sources again (the ledger segment named lists the objects it committed)"
                )?;
            }
        }
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
