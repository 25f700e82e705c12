//! `cetrail sql` and `cetrail athena-ddl`: the widgets for other engines (Spark, Athena,
//! DuckDB), every placeholder filled, ready to paste or pipe.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use cetrail::query::dialect::{self, Engine};
use cetrail::query::widgets::{self, WIDGETS, Widget, default_range, template_params};

use super::query::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// Widgets to print (names or numbers; default all 17).
    widgets: Vec<String>,
    /// The engine: duckdb, spark or athena.
    #[arg(long, value_parser = parse_engine, default_value = "duckdb")]
    engine: Engine,
    /// Athena: the table `athena-ddl` created.
    #[arg(long, default_value = "cetrail_events")]
    table: String,
    /// Print the widgets only, not the view definition.
    #[arg(long)]
    no_view: bool,
    #[command(flatten)]
    lake: LakeArgs,
}

fn parse_engine(s: &str) -> Result<Engine, String> {
    s.parse()
}

#[derive(Debug, clap::Args)]
pub struct AthenaArgs {
    /// The lake on S3 (`s3://bucket/prefix`).
    #[arg(long)]
    lake: String,
    /// Table name (optionally `database.table`).
    #[arg(long, default_value = "cetrail_events")]
    table: String,
    /// First month of the partition projection (YYYY-MM).
    #[arg(long, default_value = "2013-11")]
    first_month: String,
    /// Also print the 17 widgets in Athena's dialect.
    #[arg(long)]
    widgets: bool,
    /// Start of the view's range (`in_range`), as in `cetrail query`.
    #[arg(long)]
    from: Option<String>,
    /// End of the view's range (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// IANA time zone for days, weeks and business hours.
    #[arg(long)]
    tz: Option<String>,
    /// Configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

fn chosen(names: &[String]) -> Result<Vec<&'static Widget>> {
    if names.is_empty() {
        return Ok(WIDGETS.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            widgets::find(n)
                .ok_or_else(|| anyhow::anyhow!("unknown widget `{n}` (see `cetrail widgets`)"))
        })
        .collect()
}

fn print_script(
    engine: Engine,
    params: &std::collections::BTreeMap<&'static str, String>,
    chosen: &[&Widget],
    with_view: bool,
) -> Result<()> {
    let (view, queries) = dialect::script(engine, params, chosen);
    let mut out = std::io::stdout().lock();
    if with_view {
        writeln!(
            out,
            "-- the views: events, session_facts ({})",
            engine.name()
        )?;
        for s in view {
            writeln!(out, "{};\n", s.trim())?;
        }
    }
    for (name, q) in queries {
        writeln!(out, "-- widget: {name}\n{};\n", q.trim())?;
    }
    Ok(())
}

pub fn sql(args: SqlArgs) -> Result<ExitCode> {
    if args.lake.account.is_some() || args.lake.role.is_some() {
        bail!(
            "--account and --role filter cetrail's own view only; add a WHERE to the printed SQL instead"
        );
    }
    let chosen = chosen(&args.widgets)?;
    let (config, mut view, _) = args.lake.resolve()?;
    // A local lake gives the default range and the lake's first event; elsewhere the
    // range is open unless --from/--to say otherwise.
    let bounds = if args.lake.lake.join("events").is_dir() {
        default_range(&args.lake.lake, &mut view)?
    } else {
        None
    };
    let mut params = template_params(&config, &view, bounds.map(|b| b.0));
    params.insert(
        "lake",
        args.lake
            .lake
            .display()
            .to_string()
            .trim_end_matches('/')
            .to_string(),
    );
    params.insert("table", args.table.clone());
    print_script(args.engine, &params, &chosen, !args.no_view)?;
    Ok(ExitCode::SUCCESS)
}

pub fn athena_ddl(args: AthenaArgs) -> Result<ExitCode> {
    if !args.lake.starts_with("s3://") {
        bail!(
            "--lake {}: Athena reads lakes on S3 (s3://bucket/prefix)",
            args.lake
        );
    }
    if chrono::NaiveDate::parse_from_str(&format!("{}-01", args.first_month), "%Y-%m-%d").is_err() {
        bail!("--first-month {}: expected YYYY-MM", args.first_month);
    }
    let lake = LakeArgs {
        lake: args.lake.clone().into(),
        from: args.from.clone(),
        to: args.to.clone(),
        account: None,
        role: None,
        config: args.config.clone(),
        tz: args.tz.clone(),
        local_time: false,
        s3: Default::default(),
        engineer: None,
    };
    let (config, view, _) = lake.resolve()?;
    let mut params = template_params(&config, &view, None);
    params.insert("table", args.table.clone());
    params.insert("lake", args.lake.trim_end_matches('/').to_string());
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "-- cetrail lake on Athena: the table, then the views (events, session_facts)."
        )?;
        writeln!(
            out,
            "{};\n",
            dialect::athena_table_ddl(&args.lake, &args.table, &args.first_month)
        )?;
    }
    let chosen: Vec<&Widget> = if args.widgets {
        WIDGETS.iter().collect()
    } else {
        Vec::new()
    };
    print_script(Engine::Athena, &params, &chosen, true)?;
    Ok(ExitCode::SUCCESS)
}
