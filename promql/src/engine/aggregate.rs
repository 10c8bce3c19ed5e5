//! Aggregation operators.

use super::eval::{Ctx, El, Val};
use super::EvalError;
use crate::ast::{AggregateOp, Expr, Grouping, Span};
use model::Labels;
use std::collections::HashMap;

/// Kahan-compensated addition, as Prometheus does it.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Average with Kahan summation that switches to an incremental mean when
/// the plain sum overflows.
pub(crate) fn average(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut a = Mean::default();
    for v in values {
        a.push(v);
    }
    a.value()
}

/// The running state of [`average`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Mean {
    sum: f64,
    c: f64,
    mean: f64,
    count: f64,
    incremental: bool,
}

impl Mean {
    pub(crate) fn push(&mut self, v: f64) {
        self.count += 1.0;
        let count = self.count;
        if !self.incremental {
            let (ns, nc) = kahan_inc(v, self.sum, self.c);
            if count == 1.0 || !ns.is_infinite() {
                self.sum = ns;
                self.c = nc;
                return;
            }
            self.incremental = true;
            self.mean = self.sum / (count - 1.0);
            self.c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        let (m, nc) = kahan_inc(v / count, q * self.mean, q * self.c);
        self.mean = m;
        self.c = nc;
    }

    pub(crate) fn value(&self) -> f64 {
        if self.incremental {
            self.mean + self.c
        } else {
            self.sum / self.count + self.c / self.count
        }
    }
}

/// Population variance (Welford with Kahan compensation).
pub(crate) fn variance(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for v in values {
        count += 1.0;
        let delta = v - (mean + cmean);
        let (m, c) = kahan_inc(delta / count, mean, cmean);
        mean = m;
        cmean = c;
        let new_delta = v - (mean + cmean);
        let (a, c) = kahan_inc(delta * new_delta, aux, caux);
        aux = a;
        caux = c;
    }
    (aux + caux) / count
}

/// Prometheus's quantile over unsorted values (linear interpolation);
/// `values` is left reordered.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let (a, b) = ranked_pair(values, lower as usize, upper as usize);
    a * (1.0 - weight) + b * weight
}

/// The order Prometheus sorts values in for quantiles: NaN first.
fn cmp_nan_first(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()).reverse())
}

/// The values at positions `lo` and `hi` (`lo <= hi <= lo + 1`, both in
/// range) of `values` sorted stably by [`cmp_nan_first`], found by
/// selection instead of a sort; `values` is left reordered.
///
/// The only values that compare equal yet differ are zeros of either sign
/// (and NaNs, which make the quantile NaN whichever is picked). A stable
/// sort keeps equal values in input order, so a zero at a position is the
/// zero that many places into the input's zeros, sign included.
fn ranked_pair(values: &mut [f64], lo: usize, hi: usize) -> (f64, f64) {
    let zero_signs: Vec<bool> = values.iter().filter(|v| **v == 0.0).map(|v| v.is_sign_negative()).collect();
    // Values sorted before every zero: the negative ones and NaNs.
    let below = values.iter().filter(|v| v.is_nan() || **v < 0.0).count();
    let (_, a, rest) = values.select_nth_unstable_by(lo, cmp_nan_first);
    let a = *a;
    let b = if hi > lo { rest.iter().copied().min_by(cmp_nan_first).unwrap_or(a) } else { a };
    let signed = |v: f64, pos: usize| match pos.checked_sub(below).and_then(|i| zero_signs.get(i)) {
        Some(&negative) if v == 0.0 => {
            if negative {
                -0.0
            } else {
                0.0
            }
        }
        _ => v,
    };
    (signed(a, lo), signed(b, hi))
}

/// Group keys of one aggregation node, remembered across the steps of a
/// query: label sets are shared between steps (clones of one `Labels`), so
/// a label set seen before is recognised by its address instead of hashing
/// its contents again at every step.
#[derive(Default)]
pub(crate) struct GroupCache {
    /// Address of a label set's contents -> (that label set, kept alive so
    /// the address cannot be reused for another one; its group id).
    by_ptr: super::eval::AddrMap<(Labels, usize)>,
    /// Group keys by id.
    pub(crate) keys: Vec<Labels>,
    /// Group ids by the hash of their key's labels (see [`key_hash`]);
    /// colliding ids are told apart by comparing labels.
    by_hash: HashMap<u64, Vec<usize>>,
}

/// Label sets remembered per aggregation before the cache starts over
/// (bounds memory when every step brings new label sets).
const GROUP_CACHE_MAX: usize = 1 << 20;

impl GroupCache {
    /// The group id of `l` under grouping `g`.
    pub(crate) fn group_of(&mut self, g: &Grouping, l: &Labels) -> usize {
        let p = l.as_slice().as_ptr() as usize;
        if let Some((_, id)) = self.by_ptr.get(&p) {
            return *id;
        }
        if self.by_ptr.len() >= GROUP_CACHE_MAX {
            self.by_ptr.clear();
        }
        // The key's labels are only built for a new group: looking a group
        // up hashes and compares the kept labels of `l` in place.
        let ids = self.by_hash.entry(key_hash(g, l)).or_default();
        let keys = &mut self.keys;
        let id = match ids.iter().copied().find(|&id| kept(g, l).eq(keys[id].iter())) {
            Some(id) => id,
            None => {
                keys.push(group_key(g, l));
                ids.push(keys.len() - 1);
                keys.len() - 1
            }
        };
        self.by_ptr.insert(p, (l.clone(), id));
        id
    }
}

/// The labels of `l` that make its group key under `g`, in order:
/// exactly the labels of [`group_key`].
fn kept<'l>(g: &'l Grouping, l: &'l Labels) -> impl Iterator<Item = &'l model::Label> + 'l {
    l.iter().filter(move |label| {
        let named = g.labels.contains(&label.name);
        if g.without {
            !named && !super::eval::NAME_LABELS.contains(&label.name.as_str())
        } else {
            named
        }
    })
}

/// Hash of the group key of `l` under `g`, without building the key.
fn key_hash(g: &Grouping, l: &Labels) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for label in kept(g, l) {
        label.name.hash(&mut h);
        label.value.hash(&mut h);
    }
    h.finish()
}

fn group_key(g: &Grouping, l: &Labels) -> Labels {
    let names: Vec<&str> = g.labels.iter().map(String::as_str).collect();
    if g.without {
        let mut names = names;
        names.extend_from_slice(super::eval::NAME_LABELS);
        l.without(&names)
    } else {
        l.keep(&names)
    }
}

pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

pub(crate) fn eval(ctx: &mut Ctx, op: AggregateOp, expr: &Expr, param: Option<&Expr>, g: &Grouping, span: Span, t: i64) -> Result<Val, EvalError> {
    let pval = match param {
        Some(p) => Some(ctx.eval(p, t)?),
        None => None,
    };
    if param.is_none() {
        if let Some(out) = over_step_table(ctx, op, expr, g, t)? {
            return Ok(Val::Vector(out));
        }
    }
    if let (AggregateOp::Topk | AggregateOp::Bottomk, Some(Val::Scalar(k))) = (op, &pval) {
        if let Some(out) = k_over_step_table(ctx, op, *k, expr, g, t)? {
            return Ok(Val::Vector(out));
        }
    }
    let Val::Vector(input) = ctx.eval(expr, t)? else {
        return Err(EvalError::rt("expected instant vector in aggregation", span));
    };
    let scalar_param = match &pval {
        Some(Val::Scalar(v)) => Some(*v),
        _ => None,
    };
    let pspan = param.map(|p| p.span()).unwrap_or(span);
    // Groups in order of first appearance in this step.
    let cache = ctx.group_cache.entry(expr as *const Expr as usize).or_default();
    let mut slot: Vec<usize> = Vec::new();
    let mut keys: Vec<Labels> = Vec::new();
    let mut member: Vec<usize> = Vec::with_capacity(input.len());
    for el in &input {
        let id = cache.group_of(g, &el.labels);
        if slot.len() <= id {
            slot.resize(id + 1, usize::MAX);
        }
        if slot[id] == usize::MAX {
            slot[id] = keys.len();
            keys.push(cache.keys[id].clone());
        }
        member.push(slot[id]);
    }
    if let Some(out) = fold_simple(op, keys.clone(), &input, &member, t) {
        return Ok(Val::Vector(out));
    }
    let mut groups: Vec<(Labels, Vec<El>)> = keys.into_iter().map(|k| (k, Vec::new())).collect();
    for (el, gi) in input.into_iter().zip(member) {
        groups[gi].1.push(el);
    }
    let mut out = Vec::new();
    match op {
        AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
            let k = scalar_param.unwrap_or(f64::NAN);
            if k.is_nan() {
                return Err(EvalError::rt("Parameter value is NaN", pspan));
            }
            if k < 1.0 {
                return Ok(Val::Vector(Vec::new()));
            }
            let k = if k >= 9.2e18 { usize::MAX } else { k as usize };
            for (_, mut els) in groups {
                match op {
                    AggregateOp::Topk => first_k_stable(&mut els, k, cmp_desc),
                    // NaN sorts last for bottomk as well.
                    AggregateOp::Bottomk => first_k_stable(&mut els, k, cmp_asc_nan_last),
                    _ => els.truncate(k),
                }
                out.extend(els);
            }
            return Ok(Val::Vector(out));
        }
        AggregateOp::LimitRatio => {
            let mut r = scalar_param.unwrap_or(f64::NAN);
            if r.is_nan() {
                return Err(EvalError::rt("Ratio value is NaN", pspan));
            }
            if !(-1.0..=1.0).contains(&r) {
                r = r.clamp(-1.0, 1.0);
                let got = scalar_param.unwrap_or(f64::NAN);
                ctx.warn(format!("ratio value should be between -1 and 1, got {}, capping to {}", format_value(got), format_value(r)), pspan);
            }
            for (_, els) in groups {
                for el in els {
                    let offset = el.labels.stable_hash() as f64 / u64::MAX as f64;
                    if (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r) {
                        out.push(el);
                    }
                }
            }
            return Ok(Val::Vector(out));
        }
        AggregateOp::CountValues => {
            let Some(Val::Str(name)) = pval else {
                return Err(EvalError::rt("count_values needs a string parameter", pspan));
            };
            if name.is_empty() || name.contains('\u{fffd}') {
                return Err(EvalError::rt(format!("invalid label name {name:?}"), pspan));
            }
            for (k, els) in groups {
                let mut counts: Vec<(String, f64, bool)> = Vec::new();
                for el in els {
                    let s = format_value(el.v);
                    match counts.iter_mut().find(|c| c.0 == s) {
                        Some(c) => {
                            c.1 += 1.0;
                            c.2 |= el.drop_name;
                        }
                        None => counts.push((s, 1.0, el.drop_name)),
                    }
                }
                for (s, n, _) in counts {
                    let mut lb = k.builder();
                    lb.set(name.clone(), s);
                    out.push(El { labels: lb.build(), v: n, drop_name: false, src_t: t });
                }
            }
            return Ok(Val::Vector(out));
        }
        _ => {}
    }
    if op == AggregateOp::Quantile {
        let q = scalar_param.unwrap_or(f64::NAN);
        if !(0.0..=1.0).contains(&q) {
            ctx.warn(format!("quantile value should be between 0 and 1, got {}", format_value(q)), pspan);
        }
    }
    for (k, els) in groups {
        let drop_name = els.iter().any(|e| e.drop_name);
        let vals = els.iter().map(|e| e.v);
        let v = match op {
            AggregateOp::Sum => {
                let (s, c) = vals.fold((0.0, 0.0), |(s, c), v| kahan_inc(v, s, c));
                s + c
            }
            AggregateOp::Avg => average(vals),
            AggregateOp::Count => els.len() as f64,
            AggregateOp::Group => 1.0,
            AggregateOp::Min => vals.fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
            AggregateOp::Max => vals.fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
            AggregateOp::Stdvar => variance(vals),
            AggregateOp::Stddev => variance(vals).sqrt(),
            AggregateOp::Quantile => {
                let mut vs: Vec<f64> = vals.collect();
                quantile(scalar_param.unwrap_or(f64::NAN), &mut vs)
            }
            _ => f64::NAN,
        };
        out.push(El { labels: k, v, drop_name, src_t: t });
    }
    Ok(Val::Vector(out))
}

/// Aggregations computed in one pass over the input, without gathering
/// each group's elements: `sum`, `count`, `group`, `min`, `max`. Values are
/// folded in input order, as the gathering path does. `None` for other
/// operators.
fn fold_simple(op: AggregateOp, keys: Vec<Labels>, input: &[El], member: &[usize], t: i64) -> Option<Vec<El>> {
    if !matches!(op, AggregateOp::Sum | AggregateOp::Count | AggregateOp::Group | AggregateOp::Min | AggregateOp::Max) {
        return None;
    }
    let mut out = fold_values(op, keys, member.iter().zip(input).map(|(&gi, el)| (gi, el.v)), t);
    // A group drops its name when any member does.
    let mut drop = vec![false; out.len()];
    for (el, &gi) in input.iter().zip(member) {
        drop[gi] |= el.drop_name;
    }
    for (el, d) in out.iter_mut().zip(drop) {
        el.drop_name = d;
    }
    Some(out)
}

/// One group's running aggregate at one step, for the operators folded
/// member by member in input order: `sum`, `count`, `group`, `min`, `max`
/// and `avg`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupFold {
    /// The value so far (avg: the sum).
    v: f64,
    /// Compensation of a sum.
    c: f64,
    /// Members added.
    n: f64,
}

impl GroupFold {
    /// A group without members yet.
    pub(crate) fn new(op: AggregateOp) -> GroupFold {
        let v = if matches!(op, AggregateOp::Min | AggregateOp::Max) { f64::NAN } else { 0.0 };
        GroupFold { v, c: 0.0, n: 0.0 }
    }

    /// Adds a member's value.
    #[inline(always)]
    pub(crate) fn add(&mut self, op: AggregateOp, x: f64) {
        self.n += 1.0;
        match op {
            AggregateOp::Sum => (self.v, self.c) = kahan_inc(x, self.v, self.c),
            AggregateOp::Count => self.v += 1.0,
            AggregateOp::Group => self.v = 1.0,
            AggregateOp::Min => {
                if self.v.is_nan() || x < self.v {
                    self.v = x;
                }
            }
            AggregateOp::Avg => {
                // Compensated without Prometheus's overflow switch, which
                // `Self::value` makes up for (see `group_means`).
                let t = self.v + x;
                let (a, b) = if self.v.abs() >= x.abs() { (self.v, x) } else { (x, self.v) };
                self.c += (a - t) + b;
                self.v = t;
            }
            // Max (no other operator is folded here).
            _ => {
                if self.v.is_nan() || x > self.v {
                    self.v = x;
                }
            }
        }
    }

    /// Whether `op` is folded member by member (the others need all of a
    /// group's values).
    pub(crate) fn folds(op: AggregateOp) -> bool {
        matches!(op, AggregateOp::Sum | AggregateOp::Count | AggregateOp::Group | AggregateOp::Min | AggregateOp::Max | AggregateOp::Avg)
    }

    /// Whether no member was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.n == 0.0
    }

    /// The group's value; `None` for an average whose sums did not stay
    /// finite (then only the careful [`average`] of the members agrees
    /// with Prometheus).
    pub(crate) fn value(&self, op: AggregateOp) -> Option<f64> {
        match op {
            AggregateOp::Sum => Some(self.v + self.c),
            AggregateOp::Avg => (self.v.is_finite() && self.c.is_finite()).then(|| self.v / self.n + self.c / self.n),
            _ => Some(self.v),
        }
    }
}

/// Folds (group, value) pairs into their groups for `sum`, `count`,
/// `group`, `min` and `max`, in input order.
fn fold_values(op: AggregateOp, keys: Vec<Labels>, members: impl Iterator<Item = (usize, f64)>, t: i64) -> Vec<El> {
    let mut acc = vec![GroupFold::new(op); keys.len()];
    for (gi, v) in members {
        acc[gi].add(op, v);
    }
    keys.into_iter()
        .zip(acc)
        .map(|(labels, a)| El { labels, v: a.value(op).unwrap_or(f64::NAN), drop_name: false, src_t: t })
        .collect()
}

/// `op by/without (...) (selector)` at one step of a range query, straight
/// from the selector's step table: each series' group is worked out once
/// per query, and no intermediate vector is built. `None` when the fast
/// path does not apply (other operators, other argument shapes, instant
/// queries); the result equals the general path's.
fn over_step_table(ctx: &mut Ctx, op: AggregateOp, expr: &Expr, g: &Grouping, t: i64) -> Result<Option<Vec<El>>, EvalError> {
    if !matches!(op, AggregateOp::Sum | AggregateOp::Count | AggregateOp::Group | AggregateOp::Min | AggregateOp::Max | AggregateOp::Avg) {
        return Ok(None);
    }
    let mut inner = expr;
    while let Expr::Paren { expr, .. } = inner {
        inner = expr;
    }
    let gkey = expr as *const Expr as usize;
    let Some((keys, member, drop_name)) = ctx.step_groups(inner, gkey, g, t)? else { return Ok(None) };
    let out = match op {
        AggregateOp::Avg => {
            let means = group_means(&member, keys.len());
            keys.into_iter().zip(means).map(|(labels, v)| El { labels, v, drop_name, src_t: t }).collect()
        }
        _ => {
            let mut out = fold_values(op, keys, member.iter().copied(), t);
            for el in &mut out {
                el.drop_name = drop_name;
            }
            out
        }
    };
    Ok(Some(out))
}

/// The mean of each of `groups` groups of `(group, value)` members, as
/// [`Mean`] gives it: branch-free compensated sums per group, and a group
/// whose sum does not stay finite averaged again the careful way (see
/// `functions::finite_kahan_sum` for why the results agree).
fn group_means(member: &[(usize, f64)], groups: usize) -> Vec<f64> {
    let mut acc = vec![GroupFold::new(AggregateOp::Avg); groups];
    for &(gi, v) in member {
        acc[gi].add(AggregateOp::Avg, v);
    }
    acc.into_iter()
        .enumerate()
        .map(|(gi, a)| a.value(AggregateOp::Avg).unwrap_or_else(|| average(member.iter().filter(|m| m.0 == gi).map(|m| m.1))))
        .collect()
}

/// Keeps the first `k` elements of `els` in the order a stable sort by
/// `cmp` of their values would give, without sorting all of them: a
/// selection by (value, position) — which is what stability means — then
/// a sort of the `k` kept.
fn first_k_stable(els: &mut Vec<El>, k: usize, cmp: fn(f64, f64) -> std::cmp::Ordering) {
    let mut keyed: Vec<(f64, usize)> = els.iter().enumerate().map(|(i, el)| (el.v, i)).collect();
    first_k_keyed(&mut keyed, k, cmp);
    let mut taken: Vec<Option<El>> = std::mem::take(els).into_iter().map(Some).collect();
    els.extend(keyed.into_iter().filter_map(|(_, i)| taken[i].take()));
}

/// Reduces `keyed` (value, position) to the first `k >= 1` by `cmp`, ties
/// in position order, sorted: a stable sort's first `k`, by selection.
fn first_k_keyed(keyed: &mut Vec<(f64, usize)>, k: usize, cmp: fn(f64, f64) -> std::cmp::Ordering) {
    let by = |a: &(f64, usize), b: &(f64, usize)| cmp(a.0, b.0).then(a.1.cmp(&b.1));
    if k < keyed.len() {
        keyed.select_nth_unstable_by(k - 1, by);
        keyed.truncate(k);
    }
    keyed.sort_unstable_by(by);
}

/// A step's members for ranking: per group, (value, member position), and
/// the members (series, value, sample time) in series order.
#[derive(Default)]
struct Ranked {
    groups: Vec<Vec<(f64, usize)>>,
    members: Vec<(u32, f64, i64)>,
}

impl crate::engine::eval::MemberSink for Ranked {
    fn reserve(&mut self, n: usize) {
        self.members.reserve(n);
    }

    fn push(&mut self, slot: usize, m: crate::engine::eval::StepMember) {
        if self.groups.len() <= slot {
            self.groups.resize_with(slot + 1, Vec::new);
        }
        self.groups[slot].push((m.v, self.members.len()));
        self.members.push((m.series, m.v, m.src_t));
    }
}

/// `topk`/`bottomk` directly over a step table (see
/// [`Ctx::step_members`]): per group the members' values are ranked and
/// only the `k` kept become elements, instead of every member at every
/// step. `None` when `expr` has no table or `k` is not a plain count (the
/// general path then reports or handles it).
fn k_over_step_table(ctx: &mut Ctx, op: AggregateOp, k: f64, expr: &Expr, g: &Grouping, t: i64) -> Result<Option<Vec<El>>, EvalError> {
    let Some(k) = plain_k(k) else { return Ok(None) };
    let mut inner = expr;
    while let Expr::Paren { expr, .. } = inner {
        inner = expr;
    }
    let mut ranked = Ranked::default();
    let found = ctx.step_members(inner, expr as *const Expr as usize, g, t, &mut ranked)?;
    let Some((_, drop_name, src)) = found else { return Ok(None) };
    let mut out = Vec::new();
    for mut keyed in ranked.groups {
        rank_k(op, &mut keyed, k);
        for (_, i) in keyed {
            let (series, v, src_t) = ranked.members[i];
            if let Some(labels) = ctx.loaded_labels(src, series) {
                out.push(El { labels: labels.clone(), v, drop_name, src_t });
            }
        }
    }
    Ok(Some(out))
}

/// `topk`/`bottomk`'s `k` as a count, when it is one (not NaN, at least 1):
/// then the result keeps at most `k` members per group, in the order
/// [`rank_k`] gives.
pub(crate) fn plain_k(k: f64) -> Option<usize> {
    if k.is_nan() || k < 1.0 {
        return None;
    }
    Some(if k >= 9.2e18 { usize::MAX } else { k as usize })
}

/// Reduces one group's `(value, member position)` pairs to the `k` that
/// `topk` (or `bottomk`, by `op`) keeps, in their result order.
pub(crate) fn rank_k(op: AggregateOp, keyed: &mut Vec<(f64, usize)>, k: usize) {
    let cmp = if op == AggregateOp::Topk { cmp_desc } else { cmp_asc_nan_last };
    first_k_keyed(keyed, k, cmp);
}

/// Descending order with NaN last.
fn cmp_desc(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Ascending order with NaN last.
fn cmp_asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(0.5, &mut [1.0, 3.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [1.0, 2.0, 3.0, 4.0, 5.0]), 2.0);
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Per-group means equal `average` over each group's values.
        #[test]
        fn group_means_equal_average(
            member in proptest::collection::vec((0usize..4, prop_oneof![-1e6f64..1e6, Just(f64::MAX), Just(-f64::MAX), Just(f64::INFINITY), Just(f64::NAN), Just(0.1)]), 0..40),
        ) {
            let got = group_means(&member, 4);
            for (gi, g) in got.iter().enumerate() {
                let vals: Vec<f64> = member.iter().filter(|m| m.0 == gi).map(|m| m.1).collect();
                if vals.is_empty() {
                    continue;
                }
                let want = average(vals);
                prop_assert!(g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()), "{} vs {}", g, want);
            }
        }

        /// Quantiles by selection equal those read off a stable sort, the
        /// sign of a zero included.
        #[test]
        fn quantile_by_selection_equals_sorting(
            vals in proptest::collection::vec(prop_oneof![Just(f64::NAN), Just(0.0), Just(-0.0), Just(1.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY), -3.0f64..3.0], 1..40),
            q in prop_oneof![Just(0.0), Just(1.0), Just(0.5), 0.0f64..1.0],
        ) {
            let mut sorted = vals.clone();
            sorted.sort_by(cmp_nan_first);
            let rank = q * (sorted.len() as f64 - 1.0);
            let lower = rank.floor().max(0.0);
            let upper = (lower + 1.0).min(sorted.len() as f64 - 1.0);
            let weight = rank - rank.floor();
            let want = sorted[lower as usize] * (1.0 - weight) + sorted[upper as usize] * weight;
            let got = quantile(q, &mut vals.clone());
            prop_assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{} vs {}", got, want);
            let (a, b) = ranked_pair(&mut vals.clone(), lower as usize, upper as usize);
            for (x, y) in [(a, sorted[lower as usize]), (b, sorted[upper as usize])] {
                prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{} vs {}", x, y);
            }
        }

        /// Selecting the first k equals a stable sort then truncation, ties
        /// and NaNs included.
        #[test]
        fn first_k_equals_stable_sort(
            vals in proptest::collection::vec(prop_oneof![Just(f64::NAN), Just(0.0), Just(-0.0), Just(1.0), -3.0f64..3.0], 0..40),
            k in 1usize..45,
            desc in proptest::bool::ANY,
        ) {
            let cmp: fn(f64, f64) -> std::cmp::Ordering = if desc { cmp_desc } else { cmp_asc_nan_last };
            let els: Vec<El> = vals.iter().enumerate().map(|(i, &v)| El { labels: Labels::from_pairs([("i", i.to_string())]), v, drop_name: false, src_t: 0 }).collect();
            let mut want = els.clone();
            want.sort_by(|a, b| cmp(a.v, b.v));
            want.truncate(k);
            let mut got = els;
            first_k_stable(&mut got, k, cmp);
            let names = |v: &[El]| v.iter().map(|e| e.labels.to_string()).collect::<Vec<_>>();
            prop_assert_eq!(names(&got), names(&want));
        }
    }

    #[test]
    fn average_survives_overflow() {
        assert_eq!(average([f64::MAX, f64::MAX]), f64::MAX);
        assert_eq!(average([1.0, 2.0, 3.0]), 2.0);
        assert!((variance([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) - 4.0).abs() < 1e-12);
    }
}
