//! `lb-ipvs`: a client for the Linux IPVS generic-netlink family, with
//! ipvsadm's save/restore format and listings.
//!
//! It programs the kernel's IPVS tables (services, destinations, sync daemons,
//! timeouts). It does **not** schedule or forward anything itself: the kernel
//! does that.
