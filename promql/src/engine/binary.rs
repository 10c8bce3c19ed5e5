//! Binary operators: scalar/vector arithmetic, comparisons, set operators
//! and vector matching (one-to-one, many-to-one, one-to-many, fill).

use super::eval::{AddrMap, AddrSet, Ctx, El, Val};
use super::EvalError;
use crate::ast::{BinModifier, BinaryOp, Cardinality, Expr, Span, VectorMatching};
use model::Labels;
use std::collections::{HashMap, HashSet};

/// Applies an arithmetic or comparison operator. For comparisons the value
/// is the left operand and the flag says whether the comparison held.
pub(crate) fn scalar_op(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eq => (l, l == r),
        BinaryOp::Ne => (l, l != r),
        BinaryOp::Gt => (l, l > r),
        BinaryOp::Lt => (l, l < r),
        BinaryOp::Ge => (l, l >= r),
        BinaryOp::Le => (l, l <= r),
        // Trimming applies to native histograms only; float samples drop out.
        BinaryOp::TrimUpper | BinaryOp::TrimLower => (l, false),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (f64::NAN, false),
    }
}

fn signature(m: &VectorMatching, l: &Labels) -> Labels {
    if m.on {
        let names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
        l.keep(&names)
    } else {
        let mut names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
        names.push(model::METRIC_NAME);
        l.without(&names)
    }
}

/// Match signatures and result label sets of one binary operation,
/// remembered across the steps of a query. Label sets are recognised by
/// address (they are shared between steps) and kept alive here so that an
/// address is not reused; signatures and results are interned, so within
/// one node equal contents mean equal addresses.
#[derive(Default)]
pub(crate) struct MatchCache {
    sig: AddrMap<(Labels, Labels)>,
    /// By (many side, one side) label-set addresses: both label sets (kept
    /// alive) and the interned result.
    result: AddrPairMap<(Labels, Option<Labels>, Labels)>,
    intern: HashMap<Labels, Labels>,
}

/// A map keyed by pairs of addresses.
type AddrPairMap<V> = HashMap<(usize, usize), V, std::hash::BuildHasherDefault<super::eval::AddrHasher>>;

/// Entries a [`MatchCache`] holds before it starts over.
const MATCH_CACHE_MAX: usize = 1 << 20;

impl MatchCache {
    /// Starts over when full; call between steps only (addresses handed
    /// out before and after a reset are not comparable).
    fn bound(&mut self) {
        if self.sig.len() + self.result.len() + self.intern.len() > MATCH_CACHE_MAX {
            *self = MatchCache::default();
        }
    }

    fn intern(&mut self, l: Labels) -> Labels {
        if let Some(x) = self.intern.get(&l) {
            return x.clone();
        }
        self.intern.insert(l.clone(), l.clone());
        l
    }

    /// The (interned) match signature of `l`.
    fn sig(&mut self, m: &VectorMatching, l: &Labels) -> Labels {
        let p = addr(l);
        if let Some((_, s)) = self.sig.get(&p) {
            return s.clone();
        }
        let s = self.intern(signature(m, l));
        self.sig.insert(p, (l.clone(), s.clone()));
        s
    }

    /// The (interned) labels of a result element.
    fn result(&mut self, m: &VectorMatching, many: &Labels, one: Option<&Labels>) -> Labels {
        let k = (addr(many), one.map_or(0, addr));
        if let Some((_, _, r)) = self.result.get(&k) {
            return r.clone();
        }
        let r = self.intern(result_labels(m, many, one));
        self.result.insert(k, (many.clone(), one.cloned(), r.clone()));
        r
    }
}

fn addr(l: &Labels) -> usize {
    l.as_slice().as_ptr() as usize
}

pub(crate) fn eval(ctx: &mut Ctx, op: BinaryOp, lhs: &Expr, rhs: &Expr, m: &BinModifier, span: Span, t: i64) -> Result<Val, EvalError> {
    if !op.is_set() {
        if let Some(out) = ctx.binary_from_tables(op, lhs, rhs, m, t)? {
            return Ok(Val::Vector(out));
        }
    }
    let lv = ctx.eval(lhs, t)?;
    let rv = ctx.eval(rhs, t)?;
    let arith = !op.is_comparison() && !op.is_set();
    match (lv, rv) {
        (Val::Scalar(a), Val::Scalar(b)) => {
            let (v, keep) = scalar_op(op, a, b);
            if op.is_comparison() {
                return Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }));
            }
            Ok(Val::Scalar(v))
        }
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(op, v, s, false, m.return_bool, arith))),
        (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(op, v, s, true, m.return_bool, arith))),
        (Val::Vector(a), Val::Vector(b)) => {
            let cache = ctx.match_cache.entry(lhs as *const Expr as usize).or_default();
            cache.bound();
            match op {
                BinaryOp::And => Ok(Val::Vector(and_unless(cache, a, b, &m.matching, true))),
                BinaryOp::Unless => Ok(Val::Vector(and_unless(cache, a, b, &m.matching, false))),
                BinaryOp::Or => Ok(Val::Vector(or(cache, a, b, &m.matching))),
                _ => vector_vector(cache, op, a, b, m, span, arith).map(Val::Vector),
            }
        }
        _ => Err(EvalError::rt("binary expression must contain only scalar and instant vector types", span)),
    }
}

fn vector_scalar(op: BinaryOp, v: Vec<El>, s: f64, swap: bool, return_bool: bool, arith: bool) -> Vec<El> {
    let mut out = Vec::with_capacity(v.len());
    for mut el in v {
        let (l, r) = if swap { (s, el.v) } else { (el.v, s) };
        let (mut val, mut keep) = scalar_op(op, l, r);
        if op.is_comparison() && swap {
            val = el.v;
        }
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            el.v = val;
            el.drop_name |= arith || return_bool;
            out.push(el);
        }
    }
    out
}

fn and_unless(c: &mut MatchCache, a: Vec<El>, b: Vec<El>, m: &VectorMatching, and: bool) -> Vec<El> {
    // Interned signatures: equal addresses mean equal contents.
    let sigs: Vec<Labels> = b.iter().map(|e| c.sig(m, &e.labels)).collect();
    let set: HashSet<usize> = sigs.iter().map(addr).collect();
    a.into_iter().filter(|e| set.contains(&addr(&c.sig(m, &e.labels))) == and).collect()
}

fn or(c: &mut MatchCache, a: Vec<El>, b: Vec<El>, m: &VectorMatching) -> Vec<El> {
    let sigs: Vec<Labels> = a.iter().map(|e| c.sig(m, &e.labels)).collect();
    let set: HashSet<usize> = sigs.iter().map(addr).collect();
    let mut out = a;
    out.extend(b.into_iter().filter(|e| !set.contains(&addr(&c.sig(m, &e.labels)))));
    out
}

fn result_labels(m: &VectorMatching, many: &Labels, one: Option<&Labels>) -> Labels {
    let mut lb = many.builder();
    if m.card == Cardinality::OneToOne {
        if m.on {
            let names: Vec<&str> = m.labels.iter().map(String::as_str).collect();
            return many.keep(&names);
        }
        for l in &m.labels {
            lb.del(l);
        }
    }
    if let Some(one) = one {
        for l in &m.include {
            match one.get(l) {
                Some(v) if !v.is_empty() => {
                    lb.set(l.clone(), v.to_string());
                }
                _ => {
                    lb.del(l);
                }
            }
        }
    }
    lb.build()
}

fn vector_vector(c: &mut MatchCache, op: BinaryOp, lhs: Vec<El>, rhs: Vec<El>, m: &BinModifier, span: Span, arith: bool) -> Result<Vec<El>, EvalError> {
    let matching = &m.matching;
    let swap = matching.card == Cardinality::OneToMany;
    let (many, one) = if swap { (rhs, lhs) } else { (lhs, rhs) };
    // fill_left fills a missing left operand of the loop (after swapping),
    // fill_right a missing right operand.
    let (fill_missing_one, fill_missing_many) = (m.fill_right, m.fill_left);
    // Keyed by the address of interned signatures (equal address, equal
    // contents); the cache keeps them alive.
    let mut one_sigs: AddrMap<usize> = AddrMap::with_capacity_and_hasher(one.len(), Default::default());
    for (i, e) in one.iter().enumerate() {
        let sig = c.sig(matching, &e.labels);
        if let Some(&j) = one_sigs.get(&addr(&sig)) {
            let side = if swap { "left" } else { "right" };
            return Err(EvalError::rt(
                format!(
                    "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    one[j].labels, e.labels
                ),
                span,
            ));
        }
        one_sigs.insert(addr(&sig), i);
    }
    let mut out = Vec::with_capacity(many.len());
    // Signatures matched so far (one-to-one), and (signature, interned
    // result label set) pairs produced (group_left/group_right).
    let mut matched_sigs: AddrSet<usize> = AddrSet::with_capacity_and_hasher(many.len(), Default::default());
    let mut produced: AddrSet<(usize, usize)> = AddrSet::default();
    let mut used_one = vec![false; one.len()];
    let compute = |many_v: f64, one_v: f64| -> (f64, bool) {
        let (l, r) = if swap { (one_v, many_v) } else { (many_v, one_v) };
        let (mut v, mut keep) = scalar_op(op, l, r);
        if m.return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        (v, keep)
    };
    for el in &many {
        let sig = addr(&c.sig(matching, &el.labels));
        let (one_el, one_v) = match one_sigs.get(&sig) {
            Some(&j) => {
                used_one[j] = true;
                (Some(&one[j]), one[j].v)
            }
            None => match fill_missing_one {
                Some(f) => (None, f),
                None => continue,
            },
        };
        let (v, keep) = compute(el.v, one_v);
        // Duplicates on the "many" side are an error even when the
        // comparison filters them away.
        if matching.card == Cardinality::OneToOne && !matched_sigs.insert(sig) {
            return Err(EvalError::rt("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)", span));
        }
        if !keep {
            continue;
        }
        let labels = c.result(matching, &el.labels, one_el.map(|o| &o.labels));
        if matching.card != Cardinality::OneToOne && !produced.insert((sig, addr(&labels))) {
            return Err(EvalError::rt("multiple matches for labels: grouping labels must ensure unique matches", span));
        }
        out.push(El { labels, v, drop_name: el.drop_name || arith || m.return_bool, src_t: el.src_t });
    }
    if let Some(f) = fill_missing_many {
        for (j, e) in one.iter().enumerate() {
            if used_one[j] {
                continue;
            }
            let (v, keep) = compute(f, e.v);
            if !keep {
                continue;
            }
            let labels = c.sig(matching, &e.labels);
            out.push(El { labels, v, drop_name: false, src_t: e.src_t });
        }
    }
    Ok(out)
}

/// The series pairs a binary operation between two step tables matches
/// (see [`Ctx::binary_from_tables`]), worked out once per query from the
/// loaded series: per series of the "many" side (the left one unless
/// `group_right`), the matching series of the other side and the result's
/// labels. Built only when no step can fail or differ from the general
/// path: signatures unique on the "one" side (and on both for one-to-one),
/// result label sets unique, and no `fill` modifiers.
pub(crate) struct TableMatch {
    swap: bool,
    pairs: Vec<Option<(u32, Labels)>>,
    /// Per "one"-side series: the step it was last seen at, and its value
    /// there.
    seen: Vec<u64>,
    values: Vec<f64>,
    step: u64,
}

impl TableMatch {
    pub(crate) fn new(m: &BinModifier, lhs: &[(Labels, std::rc::Rc<Vec<model::Sample>>)], rhs: &[(Labels, std::rc::Rc<Vec<model::Sample>>)]) -> Option<TableMatch> {
        let matching = &m.matching;
        if m.fill_left.is_some() || m.fill_right.is_some() {
            return None;
        }
        let swap = matching.card == Cardinality::OneToMany;
        let (many, one) = if swap { (rhs, lhs) } else { (lhs, rhs) };
        let mut one_sigs: HashMap<Labels, u32> = HashMap::with_capacity(one.len());
        for (j, (l, _)) in one.iter().enumerate() {
            if one_sigs.insert(signature(matching, l), u32::try_from(j).ok()?).is_some() {
                return None;
            }
        }
        let mut pairs = Vec::with_capacity(many.len());
        let mut matched: HashSet<Labels> = HashSet::new();
        let mut produced: HashSet<(Labels, Labels)> = HashSet::new();
        for (l, _) in many {
            let sig = signature(matching, l);
            let Some(&j) = one_sigs.get(&sig) else {
                pairs.push(None);
                continue;
            };
            let labels = result_labels(matching, l, Some(&one[j as usize].0));
            let unique = if matching.card == Cardinality::OneToOne { matched.insert(sig) } else { produced.insert((sig, labels.clone())) };
            if !unique {
                return None;
            }
            pairs.push(Some((j, labels)));
        }
        Some(TableMatch { swap, pairs, seen: vec![0; one.len()], values: vec![0.0; one.len()], step: 0 })
    }

    /// The result at one step from the two tables' rows (and whether their
    /// elements drop `__name__`), as `vector_vector` computes it.
    pub(crate) fn step(&mut self, op: BinaryOp, m: &BinModifier, lhs: (&[(u32, f64, i64)], bool), rhs: (&[(u32, f64, i64)], bool)) -> Vec<El> {
        let ((many, many_drop), (one, _)) = if self.swap { (rhs, lhs) } else { (lhs, rhs) };
        self.step += 1;
        for &(j, v, _) in one {
            self.seen[j as usize] = self.step;
            self.values[j as usize] = v;
        }
        let arith = !op.is_comparison() && !op.is_set();
        let drop_name = many_drop || arith || m.return_bool;
        let mut out = Vec::with_capacity(many.len());
        for &(i, v, src_t) in many {
            let Some(Some((j, labels))) = self.pairs.get(i as usize) else { continue };
            if self.seen[*j as usize] != self.step {
                continue;
            }
            let one_v = self.values[*j as usize];
            let (l, r) = if self.swap { (one_v, v) } else { (v, one_v) };
            let (mut val, mut keep) = scalar_op(op, l, r);
            if m.return_bool {
                val = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if keep {
                out.push(El { labels: labels.clone(), v: val, drop_name, src_t });
            }
        }
        out
    }
}
