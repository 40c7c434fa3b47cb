//! Shared fixtures for the criterion benchmarks in `benches/benches/`.
//! Results and ratios are reported in `benches/README.md`.
