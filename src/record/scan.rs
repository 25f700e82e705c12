//! The structural scan of a log file: where each record of `{"Records":[ … ]}` starts
//! and ends, without parsing it.
//!
//! The scan works on 64-byte blocks, like the first stage of simdjson: one pass of
//! byte comparisons (SSE2 on x86-64, plain code elsewhere) turns a block into four
//! bit masks (quotes, backslashes, `{`, `}`); escaped quotes are removed, a prefix XOR
//! of the remaining quotes marks the bytes inside strings, and only the braces outside
//! strings are visited one by one to track the depth. A record is a brace-balanced
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

#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8; 64]) -> Masks {
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
        Masks {
            quote: mask_of(b'"'),
            backslash: mask_of(b'\\'),
            open: mask_of(b'{'),
            close: mask_of(b'}'),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(block: &[u8; 64]) -> Masks {
    masks_plain(block)
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
    use_plain: bool,
}

impl<'a> RecordScanner<'a> {
    /// A scanner positioned after the first `[` of `data` (the `Records` array of a
    /// file whose envelope was checked); `None` when there is no `[`.
    pub fn new(data: &'a [u8]) -> Option<Self> {
        Self::build(data, false)
    }

    /// The same scan with the byte-by-byte mask builder (tests compare the two).
    #[cfg(test)]
    fn new_plain(data: &'a [u8]) -> Option<Self> {
        Self::build(data, true)
    }

    fn build(data: &'a [u8], use_plain: bool) -> Option<Self> {
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
            use_plain,
        };
        s.load(true);
        Some(s)
    }

    /// Loads the masks of the block at `self.block` (the next block unless `first`).
    /// Returns `false` past the end of the data.
    fn load(&mut self, first: bool) -> bool {
        if !first {
            self.block += 64;
        }
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
        let m = if self.use_plain {
            masks_plain(block)
        } else {
            masks(block)
        };
        let escaped = escaped(m.backslash, &mut self.escape_carry);
        let quotes = m.quote & !escaped;
        let mut inside = prefix_xor(quotes);
        if self.in_string {
            inside = !inside;
        }
        self.in_string = inside >> 63 == 1;
        self.opens = m.open & !inside;
        self.pending = (m.open | m.close) & !inside;
        true
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

    fn scan_plain(data: &[u8]) -> Option<Vec<(usize, usize)>> {
        RecordScanner::new_plain(data)?
            .collect::<Result<Vec<_>, _>>()
            .ok()
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
            assert_eq!(scan(data), want, "SSE2 scan, round {round}: {d}");
            assert_eq!(scan_plain(data), want, "plain scan, round {round}: {d}");
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
            assert_eq!(scan(data), reference(data), "pad {pad}");
            assert_eq!(scan(data).map(|v| v.len()), Some(2), "pad {pad}");
        }
    }
}
