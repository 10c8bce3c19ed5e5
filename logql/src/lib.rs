//! LogQL parser and evaluator over model log read traits, and the Loki HTTP API.
