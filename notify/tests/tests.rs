//! Integration tests: delivery against a loopback receiver that checks payloads the way
//! Mattermost does, the queue, golden message formats and the CLI.

mod receiver;

mod delivery;
mod golden;
mod queue;

#[cfg(feature = "cli")]
mod cli;
