//! `cetrail bench-gunzip` (hidden): the decompression bound of an archive, for the
//! benchmark scripts. It decompresses every `.gz` object of a folder with the same
//! libdeflate path as `ingest`, on the same number of threads, and discards the output.
//! `--stage` adds the steps of ingest's CE path after each decompression, one at a
//! time, so that the benchmark can show what each costs without the rest of the
//! pipeline (listing, ledger, writer).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use cetrail::config::Config;
use cetrail::record::filter::Prefilter;
use cetrail::record::gunzip::{DEFAULT_MAX_DECOMPRESSED, Gunzip};
use cetrail::record::{DEFAULT_MAX_RECORD_BYTES, ParseOptions, parse_log, split};
use cetrail::source::local::LocalSource;
use cetrail::source::{KeyClass, Source, classify_key};
use rayon::prelude::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder holding the archive.
    source: PathBuf,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// How far along ingest's CE path to go after decompressing each object.
    #[arg(long, value_enum, default_value_t = Stage::Gunzip)]
    stage: Stage,
}

/// The steps of ingest's CE path, each including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Stage {
    /// Decompression only: the bound.
    Gunzip,
    /// + the pre-filter's search for the first CE name.
    Prefilter,
    /// + counting every record by its `"eventID"` key.
    Count,
    /// + what ingest does to a decompressed file: search, structural scan, parsing the
    ///   matching records, counting the rest, rows copied out.
    Parse,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let source = LocalSource::new(&args.source)?;
    let objects: Vec<_> = source
        .list()?
        .into_iter()
        .filter(|o| !matches!(classify_key(&o.key), KeyClass::NotLog(_)))
        .collect();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("thread pool")?;
    let config = Config::default();
    let prefilter = Prefilter::new(&config);
    let parse_options = ParseOptions {
        config: &config,
        prefilter: &prefilter,
        all_events: false,
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
    };
    let stage = args.stage;
    let records = AtomicU64::new(0);
    let out_bytes = AtomicU64::new(0);
    let in_bytes = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let start = Instant::now();
    pool.install(|| {
        objects.par_iter().for_each_init(
            || (Gunzip::new(), Vec::new()),
            |(gz, buf), o| {
                let Some(g) = gz.as_mut() else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                match source.read(o) {
                    Ok(bytes) => {
                        in_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        if g.decompress(&bytes, buf, DEFAULT_MAX_DECOMPRESSED).is_ok() {
                            out_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                            let n = match stage {
                                Stage::Gunzip => 0,
                                Stage::Prefilter => u64::from(prefilter.find(buf, 0).is_some()),
                                Stage::Count => {
                                    split::count_event_ids(buf)
                                        + u64::from(prefilter.find(buf, 0).is_some())
                                }
                                Stage::Parse => match parse_log(buf, &parse_options) {
                                    Ok(p) => {
                                        let rows: Vec<_> =
                                            p.rows.into_iter().map(|r| r.into_owned()).collect();
                                        p.records + rows.len() as u64
                                    }
                                    Err(_) => 0,
                                },
                            };
                            records.fetch_add(n, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
        );
    });
    let secs = start.elapsed().as_secs_f64();
    let out = out_bytes.load(Ordering::Relaxed);
    println!(
        "{{\"files\":{},\"failed\":{},\"bytes_read\":{},\"bytes_decompressed\":{out},\"seconds\":{secs:.4},\"mb_per_second\":{:.1},\"threads\":{threads},\"stage\":\"{stage:?}\",\"checksum\":{}}}",
        objects.len(),
        failed.load(Ordering::Relaxed),
        in_bytes.load(Ordering::Relaxed),
        out as f64 / 1e6 / secs.max(1e-9),
        records.load(Ordering::Relaxed)
    );
    Ok(ExitCode::SUCCESS)
}
