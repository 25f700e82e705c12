//! The structural scan of a log file: where each record of `{"Records":[ … ]}` starts
//! and ends, without parsing it.
//!
//! The scan works on 64-byte blocks, like the first stage of simdjson: one pass of
//! byte comparisons (AVX-512 BW where the CPU has it, else SSE2 on x86-64, plain code
//! elsewhere) turns a block into four bit masks (quotes, backslashes, `{`, `}`);
//! escaped quotes are removed, a prefix XOR of the remaining quotes (a carry-less
//! multiply with AVX-512) marks the bytes inside strings, and the braces outside
//! strings track the depth: one by one in a block where the depth may reach zero, as
//! a count elsewhere (fewer closing braces than the depth). A record is a brace-balanced
//! object at depth 1 of the `Records` array. Strings carry over block edges (and so do
//! backslashes), so the result does not depend on where blocks fall.
//!
//! Invariant: the ranges returned are those a byte-by-byte scan that skips strings and
//! balances braces finds (a test checks both on random input). The scan validates only
//! the structure between records (commas and whitespace) and the closing `]}`; records
//! a caller keeps are validated when they are deserialised.

/// The four masks of one block: bit `i` is set when byte `i` is that character.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

impl Masks {
    /// The four masks, each as `mask_of` finds its character.
    #[inline(always)]
    fn each(mask_of: impl Fn(u8) -> u64) -> Self {
        Masks {
            quote: mask_of(b'"'),
            backslash: mask_of(b'\\'),
            open: mask_of(b'{'),
            close: mask_of(b'}'),
        }
    }
}

/// Byte-by-byte masks (the reference, and the path on targets without SSE2).
fn masks_plain(block: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'"' => m.quote |= bit,
            b'\\' => m.backslash |= bit,
            b'{' => m.open |= bit,
            b'}' => m.close |= bit,
            _ => {}
        }
    }
    m
}

/// How a block's masks are built: which instructions the CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lanes {
    /// Byte by byte (the reference, and targets other than x86-64).
    #[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
    Plain,
    /// 16-byte compares (SSE2, the x86-64 baseline).
    #[cfg(target_arch = "x86_64")]
    Sse2,
    /// One 64-byte compare per character straight into a bit mask (AVX-512 BW), the
    /// quotes' prefix XOR as one carry-less multiply, braces counted with POPCNT.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Lanes {
    /// The widest the CPU runs.
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("pclmulqdq")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                return Lanes::Avx512;
            }
            Lanes::Sse2
        }
        #[cfg(not(target_arch = "x86_64"))]
        Lanes::Plain
    }

    /// The masks of `block`.
    fn masks(self, block: &[u8; 64]) -> Masks {
        match self {
            Lanes::Plain => masks_plain(block),
            #[cfg(target_arch = "x86_64")]
            Lanes::Sse2 => masks_sse2(block),
            // SAFETY: `Avx512` is only chosen when the CPU has AVX-512 BW (`best`).
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx512 => unsafe { masks_avx512(block) },
        }
    }

    /// [`prefix_xor`] as this builder's loop computes it.
    #[cfg(test)]
    fn prefix_xor(self, x: u64) -> u64 {
        match self {
            // SAFETY: `Avx512` is only chosen when the CPU has PCLMULQDQ (`best`).
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx512 => unsafe { prefix_xor_clmul(x) },
            _ => prefix_xor(x),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn masks_sse2(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline, so the intrinsics are available on
    // every x86-64 CPU; `block` holds 64 bytes, so each 16-byte load at 16k (k < 4) is
    // in bounds, and `_mm_loadu_si128` has no alignment requirement.
    unsafe {
        let p = block.as_ptr() as *const __m128i;
        let chunks = [
            _mm_loadu_si128(p),
            _mm_loadu_si128(p.add(1)),
            _mm_loadu_si128(p.add(2)),
            _mm_loadu_si128(p.add(3)),
        ];
        let mask_of = |c: u8| -> u64 {
            let needle = _mm_set1_epi8(c as i8);
            let mut out = 0u64;
            for (k, chunk) in chunks.iter().enumerate() {
                let bits = _mm_movemask_epi8(_mm_cmpeq_epi8(*chunk, needle)) as u32 as u64;
                out |= (bits & 0xFFFF) << (16 * k);
            }
            out
        };
        Masks::each(mask_of)
    }
}

/// # Safety
/// The CPU must have AVX-512 BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
#[inline]
unsafe fn masks_avx512(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{_mm512_cmpeq_epi8_mask, _mm512_loadu_si512, _mm512_set1_epi8};
    // SAFETY: `block` holds exactly 64 bytes, the width of one unaligned load.
    let v = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
    let mask_of = |c: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c as i8));
    Masks::each(mask_of)
}

/// [`prefix_xor`] as a carry-less multiply by all ones (bit `i` of the product is the
/// XOR of bits `0..=i`).
///
/// # Safety
/// The CPU must have PCLMULQDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
#[inline]
unsafe fn prefix_xor_clmul(x: u64) -> u64 {
    use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x};
    let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set_epi64x(0, -1), 0);
    _mm_cvtsi128_si64(product) as u64
}

/// Bit `i` set when an odd number of bits `0..=i` of `x` are set.
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The bytes of a block escaped by a backslash. `carry`: the previous block ended in an
/// unescaped backslash (so byte 0 is escaped); updated for the next block.
fn escaped(backslash: u64, carry: &mut bool) -> u64 {
    if backslash == 0 && !*carry {
        return 0;
    }
    let mut out = 0u64;
    let mut pending = backslash;
    if *carry {
        out |= 1;
        pending &= !1;
    }
    *carry = false;
    while pending != 0 {
        let i = pending.trailing_zeros();
        pending &= pending - 1;
        if i == 63 {
            *carry = true;
        } else {
            out |= 1 << (i + 1);
            pending &= !(1 << (i + 1));
        }
    }
    out
}

fn is_gap_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b',')
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// The structure did not look like CloudTrail's envelope of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// An iterator over the byte ranges of the records of a `{"Records":[ … ]}` file.
///
/// It yields `Ok((start, end))` per record, in order, and ends after the closing
/// `]}`; it yields `Err(Malformed)` (once, then ends) when something other than commas
/// and whitespace stands between records, a brace closes what was never opened, or the
/// file ends inside a record.
pub struct RecordScanner<'a> {
    data: &'a [u8],
    /// Offset of the block whose masks are loaded.
    block: usize,
    /// Braces outside strings of the current block not yet visited.
    pending: u64,
    /// Which of those are `{`.
    opens: u64,
    in_string: bool,
    escape_carry: bool,
    depth: usize,
    start: usize,
    /// End of the previous record (or the array's `[` + 1).
    gap_from: usize,
    done: bool,
    lanes: Lanes,
}

impl<'a> RecordScanner<'a> {
    /// A scanner positioned after the first `[` of `data` (the `Records` array of a
    /// file whose envelope was checked); `None` when there is no `[`.
    pub fn new(data: &'a [u8]) -> Option<Self> {
        Self::build(data, Lanes::best())
    }

    fn build(data: &'a [u8], lanes: Lanes) -> Option<Self> {
        let open = memchr::memchr(b'[', data)?;
        let mut s = Self {
            data,
            block: open + 1,
            pending: 0,
            opens: 0,
            in_string: false,
            escape_carry: false,
            depth: 0,
            start: 0,
            gap_from: open + 1,
            done: false,
            lanes,
        };
        s.load(true);
        Some(s)
    }

    /// Loads the block at `self.block` (the next one unless `first`) and, when it
    /// cannot start or end a record, the blocks after it, up to the first that may,
    /// whose braces outside strings are left in `pending`. A block with fewer closing
    /// braces outside strings than the depth cannot bring the depth to zero, so only
    /// its change of depth is counted (most blocks lie inside a record: its braces are
    /// not visited one by one). Returns `false` past the end of the data.
    fn load(&mut self, first: bool) -> bool {
        match self.lanes {
            // SAFETY: `Avx512` is only chosen when the CPU has AVX-512 BW, PCLMULQDQ
            // and POPCNT (`Lanes::best`).
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx512 => unsafe { self.load_avx512(first) },
            lanes => self.load_with(first, |b| lanes.masks(b), prefix_xor),
        }
    }

    /// [`Self::load`] compiled for AVX-512 (the mask builder and the carry-less
    /// multiply inlined into the loop).
    ///
    /// # Safety
    /// The CPU must have AVX-512 BW, PCLMULQDQ and POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw,pclmulqdq,popcnt")]
    unsafe fn load_avx512(&mut self, first: bool) -> bool {
        // SAFETY (both closures): this function runs only where the CPU has the
        // features they need (the caller's contract).
        self.load_with(
            first,
            |b| unsafe { masks_avx512(b) },
            |x| unsafe { prefix_xor_clmul(x) },
        )
    }

    #[inline(always)]
    fn load_with(
        &mut self,
        mut first: bool,
        masks: impl Fn(&[u8; 64]) -> Masks,
        prefix_xor: impl Fn(u64) -> u64,
    ) -> bool {
        loop {
            if !first {
                self.block += 64;
            }
            first = false;
            if self.block >= self.data.len() {
                return false;
            }
            let rest = &self.data[self.block..];
            let mut tail = [b' '; 64];
            let block: &[u8; 64] = match rest.first_chunk::<64>() {
                Some(full) => full,
                None => {
                    // The last, short block is padded with spaces.
                    tail[..rest.len()].copy_from_slice(rest);
                    &tail
                }
            };
            let m = masks(block);
            let escaped = escaped(m.backslash, &mut self.escape_carry);
            let quotes = m.quote & !escaped;
            let mut inside = prefix_xor(quotes);
            if self.in_string {
                inside = !inside;
            }
            self.in_string = inside >> 63 == 1;
            let opens = m.open & !inside;
            let closes = m.close & !inside;
            let closing = closes.count_ones() as usize;
            if closing < self.depth {
                self.depth = self.depth - closing + opens.count_ones() as usize;
                continue;
            }
            self.opens = opens;
            self.pending = opens | closes;
            return true;
        }
    }

    /// Whether the bytes from the previous record's end to `to` are commas and spaces.
    fn gap_ok(&self, to: usize) -> bool {
        self.data[self.gap_from..to].iter().all(|&b| is_gap_byte(b))
    }

    /// At a `}` at depth 0: it must be the envelope's, after `]`, with only whitespace
    /// after it.
    fn closes_envelope(&self, at: usize) -> bool {
        let gap = &self.data[self.gap_from..at];
        let Some(bracket) = gap.iter().rposition(|&b| !is_ws(b)) else {
            return false;
        };
        gap[bracket] == b']'
            && gap[..bracket].iter().all(|&b| is_gap_byte(b))
            && self.data[at + 1..].iter().all(|&b| is_ws(b))
    }

    fn fail(&mut self) -> Option<Result<(usize, usize), Malformed>> {
        self.done = true;
        Some(Err(Malformed))
    }
}

impl Iterator for RecordScanner<'_> {
    type Item = Result<(usize, usize), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            while self.pending != 0 {
                let i = self.pending.trailing_zeros();
                self.pending &= self.pending - 1;
                let at = self.block + i as usize;
                if self.opens >> i & 1 == 1 {
                    if self.depth == 0 {
                        if !self.gap_ok(at) {
                            return self.fail();
                        }
                        self.start = at;
                    }
                    self.depth += 1;
                } else if self.depth == 0 {
                    if self.closes_envelope(at) {
                        self.done = true;
                        return None;
                    }
                    return self.fail();
                } else {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.gap_from = at + 1;
                        return Some(Ok((self.start, at + 1)));
                    }
                }
            }
            if !self.load(false) {
                // The data ended without the envelope's closing brace.
                return self.fail();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-by-byte scan that skips strings and balances braces: the reference.
    fn reference(data: &[u8]) -> Option<Vec<(usize, usize)>> {
        let open = data.iter().position(|&b| b == b'[')?;
        let mut i = open + 1;
        let mut out = Vec::new();
        loop {
            while i < data.len() && is_gap_byte(data[i]) {
                i += 1;
            }
            match data.get(i)? {
                b']' => {
                    i += 1;
                    while i < data.len() && is_ws(data[i]) {
                        i += 1;
                    }
                    if data.get(i) != Some(&b'}') {
                        return None;
                    }
                    return data[i + 1..].iter().all(|&b| is_ws(b)).then_some(out);
                }
                b'{' => {}
                _ => return None,
            }
            let start = i;
            let mut depth = 0usize;
            loop {
                match *data.get(i)? {
                    b'"' => {
                        i += 1;
                        loop {
                            match *data.get(i)? {
                                b'\\' => i += 2,
                                b'"' => {
                                    i += 1;
                                    break;
                                }
                                _ => i += 1,
                            }
                        }
                    }
                    b'{' => {
                        depth += 1;
                        i += 1;
                    }
                    b'}' => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            out.push((start, i));
                            break;
                        }
                    }
                    _ => i += 1,
                }
            }
        }
    }

    fn scan(data: &[u8]) -> Option<Vec<(usize, usize)>> {
        RecordScanner::new(data)?
            .collect::<Result<Vec<_>, _>>()
            .ok()
    }

    type Ranges = Vec<(usize, usize)>;

    /// The scan with each mask builder this CPU runs: the byte-by-byte one, SSE2,
    /// and AVX-512 where the CPU has it (the default is the widest).
    fn scan_each(data: &[u8]) -> Vec<(Lanes, Option<Ranges>)> {
        let mut lanes = vec![Lanes::Plain];
        #[cfg(target_arch = "x86_64")]
        lanes.push(Lanes::Sse2);
        if !lanes.contains(&Lanes::best()) {
            lanes.push(Lanes::best());
        }
        lanes
            .into_iter()
            .map(|l| {
                let ranges = RecordScanner::build(data, l)
                    .and_then(|s| s.collect::<Result<Vec<_>, _>>().ok());
                (l, ranges)
            })
            .collect()
    }

    #[test]
    fn strings_escapes_and_nesting() {
        let d = br#"{"Records":[{"a":"x}\"{","b":{"c":[1,{"d":2}]}} , {"e":"\\"}]}"#;
        let texts: Vec<&str> = scan(d)
            .unwrap_or_default()
            .iter()
            .map(|(a, b)| std::str::from_utf8(&d[*a..*b]).unwrap_or(""))
            .collect();
        assert_eq!(
            texts,
            vec![r#"{"a":"x}\"{","b":{"c":[1,{"d":2}]}}"#, r#"{"e":"\\"}"#]
        );
        assert_eq!(scan(br#"{"Records":[]}"#), Some(vec![]));
        assert_eq!(scan(br#"{"Records":[{"a":"x"#), None);
        assert_eq!(scan(br#"{"Records":[1,2]}"#), None);
        assert_eq!(scan(br#"{"Records":[{}] x}"#), None);
        assert_eq!(scan(br#"{"Records":[{}],"b":[{}]}"#), None);
        assert_eq!(scan(br#"{"Records":[{}]} {}"#), None);
    }

    /// Random files of records whose strings hold braces, quotes and runs of
    /// backslashes, at every offset relative to the 64-byte blocks: the block scan (both
    /// mask builders) finds exactly the reference's ranges.
    #[test]
    fn block_scan_equals_byte_scan() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let atoms: [&str; 12] = [
            r#""k":"v""#,
            r#""s":"a}b{c""#,
            r#""q":"x\"y""#,
            r#""b":"\\""#,
            r#""bb":"\\\\\"}""#,
            r#""n":{"m":[1,{"z":"}"}]}"#,
            r#""e":"""#,
            r#""long":"0123456789012345678901234567890123456789012345678901234567890123456789""#,
            r#""u":"\u007b""#,
            r#""arr":[{},{}]"#,
            r#""t":true"#,
            r#""slash":"a\\\"{""#,
        ];
        for round in 0..400 {
            let mut d = String::from("{\"Records\":[");
            d.push_str(&" ".repeat(next(70) as usize));
            let records = next(6);
            for r in 0..records {
                if r > 0 {
                    d.push_str(if next(2) == 0 { "," } else { " ,\n" });
                }
                d.push('{');
                for a in 0..next(8) {
                    if a > 0 {
                        d.push(',');
                    }
                    d.push_str(atoms[next(atoms.len() as u64) as usize]);
                }
                d.push('}');
            }
            d.push_str("]}");
            if round % 7 == 3 {
                // Something malformed: cut short, or junk between records.
                if next(2) == 0 {
                    let cut = next(d.len() as u64) as usize;
                    d.truncate(cut.max(1));
                } else {
                    let at = d.len() - 2;
                    d.insert_str(at, ",x");
                }
            }
            let data = d.as_bytes();
            let want = reference(data);
            for (lanes, got) in scan_each(data) {
                assert_eq!(got, want, "{lanes:?} scan, round {round}: {d}");
            }
            if round % 7 != 3 {
                assert_eq!(want.map(|v| v.len()), Some(records as usize), "{d}");
            }
        }
    }

    #[test]
    fn escapes_across_blocks() {
        // A backslash as the last byte of a block escapes the first of the next.
        for pad in 0..70 {
            let mut d = String::from("{\"Records\":[{\"a\":\"");
            d.push_str(&"x".repeat(pad));
            d.push_str("\\\"}{\\\\\"},{\"b\":1}]}");
            let data = d.as_bytes();
            for (lanes, got) in scan_each(data) {
                assert_eq!(got, reference(data), "{lanes:?}, pad {pad}");
            }
            assert_eq!(scan(data).map(|v| v.len()), Some(2), "pad {pad}");
        }
    }

    /// Every mask builder gives the byte-by-byte masks, and the carry-less prefix XOR
    /// the shifted one, on random blocks dense in the four characters.
    #[test]
    fn lanes_agree_on_random_blocks() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = *b"\"\\{}a ,:";
        let lanes = [Lanes::Plain, Lanes::best()];
        for _ in 0..2000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                *b = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            let want = masks_plain(&block);
            #[cfg(target_arch = "x86_64")]
            assert_eq!(Lanes::Sse2.masks(&block), want);
            let x = next();
            for l in lanes {
                assert_eq!(l.masks(&block), want, "{l:?}");
                assert_eq!(l.prefix_xor(x), prefix_xor(x), "{l:?} {x:#x}");
            }
        }
    }
}
