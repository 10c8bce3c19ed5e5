//! Allocator settings the server binaries share (each includes this file
//! as its module `alloc`).
//!
//! The servers run on mimalloc (each binary sets it as the global
//! allocator). By default mimalloc hands memory that has stayed free for
//! 10 ms back to the kernel; a query server that answers a request every
//! few tens of milliseconds then faults the same pages in again (and the
//! kernel zeroes them) on every query. Measured with
//! `benches/compare/promql_queries.py`'s `avg by (job, kind)
//! (node_memory_bytes)`, alternating with Prometheus: 5.2 ms per query
//! with the default against 3.6-3.7 ms when free memory is kept for 1 s.

/// How long freed memory stays with the process before mimalloc returns it
/// to the kernel, in milliseconds (mimalloc's arenas wait ten times as
/// long). An idle server still gives its memory back within seconds.
pub const PURGE_DELAY_MS: i64 = 1000;

/// mimalloc's `mi_option_purge_delay` (position in its `mi_option_t`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies the settings above. Call it first thing in `main`, before any
/// other thread starts: mimalloc's option setter is not thread safe. Has
/// no effect unless mimalloc is the global allocator.
pub fn tune() {
    set_option(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
}

#[allow(unsafe_code)]
fn set_option(option: libmimalloc_sys::mi_option_t, value: i64) {
    // SAFETY: a plain FFI call with in-range integer arguments; `tune`'s
    // contract (called before other threads start) covers the setter's
    // lack of thread safety.
    unsafe { libmimalloc_sys::mi_option_set(option, value as std::os::raw::c_long) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index points at `purge_delay` in the mimalloc built
    /// here: it holds purge_delay's documented default (10 ms) until `tune`
    /// sets it (the options next to it default to 0 or 1).
    #[test]
    #[allow(unsafe_code)]
    fn purge_delay_index_is_right() {
        // SAFETY: plain FFI getter.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let before = get();
        assert!(before == 10 || before == PURGE_DELAY_MS as std::os::raw::c_long, "option {MI_OPTION_PURGE_DELAY} = {before}");
        tune();
        assert_eq!(get(), PURGE_DELAY_MS as std::os::raw::c_long);
    }
}
