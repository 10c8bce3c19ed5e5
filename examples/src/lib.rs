//! Small binaries composing the crates into the monitoring stack (see `src/bin`).
