//! Postings set operations (the core of matcher evaluation in the block
//! index): intersecting a large and a small list, intersecting two large
//! lists, merging many lists (a regex over many label values) and
//! subtracting (negative matchers). Lists mimic an index of 100k series.
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tsdb::index::postings::{intersect, merge, subtract};

/// Every `step`-th reference of 100k series, offset by `phase`; references
/// grow by ~60 bytes per series as in a real index.
fn list(step: u64, phase: u64) -> Vec<u64> {
    (0..100_000u64).filter(|i| i % step == phase % step).map(|i| 5 + i * 61).collect()
}

fn bench(c: &mut Criterion) {
    let all = list(1, 0);
    let job = list(3, 1);
    let instance = list(400, 7);
    let names: Vec<Vec<u64>> = (0..200).map(|k| list(200, k)).collect();
    let mut g = c.benchmark_group("postings");
    g.bench_function("intersect_large_small", |b| b.iter(|| black_box(intersect(&all, &instance))));
    g.bench_function("intersect_large_large", |b| b.iter(|| black_box(intersect(&all, &job))));
    g.bench_function("merge_200_lists", |b| b.iter(|| black_box(merge(names.clone()))));
    g.bench_function("subtract", |b| b.iter(|| black_box(subtract(&all, &job))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
