//! An in-memory IPVS table with the kernel's semantics for table operations
//! (`ip_vs_ctl.c`): the reference model for [`crate::reconcile`], and what
//! [`crate::save::parse_table`] runs a restore file against.

use std::{collections::BTreeMap, net::IpAddr};

use crate::{
    ops::Op,
    types::{Dest, Service, ServiceKey, Table, VirtualService},
};

/// A service's destinations by `(addr, port)`.
type DestMap = BTreeMap<(IpAddr, u16), Dest>;

/// The services and destinations, keyed as the kernel keys them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    services: BTreeMap<ServiceKey, (Service, DestMap)>,
}

impl Model {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A model holding `table` (later duplicates win).
    pub fn from_table(table: &Table) -> Self {
        let mut m = Self::new();
        for vs in &table.services {
            let dests = vs.dests.iter().map(|d| (d.id(), d.clone())).collect();
            m.services
                .insert(vs.service.key, (vs.service.normalized(), dests));
        }
        m
    }

    /// Applies one operation; errors are the kernel's positive errno
    /// (`EEXIST`, `ESRCH`, `ENOENT`, `ERANGE`). Operations that do not touch
    /// the table (timeouts, daemons, zero, get) are accepted and ignored.
    ///
    /// ```
    /// use lb_ipvs::{Op, Service, ServiceKey, model::Model};
    /// let key = ServiceKey::fwmark(7);
    /// let mut m = Model::new();
    /// assert_eq!(m.apply(&Op::AddService(Service::new(key))), Ok(()));
    /// assert_eq!(m.apply(&Op::AddService(Service::new(key))), Err(libc::EEXIST));
    /// ```
    pub fn apply(&mut self, op: &Op) -> Result<(), i32> {
        match op {
            Op::AddService(s) => {
                if self.services.contains_key(&s.key) {
                    return Err(libc::EEXIST);
                }
                self.services
                    .insert(s.key, (s.normalized(), BTreeMap::new()));
            }
            Op::EditService(s) => {
                let entry = self.services.get_mut(&s.key).ok_or(libc::ESRCH)?;
                entry.0 = s.normalized();
            }
            Op::DelService(k) => {
                self.services.remove(k).ok_or(libc::ESRCH)?;
            }
            Op::AddDest(k, d) => {
                let (_, dests) = self.services.get_mut(k).ok_or(libc::ESRCH)?;
                check_dest(d)?;
                if dests.contains_key(&d.id()) {
                    return Err(libc::EEXIST);
                }
                dests.insert(d.id(), d.clone());
            }
            Op::EditDest(k, d) => {
                let (_, dests) = self.services.get_mut(k).ok_or(libc::ESRCH)?;
                check_dest(d)?;
                let slot = dests.get_mut(&d.id()).ok_or(libc::ENOENT)?;
                *slot = d.clone();
            }
            Op::DelDest(k, addr, port) => {
                let (_, dests) = self.services.get_mut(k).ok_or(libc::ESRCH)?;
                dests.remove(&(*addr, *port)).ok_or(libc::ENOENT)?;
            }
            Op::Flush => self.services.clear(),
            Op::Zero(Some(k)) | Op::GetService(k) => {
                if !self.services.contains_key(k) {
                    return Err(libc::ESRCH);
                }
            }
            Op::Zero(None) | Op::SetTimeouts(_) | Op::StartDaemon(_) | Op::StopDaemon(_) => {}
        }
        Ok(())
    }

    /// The table, sorted by key.
    pub fn to_table(&self) -> Table {
        Table {
            services: self
                .services
                .values()
                .map(|(s, d)| VirtualService {
                    service: s.clone(),
                    dests: d.values().cloned().collect(),
                })
                .collect(),
        }
    }
}

/// `ip_vs_add_dest`/`ip_vs_edit_dest` argument checks.
fn check_dest(d: &Dest) -> Result<(), i32> {
    if d.weight < 0 || d.l_threshold > d.u_threshold {
        return Err(libc::ERANGE);
    }
    Ok(())
}
