//! The view's row order and its duplicate check, on the plain columns its scan reads
//! first (`event_time`, `event_id`).
//!
//! The order is (`event_time`, `event_id`), nulls last in both, as `ORDER BY … ASC` on
//! DuckDB, ties kept in lake order. It is a counting sort on time: the rows are spread
//! over about `n / 4` buckets of equal time span, in row order (so ties stay in lake
//! order), and each bucket (a few rows, mostly of distinct times) is then sorted by the
//! whole key. Nothing is compared but within a bucket, and nothing is held but the
//! bucket counts and the output. A lake whose times cluster in one bucket (a single
//! outlier stretching the span) only makes that bucket's sort larger.
//!
//! The duplicate check hashes every id; each chunk of rows groups its hashes by their
//! top bits (a counting sort that stays in cache), and each group, gathered from every
//! chunk, is sorted: two equal neighbours are a possible duplicate (a false alarm,
//! ~1e-7 for two million ids, only costs the exact path).

use polars::prelude::*;
use polars_arrow::array::{Array, PrimitiveArray, Utf8ViewArray};
use rayon::prelude::*;

/// A row's sort key: time (a null as `i64::MAX`), time is null, id is null, id.
type Key<'a> = (i64, bool, bool, &'a str);

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
    if (1..n).all(|i| rows.key(i - 1) <= rows.key(i)) {
        return None;
    }
    Some(bucketed_order(&rows, n))
}

/// The order by a counting sort on time (see the module's notes).
fn bucketed_order(rows: &Rows, n: usize) -> Vec<IdxSize> {
    let times = rows.times;
    let valid = |i: usize| times.validity().is_none_or(|v| v.get_bit(i));
    let values = times.values().as_slice();
    let (lo, hi) = (0..n)
        .filter(|&i| valid(i))
        .filter_map(|i| values.get(i).copied())
        .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    // Buckets of 2^shift microseconds, about n / 4 of them for the whole span, then
    // one for the null times (last, as in the key).
    let span = if lo <= hi { hi.abs_diff(lo) } else { 0 };
    let wanted = (n / 4).max(1) as u64;
    let mut shift = 0u32;
    while shift < 64 && (span >> shift) >= wanted {
        shift += 1;
    }
    let null_bucket = usize::try_from(span.checked_shr(shift).unwrap_or(0))
        .unwrap_or(0)
        .saturating_add(1);
    let bucket = |i: usize| -> usize {
        match values.get(i) {
            Some(&t) if valid(i) => {
                usize::try_from(t.abs_diff(lo).checked_shr(shift).unwrap_or(0)).unwrap_or(0)
            }
            _ => null_bucket,
        }
    };
    // ends[b + 1] counts bucket b; after the prefix sum ends[b] is where b starts; the
    // spread moves ends[b] to b's end, which is where b + 1 starts.
    let mut ends = vec![0u32; null_bucket + 2];
    for i in 0..n {
        if let Some(c) = ends.get_mut(bucket(i) + 1) {
            *c += 1;
        }
    }
    for b in 1..ends.len() {
        ends[b] += ends[b - 1];
    }
    let mut order: Vec<IdxSize> = vec![0; n];
    for i in 0..n {
        if let Some(at) = ends.get_mut(bucket(i)) {
            if let Some(slot) = order.get_mut(*at as usize) {
                *slot = i as IdxSize;
            }
            *at += 1;
        }
    }
    // Each bucket sorted by the whole key (stable: equal keys stay in row order),
    // the buckets shared between the threads in pieces of about equal rows.
    let ends = &ends[..=null_bucket];
    let start = |b: usize| if b == 0 { 0 } else { ends[b - 1] as usize };
    let per = n.div_ceil((rayon::current_num_threads() * 4).max(1)).max(1);
    let mut cuts = vec![0usize];
    let mut next_cut = per;
    for (b, &end) in ends.iter().enumerate() {
        if end as usize >= next_cut {
            cuts.push(b + 1);
            next_cut = end as usize + per;
        }
    }
    if cuts.last() != Some(&ends.len()) {
        cuts.push(ends.len());
    }
    let mut pieces = Vec::with_capacity(cuts.len());
    let mut rest = order.as_mut_slice();
    for w in cuts.windows(2) {
        let len = (start(w[1]) - start(w[0])).min(rest.len());
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(len);
        pieces.push((piece, w[0], w[1]));
        rest = tail;
    }
    // A bucket is sorted on a short key read once per row: the time (as an unsigned
    // number, nulls last) and the id's first four bytes (big-endian, zero-padded,
    // from the id's view). Equal short keys fall back to the whole key.
    let ids_valid = |i: usize| Array::validity(rows.ids).is_none_or(|v| v.get_bit(i));
    let short_key = |i: usize| -> (u64, u32) {
        let time = match values.get(i) {
            Some(&t) if valid(i) => (t as u64) ^ (1 << 63),
            _ => u64::MAX,
        };
        let id = match rows.ids.views().get(i) {
            Some(v) if ids_valid(i) => u32::from_be_bytes(v.prefix.to_le_bytes()),
            _ => u32::MAX,
        };
        (time, id)
    };
    pieces.into_par_iter().for_each(|(piece, first, last)| {
        let base = start(first);
        let mut keyed: Vec<(u64, u32, IdxSize)> = Vec::new();
        for (b, &end) in ends.iter().enumerate().take(last).skip(first) {
            let (s, e) = (start(b) - base, end as usize - base);
            let Some(bucket) = piece.get_mut(s..e) else {
                continue;
            };
            if bucket.len() < 2 {
                continue;
            }
            keyed.clear();
            keyed.extend(bucket.iter().map(|&i| {
                let (t, id) = short_key(i as usize);
                (t, id, i)
            }));
            keyed.sort_by(|a, b| {
                (a.0, a.1)
                    .cmp(&(b.0, b.1))
                    .then_with(|| rows.key(a.2 as usize).cmp(&rows.key(b.2 as usize)))
            });
            for (slot, k) in bucket.iter_mut().zip(&keyed) {
                *slot = k.2;
            }
        }
    });
    order
}

/// Whether any (non-null) id may occur twice (see the module's notes).
pub fn has_duplicate_ids(ids: &StringChunked) -> bool {
    use std::hash::BuildHasher;
    const BUCKET_BITS: u32 = 10;
    const BUCKETS: usize = 1 << BUCKET_BITS;
    const CHUNK: usize = 1 << 16;
    let state = foldhash::fast::FixedState::default();
    let ids = ids.rechunk();
    let Some(ids) = ids.downcast_iter().next() else {
        return false;
    };
    let bucket = |h: u64| (h >> (64 - BUCKET_BITS)) as usize;
    // Each chunk of rows: its ids' hashes grouped by bucket (a counting sort within
    // the chunk, which stays in cache), and where each bucket ends.
    let chunks: Vec<(Vec<u64>, Vec<u32>)> = (0..ids.len())
        .step_by(CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let hashes: Vec<u64> = (start..(start + CHUNK).min(ids.len()))
                .filter_map(|i| ids.get(i))
                .map(|id| state.hash_one(id))
                .collect();
            let mut ends = vec![0u32; BUCKETS + 1];
            for h in &hashes {
                if let Some(c) = ends.get_mut(bucket(*h) + 1) {
                    *c += 1;
                }
            }
            for b in 1..ends.len() {
                ends[b] += ends[b - 1];
            }
            let mut grouped = vec![0u64; hashes.len()];
            for h in &hashes {
                if let Some(at) = ends.get_mut(bucket(*h)) {
                    if let Some(slot) = grouped.get_mut(*at as usize) {
                        *slot = *h;
                    }
                    *at += 1;
                }
            }
            ends.pop();
            (grouped, ends)
        })
        .collect();
    // Each bucket gathered from every chunk and sorted.
    (0..BUCKETS)
        .into_par_iter()
        .with_min_len(BUCKETS / 64)
        .map_init(Vec::new, |scratch: &mut Vec<u64>, b| {
            scratch.clear();
            for (grouped, ends) in &chunks {
                let from = if b == 0 { 0 } else { ends[b - 1] as usize };
                if let Some(hashes) = grouped.get(from..ends[b] as usize) {
                    scratch.extend_from_slice(hashes);
                }
            }
            scratch.sort_unstable();
            scratch.windows(2).any(|w| w[0] == w[1])
        })
        .any(|twice| twice)
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
    fn bucketed_order_equals_a_stable_sort() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        // Few long runs, many short ones, a single row or two.
        for (runs, per_run) in [(7, 20_000), (3, 30_000), (5_000, 4), (2, 3), (2, 1)] {
            let (times, ids) = columns(&mut g, runs, per_run);
            let want = naive(&times, &ids);
            let got =
                event_order(&times, &ids).unwrap_or_else(|| (0..want.len() as IdxSize).collect());
            assert_eq!(got.len(), want.len(), "{runs} runs");
            assert_eq!(got, want, "{runs} runs of {per_run}");
        }
    }

    #[test]
    fn skewed_times_are_ordered_too() {
        let mut g = Gen(11);
        // One outlier stretches the span so that every other row shares a bucket;
        // extreme times (both ends of i64) and ids that share their first four bytes.
        let mut t: Vec<Option<i64>> = Vec::new();
        let mut s: Vec<Option<String>> = Vec::new();
        for i in 0..30_000u64 {
            t.push(Some(1_700_000_000_000_000 + (g.next() % 1_000) as i64));
            s.push((i % 97 != 0).then(|| format!("abcd-{:05}", g.next() % 20_000)));
        }
        t.extend([Some(i64::MIN), Some(i64::MAX), None, Some(-5), None]);
        s.extend([
            Some("z".into()),
            None,
            Some("a".into()),
            Some("abc".into()),
            None,
        ]);
        let times = Int64Chunked::from_iter_options("t".into(), t.into_iter());
        let ids = StringChunked::from_iter_options("id".into(), s.into_iter());
        let want = naive(&times, &ids);
        assert_eq!(event_order(&times, &ids), Some(want));
        // All rows at one time: the order is the ids'.
        let same = Int64Chunked::from_vec("t".into(), vec![42; 1_000]);
        let ids = StringChunked::from_iter_values(
            "id".into(),
            (0..1_000u64).map(|_| format!("{:x}", g.next() % 5_000)),
        );
        assert_eq!(event_order(&same, &ids), Some(naive(&same, &ids)));
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
