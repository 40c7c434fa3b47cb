//! Test-only network-namespace lab.
