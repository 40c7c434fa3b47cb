//! Test-only kernel VM harness.
