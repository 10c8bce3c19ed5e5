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
    let careful = loop {
        match it.next() {
            Ok(Some(s)) => samples.push(s),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    // The bulk decimal decoders give the same samples and fail on the
    // same inputs (the columnar one also with a scratch buffer holding
    // bytes of an earlier chunk).
    let bulk_decode: Option<fn(&[u8], &mut Vec<model::Sample>, &mut Vec<u8>) -> Result<(), model::StorageError>> = match enc {
        tsdb::chunkenc::ENCODING_DEC => Some(tsdb::chunkenc::dec::decode_all),
        tsdb::chunkenc::ENCODING_DEC_COL => Some(tsdb::chunkenc::deccol::decode_all),
        _ => None,
    };
    if let Some(decode) = bulk_decode {
        for mut scratch in [Vec::new(), vec![0xA5u8; 8192]] {
            let mut bulk = Vec::new();
            let ok = decode(body, &mut bulk, &mut scratch).is_ok();
            assert_eq!(ok, careful);
            assert_eq!(bulk.len(), samples.len());
            assert!(bulk.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)));
        }
    }
    // The packed decoder checks the whole chunk first: it fails exactly
    // when the careful iterator could not be made, else reads all.
    if enc == tsdb::chunkenc::ENCODING_PACK {
        let mut bulk = Vec::new();
        assert!(careful);
        assert!(tsdb::chunkenc::pack::decode_all(body, &mut bulk).is_ok());
        assert_eq!(bulk.len(), samples.len());
        assert!(bulk.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)));
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
