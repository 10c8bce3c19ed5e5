//! Integration tests of the binaries against real tools (Prometheus,
//! promtool, node_exporter, Loki clients) on loopback. Tests whose tool is
//! not installed say so and pass; `.ci/run` installs them all.

mod support;
mod alerter;
mod prometheus;
mod logs;
mod stack;
