//! Integration tests of the exporter crate: fixture conformance against
//! node_exporter 1.5.0's e2e output, and live comparison with Debian's
//! node_exporter and promtool.

mod fixture;
mod garbage;
mod live;
mod support;
