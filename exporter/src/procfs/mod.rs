//! Pure parsers for files under `/proc`, one module per kernel file.
//!
//! Every parser takes the file's text and returns a typed value or a
//! [`ParseError`] with a line number; none does I/O and none panics on odd
//! input (each module has a "garbage never panics" property test).

pub mod conntrack_stat;
pub mod cpuinfo;
pub mod diskstats;
pub mod file_nr;
pub mod loadavg;
pub mod meminfo;
pub mod mounts;
pub mod netstat;
pub mod pressure;
pub mod schedstat;
pub mod sockstat;
pub mod softnet;
pub mod stat;
pub mod vmstat;

use crate::error::ParseError;

/// Parses a decimal unsigned integer field, naming it in the error.
pub(crate) fn u64_field(tok: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    tok.parse::<u64>()
        .map_err(|_| ParseError::new(line, format!("{what}: not an unsigned integer: {tok:?}")))
}

/// Parses a hexadecimal unsigned integer field.
pub(crate) fn hex_field(tok: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    u64::from_str_radix(tok, 16)
        .map_err(|_| ParseError::new(line, format!("{what}: not a hex integer: {tok:?}")))
}

/// Parses a float field the way Go's `strconv.ParseFloat` accepts it (the
/// forms kernel files use: decimal, exponent).
pub(crate) fn f64_field(tok: &str, line: usize, what: &str) -> Result<f64, ParseError> {
    tok.parse::<f64>()
        .map_err(|_| ParseError::new(line, format!("{what}: not a number: {tok:?}")))
}

#[cfg(test)]
pub(crate) mod garbage {
    //! Shared strategy for the "garbage never panics" property tests.
    use proptest::prelude::*;

    /// Text that looks a bit like kernel files: digits, words, separators.
    pub fn kernelish() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("cpu".to_string()),
                Just(" ".to_string()),
                Just("\n".to_string()),
                Just(":".to_string()),
                Just("=".to_string()),
                Just("\t".to_string()),
                "[0-9]{1,25}",
                "[a-zA-Z_()]{1,8}",
                "[0-9a-f]{8}",
                any::<char>().prop_map(|c| c.to_string()),
            ],
            0..60,
        )
        .prop_map(|v| v.concat())
    }
}
