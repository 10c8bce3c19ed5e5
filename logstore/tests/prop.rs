//! The store against the oracle `model::mem::MemLogStore`: random pushes
//! (out of order, overlapping blocks, metadata), random flushes and
//! reopens, then random matchers, ranges and directions must give
//! identical results.

use crate::common::{collect, collect_hinted, open, opts};
use model::mem::MemLogStore;
use model::{Direction, Labels, LogEntry, LogQueryable, MatchType, Matcher};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Push(Vec<(usize, i64, u8, bool)>),
    Flush,
    Reopen,
}

fn stream_labels(i: usize) -> Labels {
    match i {
        0 => Labels::from_pairs([("job", "a")]),
        1 => Labels::from_pairs([("job", "a"), ("env", "x")]),
        2 => Labels::from_pairs([("job", "b"), ("env", "y")]),
        _ => Labels::from_pairs([("job", "b"), ("env", "x"), ("zone", "")]),
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0usize..4, 0i64..1000, 0u8..4, any::<bool>()), 1..40).prop_map(Op::Push),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let kinds = prop_oneof![
        Just(MatchType::Equal),
        Just(MatchType::NotEqual),
        Just(MatchType::Regex),
        Just(MatchType::NotRegex)
    ];
    let names = prop_oneof![Just("job"), Just("env"), Just("zone"), Just("nope")];
    let values = prop_oneof![
        Just("a"),
        Just("b"),
        Just("x"),
        Just(""),
        Just("a|b"),
        Just(".*"),
        Just("x.*"),
        Just("y|")
    ];
    (kinds, names, values).prop_map(|(k, n, v)| Matcher::new(k, n, v).unwrap())
}

fn query() -> impl Strategy<Value = (Vec<Matcher>, i64, i64, bool, Vec<&'static str>)> {
    // Needles over lines like "w2 17 zzz": some in every line, some in
    // a few, some straddling words, some in none.
    let needle = prop_oneof![
        Just("w1"),
        Just("w2 1"),
        Just(" 3"),
        Just("zzzz"),
        Just("7 z"),
        Just("z\nw"),
        Just("w"),
        Just("nowhere"),
        Just(""),
    ];
    (
        proptest::collection::vec(matcher(), 0..3),
        -10i64..1010,
        0i64..1100,
        any::<bool>(),
        proptest::collection::vec(needle, 0..3),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn store_matches_oracle(ops in proptest::collection::vec(op(), 1..12), queries in proptest::collection::vec(query(), 8)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = opts();
        // Small blocks so many get cut; a huge window so nothing is
        // rejected as too old.
        // Filters on every block, however small, so hinted queries use them.
        o.block_size(1024).block_filter_min_size(0).max_chunk_age(std::time::Duration::from_secs(1 << 30));
        let mut store = open(tmp.path(), &o);
        let oracle = MemLogStore::new();
        let mut counter = 0u64;
        for op in &ops {
            match op {
                Op::Push(items) => {
                    let mut req: Vec<(Labels, Vec<LogEntry>)> = Vec::new();
                    for (s, ts, word, meta) in items {
                        counter += 1;
                        let mut e = LogEntry::new(*ts, format!("w{word} {counter} {}", "z".repeat((counter % 50) as usize)));
                        if *meta {
                            e.metadata = Labels::from_pairs([("trace", format!("t{word}"))]);
                        }
                        let l = stream_labels(*s);
                        oracle.push(&l, e.clone());
                        match req.iter_mut().find(|(x, _)| *x == l) {
                            Some((_, v)) => v.push(e),
                            None => req.push((l, vec![e])),
                        }
                    }
                    let r = store.push(&req).unwrap();
                    prop_assert_eq!(r.accepted, items.len());
                }
                Op::Flush => {
                    store.flush().unwrap();
                }
                Op::Reopen => {
                    drop(store);
                    store = open(tmp.path(), &o);
                }
            }
        }
        for (m, start, end, fwd, needles) in &queries {
            let dir = if *fwd { Direction::Forward } else { Direction::Backward };
            let want = collect(&oracle, m, *start, *end, dir);
            prop_assert_eq!(collect(&store, m, *start, *end, dir), want.clone());
            // With line hints: the same streams, only the lines containing
            // every needle (the store honours the hints; the oracle's
            // entries are filtered by hand).
            let filtered: Vec<(Labels, Vec<LogEntry>)> = want
                .into_iter()
                .map(|(l, es)| (l, es.into_iter().filter(|e| needles.iter().all(|n| e.line.contains(n))).collect()))
                .collect();
            prop_assert_eq!(collect_hinted(&store, m, *start, *end, dir, needles), filtered);
            let q = store.log_querier().unwrap();
            let oq = oracle.log_querier().unwrap();
            prop_assert_eq!(q.series(m, *start, *end).unwrap(), oq.series(m, *start, *end).unwrap());
            prop_assert_eq!(q.label_names(*start, *end).unwrap(), oq.label_names(*start, *end).unwrap());
            prop_assert_eq!(
                q.label_values("env", m, *start, *end).unwrap(),
                oq.label_values("env", m, *start, *end).unwrap()
            );
        }
    }
}
