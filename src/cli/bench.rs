//! `cetrail bench-gunzip` (hidden): the decompression bound of an archive, for the
//! benchmark scripts. It decompresses every `.gz` object of a folder with the same
//! libdeflate path as `ingest`, on the same number of threads, and discards the output.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use cetrail::record::gunzip::{DEFAULT_MAX_DECOMPRESSED, Gunzip};
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
        "{{\"files\":{},\"failed\":{},\"bytes_read\":{},\"bytes_decompressed\":{out},\"seconds\":{secs:.4},\"mb_per_second\":{:.1},\"threads\":{threads}}}",
        objects.len(),
        failed.load(Ordering::Relaxed),
        in_bytes.load(Ordering::Relaxed),
        out as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
