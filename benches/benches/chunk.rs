//! Chunk encode/decode micro-benchmarks over node-exporter-like series:
//! 120-sample chunks at a 15 s interval of constant gauges, 4-significant-
//! digit random-walk gauges, integer counters and float-sum counters (the
//! mix `shared/bench/gen_node_openmetrics.py` produces).
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use model::{Sample, SampleIter};
use tsdb::chunkenc::{dec, deccol, encode_best, pack, ChunkIter, XorChunk, XorIter};

/// Deterministic xorshift generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let s: String = format!("{:.*e}", (digits - 1) as usize, v);
    s.parse().unwrap_or(v)
}

/// 64 chunks of 120 samples each, of mixed kinds.
fn chunks() -> Vec<Vec<Sample>> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::new();
    for i in 0..64 {
        let mut v = [0.0, 1.0, 929_800.0, 0.2105, 3_687_850.32, 12_345.0][i % 6];
        let rate = [0.5, 3.0, 40.0, 1500.0][i % 4];
        let mut samples = Vec::with_capacity(120);
        for k in 0..120 {
            let t = 1_700_000_000_000 + k * 15_000;
            match i % 6 {
                0 | 1 => {}
                2 | 3 => v = round_sig(v + v * (rng.unit() - 0.5) * 0.007, 4),
                4 => v += (rate * 15.0 * (0.5 + rng.unit()) * 100.0).round() / 100.0,
                _ => v += (rate * 15.0 * (0.5 + rng.unit())).round(),
            }
            samples.push(Sample::new(t, v));
        }
        out.push(samples);
    }
    out
}

fn bench(c: &mut Criterion) {
    let data = chunks();
    let n: u64 = data.iter().map(|c| c.len() as u64).sum();
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(n));
    g.bench_function("xor_encode", |b| {
        b.iter(|| {
            for s in &data {
                let mut c = XorChunk::new();
                for x in s {
                    c.append(x.t, x.v);
                }
                black_box(c.bytes().len());
            }
        })
    });
    g.bench_function("best_encode", |b| {
        b.iter(|| {
            for s in &data {
                black_box(encode_best(s));
            }
        })
    });
    let xor: Vec<Vec<u8>> = data
        .iter()
        .map(|s| {
            let mut c = XorChunk::new();
            for x in s {
                c.append(x.t, x.v);
            }
            c.into_bytes()
        })
        .collect();
    let best: Vec<(u8, Vec<u8>)> = data.iter().map(|s| encode_best(s)).collect();
    // The interleaved (0x10), columnar (0x12) and packed (0x13) decimal
    // layouts of the same chunks (every chunk here is decimal, so each
    // covers all samples).
    let decs: Vec<Vec<u8>> = data.iter().filter_map(|s| dec::encode(s)).collect();
    let cols: Vec<Vec<u8>> = data.iter().filter_map(|s| deccol::encode(s)).collect();
    let packs: Vec<Vec<u8>> = data.iter().filter_map(|s| pack::encode(s)).collect();
    assert_eq!((decs.len(), cols.len(), packs.len()), (data.len(), data.len(), data.len()));
    let size = |c: &[Vec<u8>]| c.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    let best_bytes: usize = best.iter().map(|c| c.1.len()).sum();
    eprintln!(
        "chunk data: xor {:.3} B/sample, dec 0x10 {:.3}, dec 0x12 {:.3}, dec 0x13 {:.3}, best {:.3} B/sample",
        size(&xor),
        size(&decs),
        size(&cols),
        size(&packs),
        best_bytes as f64 / n as f64
    );
    g.bench_function("xor_decode", |b| {
        b.iter(|| {
            for c in &xor {
                let mut it = XorIter::new(c);
                while let Ok(Some(s)) = it.next() {
                    black_box(s);
                }
            }
        })
    });
    g.bench_function("dec_decode", |b| {
        b.iter(|| {
            for c in &decs {
                let mut it = tsdb::chunkenc::DecIter::new(c);
                while let Ok(Some(s)) = it.next() {
                    black_box(s);
                }
            }
        })
    });
    g.bench_function("deccol_decode", |b| {
        b.iter(|| {
            for c in &cols {
                if let Ok(mut it) = tsdb::chunkenc::DecColIter::new(c) {
                    while let Ok(Some(s)) = it.next() {
                        black_box(s);
                    }
                }
            }
        })
    });
    // Bulk decoding into a buffer, as a block's series iterator does.
    let mut out = Vec::with_capacity(200);
    let mut scratch = Vec::new();
    g.bench_function("dec_decode_all", |b| {
        b.iter(|| {
            for c in &decs {
                out.clear();
                let _ = dec::decode_all(c, &mut out, &mut scratch);
                black_box(&out);
            }
        })
    });
    g.bench_function("deccol_decode_all", |b| {
        b.iter(|| {
            for c in &cols {
                out.clear();
                let _ = deccol::decode_all(c, &mut out, &mut scratch);
                black_box(&out);
            }
        })
    });
    g.bench_function("pack_decode", |b| {
        b.iter(|| {
            for c in &packs {
                if let Ok(mut it) = tsdb::chunkenc::PackIter::new(c) {
                    while let Ok(Some(s)) = it.next() {
                        black_box(s);
                    }
                }
            }
        })
    });
    g.bench_function("pack_decode_all", |b| {
        b.iter(|| {
            for c in &packs {
                out.clear();
                let _ = pack::decode_all(c, &mut out);
                black_box(&out);
            }
        })
    });
    g.bench_function("best_decode", |b| {
        b.iter(|| {
            for (enc, c) in &best {
                if let Ok(mut it) = ChunkIter::new(*enc, c) {
                    while let Ok(Some(s)) = it.next() {
                        black_box(s);
                    }
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
