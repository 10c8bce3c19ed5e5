//! Log server and agent tests over the built binaries and real clients.

mod agent;
mod common;
mod python_client;
mod tail;
