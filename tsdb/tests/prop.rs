//! The database and `model::mem::MemStore` answer identically for random
//! data, matchers and ranges.

use crate::common::{dump, open};
use model::mem::MemStore;
use model::{collect_range, Labels, MatchType, Matcher, Queryable, SelectHints};
use proptest::prelude::*;

fn labels_for(i: u8) -> Labels {
    let job = ["api", "db", "web"][usize::from(i % 3)];
    let inst = format!("h{}", i % 5);
    Labels::from_pairs([("__name__", if i.is_multiple_of(2) { "up" } else { "load" }), ("job", job), ("instance", &inst)])
}

fn arb_matchers() -> impl Strategy<Value = Vec<Matcher>> {
    let one = (0..4u8, prop_oneof![Just("job"), Just("instance"), Just("__name__")], "[a-z0-9|.*]{0,4}")
        .prop_filter_map("valid regex", |(k, n, v)| {
            let kind = [MatchType::Equal, MatchType::NotEqual, MatchType::Regex, MatchType::NotRegex][usize::from(k)];
            Matcher::new(kind, n, &v).ok()
        });
    proptest::collection::vec(one, 0..3).prop_map(|mut v| {
        // At least one matcher that selects something non-empty.
        v.push(Matcher::new(MatchType::Regex, "__name__", "up|load").expect("regex"));
        v
    })
}

fn compare(db: &dyn Queryable, oracle: &MemStore, matchers: &[Matcher], mint: i64, maxt: i64) {
    let a = collect(db, matchers, mint, maxt);
    let b = collect(oracle, matchers, mint, maxt);
    assert_eq!(a, b, "matchers {matchers:?} range [{mint}, {maxt}]");
    // Label names and values over the whole time range (within a range,
    // storages may count series whose chunks merely overlap it).
    let (qa, qb) = (db.querier(i64::MIN + 1, i64::MAX).unwrap(), oracle.querier(i64::MIN + 1, i64::MAX).unwrap());
    assert_eq!(qa.label_names(matchers).unwrap(), qb.label_names(matchers).unwrap(), "{matchers:?}");
    for name in ["job", "instance", "__name__", "missing"] {
        assert_eq!(qa.label_values(name, matchers).unwrap(), qb.label_values(name, matchers).unwrap(), "{name} {matchers:?}");
    }
}

fn collect(q: &dyn Queryable, m: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let querier = q.querier(mint, maxt).unwrap();
    let mut out = Vec::new();
    for mut s in querier.select(&SelectHints::range(mint, maxt), m).unwrap() {
        let samples = collect_range(s.samples.as_mut(), mint, maxt).unwrap();
        // Storages may return series whose chunks overlap the range without
        // a sample inside it; the oracle does not.
        if !samples.is_empty() {
            out.push((s.labels.clone(), samples.iter().map(|x| (x.t, x.v.to_bits())).collect()));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn head_matches_oracle(
        data in proptest::collection::vec((0..15u8, 0..5000i64, -1e3..1e3f64), 1..300),
        queries in proptest::collection::vec((arb_matchers(), 0..6000i64, 0..6000i64), 1..6),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path(), crate::common::small_opts());
        let oracle = MemStore::new();
        let mut app = db.appender();
        for (i, t, v) in &data {
            // The oracle keeps the first value of a duplicate timestamp as the db does.
            if app.append(&labels_for(*i), *t, *v).is_ok() {
                oracle.append(&labels_for(*i), *t, *v);
            }
        }
        app.commit().unwrap();
        for (m, a, b) in &queries {
            compare(&db, &oracle, m, *a.min(b), *a.max(b));
        }
        prop_assert_eq!(dump(&db, 0, 6000), dump(&oracle, 0, 6000));
    }
}

fn block_opts() -> tsdb::Options {
    tsdb::Options::builder()
        .block_range(std::time::Duration::from_millis(1000))
        .max_block_range(std::time::Duration::from_millis(9000))
        .retention_time(None)
        .wal_segment_size(16 * 1024)
        .build()
}

/// Appends `data` in commits of 10 samples, in time order (so that the
/// head's lower bound never rejects anything), to the db and the oracle.
fn load(db: &tsdb::Db, oracle: &MemStore, data: &mut [(u8, i64, f64)]) {
    data.sort_by_key(|d| d.1);
    for batch in data.chunks(10) {
        let mut app = db.appender();
        for (i, t, v) in batch {
            if app.append(&labels_for(*i), *t, *v).is_ok() {
                oracle.append(&labels_for(*i), *t, *v);
            }
        }
        app.commit().unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn blocks_only_match_oracle(
        mut data in proptest::collection::vec((0..15u8, 0..8000i64, -1e3..1e3f64), 1..300),
        queries in proptest::collection::vec((arb_matchers(), 0..9000i64, 0..9000i64), 1..6),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path(), block_opts());
        let oracle = MemStore::new();
        load(&db, &oracle, &mut data);
        db.flush_head().unwrap();
        let stats = db.stats();
        prop_assert_eq!(stats.head_samples, 0);
        prop_assert!(!stats.blocks.is_empty());
        for (m, a, b) in &queries {
            compare(&db, &oracle, m, *a.min(b), *a.max(b));
        }
        // And again after reopening.
        db.close().unwrap();
        let db = open(tmp.path(), block_opts());
        for (m, a, b) in &queries {
            compare(&db, &oracle, m, *a.min(b), *a.max(b));
        }
    }

    #[test]
    fn head_and_blocks_after_compaction_match_oracle(
        mut first in proptest::collection::vec((0..15u8, 0..8000i64, -1e3..1e3f64), 1..200),
        mut second in proptest::collection::vec((0..15u8, 8000..10000i64, -1e3..1e3f64), 1..100),
        queries in proptest::collection::vec((arb_matchers(), 0..11000i64, 0..11000i64), 1..6),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path(), block_opts());
        let oracle = MemStore::new();
        load(&db, &oracle, &mut first);
        db.compact().unwrap();
        load(&db, &oracle, &mut second);
        db.compact().unwrap();
        for (m, a, b) in &queries {
            compare(&db, &oracle, m, *a.min(b), *a.max(b));
        }
        prop_assert_eq!(dump(&db, 0, 11000), dump(&oracle, 0, 11000));
        // Reopen: blocks plus the head rebuilt from the checkpoint and WAL.
        db.close().unwrap();
        let db = open(tmp.path(), block_opts());
        prop_assert_eq!(dump(&db, 0, 11000), dump(&oracle, 0, 11000));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// With an out-of-order window, unsorted input within the window is
    /// accepted (and duplicates still rejected); head, blocks and WAL
    /// replay all agree with the oracle.
    #[test]
    fn out_of_order_window_matches_oracle(
        data in proptest::collection::vec((0..6u8, 0..6000i64, -1e3..1e3f64), 1..200),
        window in 0..4000i64,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let opts = tsdb::Options::builder()
            .block_range(std::time::Duration::from_millis(1000))
            .retention_time(None)
            .out_of_order_window(std::time::Duration::from_millis(window as u64))
            .build();
        let db = open(tmp.path(), opts.clone());
        let oracle = MemStore::new();
        let mut accepted_ooo = 0;
        for batch in data.chunks(10) {
            let mut app = db.appender();
            for (i, t, v) in batch {
                let l = labels_for(*i);
                let newest = oracle_last(&oracle, &l);
                match app.append(&l, *t, *v) {
                    Ok(_) => {
                        if newest.is_some_and(|n| *t < n) {
                            accepted_ooo += 1;
                        }
                        oracle.append(&l, *t, *v);
                    }
                    Err(tsdb::AppendError::OutOfOrder { .. }) => prop_assert!(window < 6000 || newest.is_none()),
                    Err(tsdb::AppendError::Duplicate { t: d, .. }) => prop_assert_eq!(d, *t),
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
            }
            let stats = app.commit().unwrap();
            prop_assert_eq!(stats.rejected, 0);
        }
        if window == 0 {
            prop_assert_eq!(accepted_ooo, 0);
        }
        prop_assert_eq!(dump(&db, 0, 7000), dump(&oracle, 0, 7000));
        db.close().unwrap();
        let db = open(tmp.path(), opts.clone());
        prop_assert_eq!(dump(&db, 0, 7000), dump(&oracle, 0, 7000));
        db.flush_head().unwrap();
        prop_assert_eq!(db.stats().head_samples, 0);
        prop_assert_eq!(dump(&db, 0, 7000), dump(&oracle, 0, 7000));
    }
}

/// The newest timestamp of `l` in the oracle (pending samples included,
/// since the oracle is appended to as the db accepts).
fn oracle_last(oracle: &MemStore, l: &Labels) -> Option<i64> {
    let all = dump(oracle, i64::MIN + 1, i64::MAX);
    all.into_iter().find(|(x, _)| x == l).and_then(|(_, s)| s.last().map(|x| x.t))
}
