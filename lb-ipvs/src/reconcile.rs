//! Reconciliation: the minimal set of operations that turn the kernel's
//! current table into a desired one — exactly one operation per service or
//! destination that differs, none for those that match.
//!
//! Services and destinations are matched by identity (service key;
//! destination address and port). A service or destination present on both
//! sides with a different configuration is edited in place (`SET_SERVICE`,
//! `SET_DEST`), never deleted and re-added, so its connections and counters
//! survive. Deleting a service deletes its destinations with it.

use std::collections::BTreeMap;

use crate::{
    ops::Op,
    types::{Dest, Table},
};

/// The operations that make `current` equal to `desired`, in an order the
/// kernel accepts: service deletions, then per service edits, destination
/// deletions, edits and additions. Within `desired`, later duplicates of a
/// key win.
///
/// ```
/// use lb_ipvs::{Dest, Op, Service, ServiceKey, Table, VirtualService, reconcile::diff};
/// let key = ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80);
/// let d = Dest::new("10.0.1.1".parse().unwrap(), 80);
/// let desired = Table {
///     services: vec![VirtualService { service: Service::new(key), dests: vec![d.clone()] }],
/// };
/// assert_eq!(
///     diff(&Table::default(), &desired),
///     vec![Op::AddService(Service::new(key)), Op::AddDest(key, d)]
/// );
/// assert!(diff(&desired, &desired).is_empty());
/// ```
pub fn diff(current: &Table, desired: &Table) -> Vec<Op> {
    let cur: BTreeMap<_, _> = current
        .services
        .iter()
        .map(|vs| (vs.service.key, vs))
        .collect();
    let want: BTreeMap<_, _> = desired
        .services
        .iter()
        .map(|vs| (vs.service.key, vs))
        .collect();
    let mut ops = Vec::new();
    for key in cur.keys() {
        if !want.contains_key(key) {
            ops.push(Op::DelService(*key));
        }
    }
    for (key, vs) in &want {
        let wanted_dests: BTreeMap<_, &Dest> = vs.dests.iter().map(|d| (d.id(), d)).collect();
        let Some(have) = cur.get(key) else {
            ops.push(Op::AddService(vs.service.normalized()));
            ops.extend(
                wanted_dests
                    .values()
                    .map(|d| Op::AddDest(*key, (*d).clone())),
            );
            continue;
        };
        if have.service.normalized() != vs.service.normalized() {
            ops.push(Op::EditService(vs.service.normalized()));
        }
        let have_dests: BTreeMap<_, &Dest> = have.dests.iter().map(|d| (d.id(), d)).collect();
        for (id, _) in have_dests
            .iter()
            .filter(|(id, _)| !wanted_dests.contains_key(id))
        {
            ops.push(Op::DelDest(*key, id.0, id.1));
        }
        for (id, d) in &wanted_dests {
            match have_dests.get(id) {
                None => ops.push(Op::AddDest(*key, (*d).clone())),
                Some(h) if h != d => ops.push(Op::EditDest(*key, (*d).clone())),
                Some(_) => {}
            }
        }
    }
    ops
}
