//! The `director`: keepalived.conf in, VRRP + health checks + a dataplane
//! out, composed from the `lb-*` crates.
//!
//! * [`plan`]: the pure composition core (config + health + mastership →
//!   the table the dataplane must hold).
//! * [`checks`], [`vrrp`]: the configuration mapped onto `lb-health` and
//!   `lb-vrrp` types.
//! * [`userspace`]: the `lb-forward` dataplane, reconciling plans.
//! * [`ipvs`]: the kernel IPVS dataplane, reconciling plans.
//! * [`marks`]: the `fwmark_rules` of planned fwmark services, in
//!   nftables and the forwarder's classifier.
//! * [`daemon`]: the running director (signals, reload, status, metrics).
//! * [`lab`]: the one-command network-namespace demonstration.

pub mod checks;
pub mod daemon;
pub mod ipvs;
pub mod lab;
pub mod marks;
pub mod plan;
pub mod privs;
pub mod sys;
pub mod track;
pub mod userspace;
pub mod vrrp;
