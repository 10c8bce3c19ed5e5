//! Per-block trigram filters: which 3-byte sequences a block's lines may
//! contain, so that a line-filter query can skip — not even decompress —
//! blocks that cannot hold its literal (the idea of Loki's n-gram bloom
//! filters, at block granularity).
//!
//! Layout (see `docs/format/chunks.md`):
//!
//! ```text
//! kind   u8 = 1   trigram bitmap
//! bits   1 KiB    bit h(t) set for every 3-byte window t of the lines,
//!                 bit i = byte i/8, bit i%8 (least significant first)
//! ```
//!
//! `h(t) = ((b0 | b1 << 8 | b2 << 16) * 0x9E3779B1 mod 2^32) >> 19`, a
//! multiplicative hash onto 8192 bits. Windows are taken over the lines
//! back to back, so windows across line boundaries are included too: the
//! set is a superset, which only costs precision. A needle of 3 or more
//! bytes can occur in the block only if all its windows' bits are set; a
//! filter never says "absent" for present data.
//!
//! Filters of an unknown kind or size are ignored (the block is read), so
//! the encoding can change without breaking readers.

/// Kind byte of the trigram bitmap.
const KIND_TRIGRAM: u8 = 1;
/// log2 of the bitmap size in bits.
const BITS_LOG2: u32 = 13;
/// Bitmap bytes.
const BITMAP_LEN: usize = (1 << BITS_LOG2) / 8;
/// Encoded filter size.
pub(crate) const FILTER_LEN: usize = 1 + BITMAP_LEN;
/// Filters with more bits set than this are not stored: they would rarely
/// exclude anything and cost space in every chunk file.
const MAX_SET_BITS: u32 = (1 << BITS_LOG2) * 6 / 10;

#[inline(always)]
fn slot(t: u32) -> usize {
    (t.wrapping_mul(0x9E37_79B1) >> (32 - BITS_LOG2)) as usize
}

/// Builds the filter of a block's lines (all lines back to back), or
/// `None` when it would not be worth storing.
pub(crate) fn build(lines: &[u8]) -> Option<Vec<u8>> {
    if lines.len() < 3 {
        return None;
    }
    let mut words = [0u64; BITMAP_LEN / 8];
    let mut set = |t: u32| {
        let h = slot(t);
        words[h / 64] |= 1 << (h % 64);
    };
    // Six windows per 8-byte load (independent of each other, unlike a
    // rolling window), then the tail one window at a time.
    let mut i = 0;
    while let Some(chunk) = lines.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        for k in 0..6 {
            set((w >> (8 * k)) as u32 & 0xFF_FFFF);
        }
        i += 6;
    }
    while let Some(t) = lines.get(i..i + 3) {
        set(u32::from(t[0]) | u32::from(t[1]) << 8 | u32::from(t[2]) << 16);
        i += 1;
    }
    if words.iter().map(|w| w.count_ones()).sum::<u32>() > MAX_SET_BITS {
        return None;
    }
    let mut out = Vec::with_capacity(FILTER_LEN);
    out.push(KIND_TRIGRAM);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    Some(out)
}

/// Whether a block with this filter may contain `needle`: `false` only
/// when it surely does not.
pub(crate) fn may_contain(filter: &[u8], needle: &[u8]) -> bool {
    if filter.len() != FILTER_LEN || filter[0] != KIND_TRIGRAM {
        return true;
    }
    let bits = &filter[1..];
    needle.windows(3).all(|w| {
        let h = slot(u32::from(w[0]) | u32::from(w[1]) << 8 | u32::from(w[2]) << 16);
        bits[h / 8] & (1 << (h % 8)) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn excludes_absent_trigrams_only() {
        let lines = b"GET /api/v1/query 200\nGET /login 404\n";
        let f = build(lines).unwrap();
        assert_eq!(f.len(), FILTER_LEN);
        for n in ["GET", "/api/v1/query", "200\nGET", "login 4", "40", "", "x"] {
            assert!(may_contain(&f, n.as_bytes()), "{n}");
        }
        assert!(!may_contain(&f, b"queue full"));
        // Unknown kinds and sizes exclude nothing.
        let mut other = f.clone();
        other[0] = 2;
        assert!(may_contain(&other, b"queue full"));
        assert!(may_contain(&f[..10], b"queue full"));
        assert!(may_contain(&[], b"queue full"));
        assert!(build(b"ab").is_none());
    }

    #[test]
    fn saturated_filters_are_not_built() {
        // Every 3-byte sequence of four symbols, many times over, is fine;
        // random-looking text of 200 kB over all bytes is not.
        let mut x: u32 = 1;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(build(&noise).is_none());
        assert!(build(&b"abcd".repeat(50_000)).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_excludes_a_present_needle(
            lines in proptest::collection::vec(any::<u8>(), 3..400),
            at in any::<prop::sample::Index>(),
            len in 0usize..12,
        ) {
            let f = build(&lines).unwrap();
            let s = at.index(lines.len());
            let e = (s + len).min(lines.len());
            prop_assert!(may_contain(&f, &lines[s..e]));
        }

        #[test]
        fn sets_exactly_the_windows_bits(lines in proptest::collection::vec(any::<u8>(), 3..100)) {
            let f = build(&lines).unwrap();
            let mut want = vec![0u8; BITMAP_LEN];
            for w in lines.windows(3) {
                let h = slot(u32::from(w[0]) | u32::from(w[1]) << 8 | u32::from(w[2]) << 16);
                want[h / 8] |= 1 << (h % 8);
            }
            prop_assert_eq!(&f[1..], &want[..]);
        }

        #[test]
        fn arbitrary_filters_never_panic(f in proptest::collection::vec(any::<u8>(), 0..1100), n in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = may_contain(&f, &n);
        }
    }
}
