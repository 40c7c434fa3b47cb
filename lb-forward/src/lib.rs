//! `lb-forward`: a userspace L4 forwarder in the style of LVS, with direct
//! routing (DR), NAT and tunnelling (IPIP/GUE/GRE), for hosts whose kernel has
//! no IPVS.
//!
//! The core (parse, classify, connection table, rewrite) is pure and
//! allocation-free per packet; the raw-socket I/O sits in a Linux-only module.
//! It does **not** decide which backends are healthy or own the VIPs.
