//! tsdb append throughput (one thread, committing every 1,000 samples) and
//! select + iterate over the head and over persisted blocks.
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use model::{collect_range, Labels, MatchType, Matcher, Queryable, SelectHints};
use tsdb::{Db, FsyncPolicy, Options};

const SERIES: usize = 1000;
const STEPS: i64 = 240;
const STEP_MS: i64 = 15_000;

fn labels() -> Vec<Labels> {
    (0..SERIES)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("node_metric_{}", i % 10)),
                ("instance", format!("host-{:03}:9100", i / 10)),
                ("job", if i % 2 == 0 { "node".to_string() } else { "edge".to_string() }),
            ])
        })
        .collect()
}

fn options() -> Options {
    // Never fsync: the benchmark measures the in-process append path, not the disk.
    Options::builder().fsync(FsyncPolicy::Never).build()
}

fn fill(db: &Db, ls: &[Labels]) {
    for step in 0..STEPS {
        let mut app = db.appender();
        for (i, l) in ls.iter().enumerate() {
            app.append(l, step * STEP_MS, (i as i64 * 3 + step) as f64 * 0.25).expect("append");
        }
        app.commit().expect("commit");
    }
}

fn append(c: &mut Criterion) {
    let ls = labels();
    let mut g = c.benchmark_group("tsdb_append");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SERIES as u64 * STEPS as u64));
    g.bench_function("1000_series_x_240_steps", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let db = Db::open(dir.path(), options()).expect("open");
                fill(&db, &ls);
                db.close().expect("close");
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn select(c: &mut Criterion) {
    let ls = labels();
    let head_dir = tempfile::tempdir().expect("tempdir");
    let head = Db::open(head_dir.path(), options()).expect("open");
    fill(&head, &ls);
    let block_dir = tempfile::tempdir().expect("tempdir");
    let blocks = Db::open(block_dir.path(), options()).expect("open");
    fill(&blocks, &ls);
    blocks.flush_head().expect("persist head to blocks");

    let maxt = STEPS * STEP_MS;
    let matchers = [
        Matcher::new(MatchType::Equal, "job", "node").expect("matcher"),
        Matcher::new(MatchType::Regex, "__name__", "node_metric_[0-4]").expect("matcher"),
    ];
    let selected = ls.iter().filter(|l| model::matches_all(&matchers, l)).count();
    let mut g = c.benchmark_group("tsdb_select_iterate");
    g.throughput(Throughput::Elements(selected as u64 * STEPS as u64));
    for (name, db) in [("head", &head), ("blocks", &blocks)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let q = db.querier(0, maxt).expect("querier");
                let mut n = 0;
                for mut s in q.select(&SelectHints::range(0, maxt), &matchers).expect("select") {
                    n += collect_range(s.samples.as_mut(), 0, maxt).expect("iterate").len();
                }
                assert_eq!(n, selected * STEPS as usize);
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, append, select);
criterion_main!(benches);
