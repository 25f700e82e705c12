//! The view's row order and its duplicate check, on the plain columns its scan reads
//! first (`event_time`, `event_id`).
//!
//! The order is (`event_time`, `event_id`), nulls last in both, as `ORDER BY … ASC` on
//! DuckDB, ties kept in lake order. The lake writer sorts every file that way, so a
//! scan of the lake is a few long sorted runs (one per file, less where files follow
//! each other in time): they are merged, each thread merging the rows between two
//! pivot keys, with nothing held but the output. A scan of many short runs (a lake
//! some other writer made) is sorted instead.
//!
//! The duplicate check hashes every id, spreads the hashes over buckets by their top
//! bits and sorts each bucket (small enough to stay in cache); two equal neighbours are
//! a possible duplicate (a false alarm, ~1e-7 for two million ids, only costs the
//! exact path).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use polars::prelude::*;
use polars_arrow::array::{PrimitiveArray, Utf8ViewArray};
use rayon::prelude::*;

/// A row's sort key: time (a null as `i64::MAX`), time is null, id is null, id.
type Key<'a> = (i64, bool, bool, &'a str);

/// Runs shorter than this on average are sorted rather than merged.
const MIN_AVERAGE_RUN: usize = 16;

/// The rows of one flat time column and one flat id column, by key.
struct Rows<'a> {
    times: &'a PrimitiveArray<i64>,
    ids: &'a Utf8ViewArray,
}

impl<'a> Rows<'a> {
    fn key(&self, i: usize) -> Key<'a> {
        let t = self.times.get(i);
        let id = self.ids.get(i);
        (
            t.unwrap_or(i64::MAX),
            t.is_none(),
            id.is_none(),
            id.unwrap_or(""),
        )
    }

    /// The first row of `start..end` (sorted) whose key is not below `pivot`.
    fn lower_bound(&self, start: usize, end: usize, pivot: Key) -> usize {
        let (mut lo, mut hi) = (start, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid) < pivot {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The row order that sorts `times` and, among equal times, `ids` (nulls last in
/// both); `None` when the rows are in that order already (a compacted lake).
pub fn event_order(times: &Int64Chunked, ids: &StringChunked) -> Option<Vec<IdxSize>> {
    let times = times.rechunk();
    let ids = ids.rechunk();
    let (Some(times), Some(ids)) = (times.downcast_iter().next(), ids.downcast_iter().next())
    else {
        return None;
    };
    let n = times.len().min(ids.len());
    let rows = Rows { times, ids };
    let mut starts = vec![0usize];
    for i in 1..n {
        if rows.key(i - 1) > rows.key(i) {
            starts.push(i);
        }
    }
    if starts.len() == 1 {
        return None;
    }
    if starts.len() > n / MIN_AVERAGE_RUN {
        return Some(sorted_order(&rows, n));
    }
    let ends = starts.iter().skip(1).copied().chain([n]);
    let runs: Vec<(usize, usize)> = starts.iter().copied().zip(ends).collect();
    Some(merged_order(&rows, &runs, n))
}

/// The merge of sorted `runs` (row ranges covering `0..n`), split between the threads
/// at pivot keys sampled from the rows.
fn merged_order(rows: &Rows, runs: &[(usize, usize)], n: usize) -> Vec<IdxSize> {
    let parts = if n < 1 << 16 {
        1
    } else {
        rayon::current_num_threads().clamp(1, 64)
    };
    let mut sample: Vec<Key> = (0..n)
        .step_by((n / (parts * 256)).max(1))
        .map(|i| rows.key(i))
        .collect();
    sample.sort_unstable();
    let pivots: Vec<Key> = (1..parts)
        .filter_map(|p| sample.get(sample.len() * p / parts).copied())
        .collect();
    // bounds[p][r]: where part p starts in run r.
    let mut bounds: Vec<Vec<usize>> = Vec::with_capacity(pivots.len() + 2);
    bounds.push(runs.iter().map(|r| r.0).collect());
    for pivot in &pivots {
        bounds.push(
            runs.iter()
                .map(|&(s, e)| rows.lower_bound(s, e, *pivot))
                .collect(),
        );
    }
    bounds.push(runs.iter().map(|r| r.1).collect());
    let pieces: Vec<Vec<(usize, usize)>> = bounds
        .windows(2)
        .map(|w| w[0].iter().copied().zip(w[1].iter().copied()).collect())
        .collect();
    let mut order: Vec<IdxSize> = vec![0; n];
    let mut rest = order.as_mut_slice();
    let mut outs = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        let len: usize = piece.iter().map(|(s, e)| e - s).sum();
        let taken = std::mem::take(&mut rest);
        let at = len.min(taken.len());
        let (out, tail) = taken.split_at_mut(at);
        outs.push(out);
        rest = tail;
    }
    pieces
        .par_iter()
        .zip(outs.into_par_iter())
        .for_each(|(piece, out)| merge(rows, piece, out));
    order
}

/// Merges the sorted row ranges `runs` into `out`, ties in row order.
fn merge(rows: &Rows, runs: &[(usize, usize)], out: &mut [IdxSize]) {
    let mut heap: BinaryHeap<Reverse<(Key, usize, usize)>> = runs
        .iter()
        .filter(|(s, e)| s < e)
        .map(|&(s, e)| Reverse((rows.key(s), s, e)))
        .collect();
    let mut slots = out.iter_mut();
    while let Some(mut top) = heap.peek_mut() {
        let Reverse((_, i, end)) = *top;
        if let Some(slot) = slots.next() {
            *slot = i as IdxSize;
        }
        if i + 1 < end {
            *top = Reverse((rows.key(i + 1), i + 1, end));
        } else {
            PeekMut::pop(top);
        }
    }
}

/// The order by sorting: keys carry the first 8 bytes of their id (big-endian,
/// zero-padded; a null id as all ones), so equal times are mostly ordered without
/// reading the ids again; equal prefixes fall back to the whole key.
fn sorted_order(rows: &Rows, n: usize) -> Vec<IdxSize> {
    let prefix = |s: Option<&str>| {
        s.map_or(u64::MAX, |s| {
            let mut b = [0u8; 8];
            let k = s.len().min(8);
            b[..k].copy_from_slice(&s.as_bytes()[..k]);
            u64::from_be_bytes(b)
        })
    };
    let mut keys: Vec<(i64, u64, IdxSize)> = (0..n)
        .map(|i| {
            (
                rows.times.get(i).unwrap_or(i64::MAX),
                prefix(rows.ids.get(i)),
                i as IdxSize,
            )
        })
        .collect();
    keys.par_sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.cmp(&b.1))
            .then_with(|| rows.key(a.2 as usize).cmp(&rows.key(b.2 as usize)))
    });
    keys.into_iter().map(|(_, _, i)| i).collect()
}

/// Whether any (non-null) id may occur twice (see the module's notes).
pub fn has_duplicate_ids(ids: &StringChunked) -> bool {
    use std::hash::BuildHasher;
    const BUCKET_BITS: u32 = 11;
    const CHUNK: usize = 1 << 16;
    let state = foldhash::fast::FixedState::default();
    let ids = ids.rechunk();
    let Some(ids) = ids.downcast_iter().next() else {
        return false;
    };
    let chunks: Vec<Vec<u64>> = (0..ids.len())
        .step_by(CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            (start..(start + CHUNK).min(ids.len()))
                .filter_map(|i| ids.get(i))
                .map(|id| state.hash_one(id))
                .collect()
        })
        .collect();
    let bucket = |h: u64| (h >> (64 - BUCKET_BITS)) as usize;
    let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
    for h in chunks.iter().flatten() {
        starts[bucket(*h) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let total = starts.last().copied().unwrap_or(0);
    let mut spread = vec![0u64; total];
    let mut next = starts.clone();
    for h in chunks.iter().flatten() {
        if let Some(at) = next.get_mut(bucket(*h)) {
            if let Some(slot) = spread.get_mut(*at) {
                *slot = *h;
            }
            *at += 1;
        }
    }
    drop(chunks);
    let mut buckets: Vec<&mut [u64]> = Vec::with_capacity(starts.len());
    let mut rest = spread.as_mut_slice();
    for w in starts.windows(2) {
        let taken = std::mem::take(&mut rest);
        let at = (w[1] - w[0]).min(taken.len());
        let (b, tail) = taken.split_at_mut(at);
        buckets.push(b);
        rest = tail;
    }
    buckets.into_par_iter().any(|b| {
        b.sort_unstable();
        b.windows(2).any(|w| w[0] == w[1])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift).
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// `runs` runs of rows, each sorted by its own (time, id), with few distinct
    /// times (many ties), some shared ids and some null times and ids.
    fn columns(g: &mut Gen, runs: usize, per_run: usize) -> (Int64Chunked, StringChunked) {
        let mut times: Vec<Option<i64>> = Vec::new();
        let mut ids: Vec<Option<String>> = Vec::new();
        for _ in 0..runs {
            let mut run: Vec<(Option<i64>, Option<String>)> = (0..per_run)
                .map(|_| {
                    let t = (!g.next().is_multiple_of(50)).then(|| (g.next() % 40) as i64);
                    let id =
                        (!g.next().is_multiple_of(30)).then(|| format!("id-{:03}", g.next() % 500));
                    (t, id)
                })
                .collect();
            run.sort_by(|a, b| {
                let key = |r: &(Option<i64>, Option<String>)| {
                    (
                        r.0.unwrap_or(i64::MAX),
                        r.0.is_none(),
                        r.1.is_none(),
                        r.1.clone().unwrap_or_default(),
                    )
                };
                key(a).cmp(&key(b))
            });
            for (t, id) in run {
                times.push(t);
                ids.push(id);
            }
        }
        (
            Int64Chunked::from_iter_options("t".into(), times.into_iter()),
            StringChunked::from_iter_options("id".into(), ids.into_iter()),
        )
    }

    /// The order a stable sort of the row numbers by the whole key gives.
    fn naive(times: &Int64Chunked, ids: &StringChunked) -> Vec<IdxSize> {
        let t: Vec<Option<i64>> = times.iter().collect();
        let s: Vec<Option<&str>> = ids.iter().collect();
        let mut order: Vec<IdxSize> = (0..t.len() as IdxSize).collect();
        order.sort_by_key(|&i| {
            let i = i as usize;
            (
                t[i].unwrap_or(i64::MAX),
                t[i].is_none(),
                s[i].is_none(),
                s[i].unwrap_or(""),
            )
        });
        order
    }

    #[test]
    fn merged_and_sorted_orders_equal_a_stable_sort() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        // Few long runs (merged, split between threads), many short ones (sorted).
        for (runs, per_run) in [(7, 20_000), (3, 30_000), (5_000, 4), (2, 3)] {
            let (times, ids) = columns(&mut g, runs, per_run);
            let want = naive(&times, &ids);
            let got =
                event_order(&times, &ids).unwrap_or_else(|| (0..want.len() as IdxSize).collect());
            assert_eq!(got.len(), want.len(), "{runs} runs");
            assert_eq!(got, want, "{runs} runs of {per_run}");
        }
    }

    #[test]
    fn rows_in_order_need_no_order() {
        let mut g = Gen(7);
        let (times, ids) = columns(&mut g, 1, 50_000);
        assert_eq!(event_order(&times, &ids), None);
        // One row out of place is found.
        let mut t: Vec<Option<i64>> = times.iter().collect();
        t.push(Some(-1));
        let mut s: Vec<Option<&str>> = ids.iter().collect();
        s.push(Some("last"));
        let times = Int64Chunked::from_iter_options("t".into(), t.into_iter());
        let ids = StringChunked::from_iter_options("id".into(), s.into_iter());
        let order = event_order(&times, &ids).expect("an order");
        assert_eq!(order.first(), Some(&50_000));
        assert_eq!(order, naive(&times, &ids));
    }

    #[test]
    fn duplicate_ids_are_found_and_nulls_are_not_ids() {
        let ids =
            |v: Vec<Option<String>>| StringChunked::from_iter_options("id".into(), v.into_iter());
        let unique: Vec<Option<String>> = (0..200_000).map(|i| Some(format!("{i:036}"))).collect();
        assert!(!has_duplicate_ids(&ids(unique.clone())));
        let mut twice = unique.clone();
        twice.push(Some(format!("{:036}", 123_456)));
        assert!(has_duplicate_ids(&ids(twice)));
        let mut nulls = unique;
        nulls.extend([None, None]);
        assert!(!has_duplicate_ids(&ids(nulls)));
        assert!(!has_duplicate_ids(&ids(Vec::new())));
    }
}
