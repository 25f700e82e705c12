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
    /// Repair a damaged lake: the source objects behind each damaged file (its ledger
    /// segment lists them) are read again from SOURCE and committed as new files, the
    /// damaged files retired in the same commit (moved to `_cetrail/quarantine/`).
    /// Crash-safe; rerun it after a crash. Exit status 0 when the lake is then intact.
    Repair {
        /// The lake: a folder or `s3://bucket/prefix`.
        #[arg(long, value_name = "DIR|S3")]
        lake: PathBuf,
        /// Where the lake's events came from (a folder or `s3://…`, as ingested).
        #[arg(long, value_name = "DIR|S3")]
        source: String,
        /// Find damaged files by their checksums too (every file re-read).
        #[arg(long)]
        deep: bool,
        /// Configuration file (default ./cetrail.toml, else built-in defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
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
        } => check(
            &s3.readable_lake_with(&lake, deep, false)?,
            &lake,
            deep,
            format,
        ),
        LakeCommand::Repair {
            lake,
            source,
            deep,
            config,
            s3,
        } => repair(&lake, &source, deep, config.as_deref(), &s3),
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

/// `lake repair`: plan from the check, read the sources again in one commit, check.
fn repair(
    lake: &std::path::Path,
    source: &str,
    deep: bool,
    config: Option<&std::path::Path>,
    s3: &super::S3Args,
) -> Result<ExitCode> {
    use cetrail::ingest::{IngestOptions, Progress, ingest_at};
    let config = super::load_config(config)?;
    let root = s3.readable_lake_with(lake, deep, false)?;
    let (_, plan) = cetrail::lake::repair::plan(&root, deep)
        .with_context(|| format!("checking the lake {}", lake.display()))?;
    let mut out = std::io::stdout().lock();
    let Some(plan) = plan else {
        writeln!(out, "nothing to repair: every committed file is intact")?;
        return Ok(ExitCode::SUCCESS);
    };
    writeln!(
        out,
        "repairing {} damaged file(s) ({}) from {} source object(s) of {source}",
        plan.retire.len(),
        plan.retire.join(", "),
        plan.keys.len()
    )?;
    let retired = plan.retire.len();
    let wanted = plan.keys.len() as u64;
    let options = IngestOptions {
        repair: Some(plan),
        ..IngestOptions::default()
    };
    let src = s3.open(source, cetrail::source::Prune::default(), false)?;
    let summary = ingest_at(
        src.as_ref(),
        s3.lake(lake)?,
        &config,
        &options,
        &Progress::default(),
    )
    .with_context(|| format!("repairing {} from {source}", lake.display()))?;
    writeln!(
        out,
        "  read again {} of {wanted} object(s) · {} rejected · {} events committed · {} file(s) retired to _cetrail/quarantine/",
        summary.ingested,
        summary.rejected,
        summary.kept_total,
        if summary.commits > 0 { retired } else { 0 }
    )?;
    for r in &summary.rejections {
        writeln!(out, "  rejected {}: {}", r.key, r.reason)?;
    }
    let root = s3.readable_lake_with(lake, deep, false)?;
    let after = cetrail::lake::check::check(&root, deep)?;
    let damaged = after
        .problems
        .iter()
        .filter(|p| p.segment.is_some())
        .count();
    if damaged == 0 && summary.ingested == wanted {
        writeln!(out, "intact: {} committed file(s)", after.files)?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "not repaired whole: {damaged} damaged file(s) left, {} of {wanted} source object(s) read (`cetrail lake check` lists them)",
            summary.ingested
        )?;
        Ok(ExitCode::from(1))
    }
}
