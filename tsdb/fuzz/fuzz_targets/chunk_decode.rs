//! Decoding arbitrary bytes as a chunk of any encoding must never panic,
//! and re-encoding whatever decoded must round-trip.
//! Run: `cargo fuzz run chunk_decode` from `tsdb/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::SampleIter;
use tsdb::chunkenc::{encode_best, ChunkIter, XorChunk};

fuzz_target!(|data: &[u8]| {
    let Some((&enc, body)) = data.split_first() else { return };
    let Ok(mut it) = ChunkIter::new(enc, body) else { return };
    let mut samples = Vec::new();
    while let Ok(Some(s)) = it.next() {
        samples.push(s);
    }
    let _ = XorChunk::from_bytes(body.to_vec());
    // Decoded timestamps need not increase in garbage; only re-encode
    // sequences that satisfy the encoders' contract.
    if samples.windows(2).all(|w| w[0].t < w[1].t) {
        let (e, bytes) = encode_best(&samples);
        let mut it = ChunkIter::new(e, &bytes).expect("known encoding");
        for s in &samples {
            let got = it.next().expect("valid chunk").expect("sample");
            assert!(got.bit_eq(s));
        }
    }
});
