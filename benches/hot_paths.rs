//! Criterion micro-benchmarks of ingest's hot paths, on log files made by `generate`
//! (seeded): gunzip, the whole-file pre-filter, the structural record scan, record
//! parsing (the CE path and every record), Arrow column building, Parquet encoding.
//!
//!   cargo bench --bench hot_paths
//!
//! Throughput is reported in bytes of uncompressed JSON (gunzip, scans, parsing) or in
//! rows (columns, Parquet).

use std::path::{Path, PathBuf};

use cetrail::config::Config;
use cetrail::generate::{GenerateOptions, generate};
use cetrail::lake::{schema, writer};
use cetrail::record::filter::Prefilter;
use cetrail::record::gunzip::{DEFAULT_MAX_DECOMPRESSED, Gunzip};
use cetrail::record::{DEFAULT_MAX_RECORD_BYTES, EventRow, ParseOptions, parse_log, split};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The `.json.gz` log files under `dir`, in memory.
fn log_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz")
                && let Ok(bytes) = std::fs::read(&p)
            {
                out.push(bytes);
            }
        }
    }
    out
}

/// One day of 2 accounts × 2 regions at `events_per_day` and `ce_share`, gzipped and
/// plain.
fn corpus(name: &str, events_per_day: u32, ce_share: f64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir: PathBuf = std::env::temp_dir().join(format!("cetrail-bench-{name}"));
    if !dir.join("AWSLogs").is_dir() {
        let options = GenerateOptions {
            out: dir.clone(),
            seed: 7,
            days: 1,
            events_per_day,
            ce_share,
            digests: false,
            ..GenerateOptions::default()
        };
        if let Err(e) = generate(&options) {
            eprintln!("generate: {e}");
        }
    }
    let gz = log_files(&dir);
    let mut g = Gunzip::new().expect("decompressor");
    let plain = gz
        .iter()
        .map(|f| {
            let mut out = Vec::new();
            g.decompress(f, &mut out, DEFAULT_MAX_DECOMPRESSED)
                .expect("generated files decompress");
            out
        })
        .collect();
    (gz, plain)
}

fn total(files: &[Vec<u8>]) -> u64 {
    files.iter().map(|f| f.len() as u64).sum()
}

fn benches(c: &mut Criterion) {
    let config = Config::default();
    let prefilter = Prefilter::new(&config);
    let (gz, plain) = corpus("1pct", 15_000, 0.01);
    let bytes = total(&plain);

    let mut g = c.benchmark_group("ingest-1pct-ce");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function("gunzip", |b| {
        let mut d = Gunzip::new().expect("decompressor");
        let mut out = Vec::new();
        b.iter(|| {
            for f in &gz {
                d.decompress(f, &mut out, DEFAULT_MAX_DECOMPRESSED)
                    .expect("decompress");
            }
        })
    });
    g.bench_function("prefilter (whole file)", |b| {
        b.iter(|| plain.iter().filter(|f| prefilter.may_match(f)).count())
    });
    g.bench_function("structural scan (record ranges)", |b| {
        b.iter(|| {
            plain
                .iter()
                .map(|f| split::record_ranges(f).map_or(0, |r| r.len()))
                .sum::<usize>()
        })
    });
    let options = ParseOptions {
        config: &config,
        prefilter: &prefilter,
        all_events: false,
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
    };
    g.bench_function("parse_log (CE path)", |b| {
        b.iter(|| {
            plain
                .iter()
                .map(|f| parse_log(f, &options).map_or(0, |p| p.rows.len()))
                .sum::<usize>()
        })
    });
    g.finish();

    // Every record parsed and kept: the cost per record of parsing and of the writer.
    let (_, all) = corpus("all", 2_000, 0.3);
    let all_options = ParseOptions {
        all_events: true,
        ..options
    };
    let mut g = c.benchmark_group("every-record");
    g.throughput(Throughput::Bytes(total(&all)));
    g.sample_size(10);
    g.bench_function("parse_log (all events)", |b| {
        b.iter(|| {
            all.iter()
                .map(|f| parse_log(f, &all_options).map_or(0, |p| p.rows.len()))
                .sum::<usize>()
        })
    });
    g.finish();

    let parsed: Vec<_> = all
        .iter()
        .filter_map(|f| parse_log(f, &all_options).ok())
        .collect();
    let rows: u64 = parsed.iter().map(|p| p.rows.len() as u64).sum();
    let mut g = c.benchmark_group("writer");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);
    // As ingest does it: workers copy their rows out of the file buffer, the writer
    // builds one batch per chunk of 256 objects.
    g.bench_function("owned rows + column building (per 256 objects)", |b| {
        b.iter(|| {
            parsed
                .chunks(256)
                .map(|chunk| {
                    let rows: Vec<EventRow<'static>> = chunk
                        .iter()
                        .flat_map(|p| p.rows.iter().cloned().map(EventRow::into_owned))
                        .collect();
                    schema::build_batch(&rows, |_| {
                        ("bench/key.json.gz", cetrail::source::SourceKind::Trail)
                    })
                    .map_or(0, |b| b.num_rows())
                })
                .sum::<usize>()
        })
    });
    let batches: Vec<_> = parsed
        .iter()
        .filter_map(|p| {
            schema::build_batch(&p.rows, |_| {
                ("bench/key.json.gz", cetrail::source::SourceKind::Trail)
            })
            .ok()
        })
        .collect();
    let sorted = writer::sort_batches(&batches).expect("sort");
    let out = std::env::temp_dir().join("cetrail-bench-encode.parquet");
    g.bench_function("sort + Parquet encode (zstd)", |b| {
        b.iter(|| {
            let s = writer::sort_batches(&batches).expect("sort");
            writer::write_parquet(&out, &s).expect("write");
        })
    });
    g.bench_function("Parquet encode (zstd, sorted)", |b| {
        b.iter(|| writer::write_parquet(&out, &sorted).expect("write"))
    });
    g.finish();
    let _ = std::fs::remove_file(out);
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
