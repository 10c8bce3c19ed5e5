//! PromQL parser and evaluator over model read traits, and the Prometheus HTTP API.
