//! Integration tests of the `model` crate (one test binary; modules below).

mod exposition;
