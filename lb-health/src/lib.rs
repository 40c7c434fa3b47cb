//! `lb-health`: keepalived's health checkers (TCP, HTTP/SSL with digest, SMTP,
//! DNS, UDP, PING, MISC, FILE) with rise/fall hysteresis.
//!
//! The check state machine is synchronous and clock-free; the probes run on
//! tokio. It does **not** change any load-balancer state itself: it reports
//! up / down / weight events for the caller to apply.
#![forbid(unsafe_code)]
