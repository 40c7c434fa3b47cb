//! Errors. Every kernel failure names the operation and the service or
//! destination it was about.

use std::io;

use crate::ops::Op;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The generic-netlink controller does not know the "IPVS" family.
    #[error(
        "the IPVS generic-netlink family is not registered: the ip_vs kernel module is not \
         loaded (try `modprobe ip_vs`) or the kernel lacks CONFIG_IP_VS"
    )]
    FamilyNotFound,
    /// The kernel refused for lack of `CAP_NET_ADMIN`.
    #[error("permission denied: {op} needs CAP_NET_ADMIN in the network namespace (run as root)")]
    PermissionDenied {
        /// The operation.
        op: String,
    },
    /// The kernel rejected an operation.
    #[error("{op}: {message} (errno {errno})")]
    Kernel {
        /// The operation, with its service/destination.
        op: String,
        /// The positive errno.
        errno: i32,
        /// ipvsadm's explanation of the errno for this operation.
        message: String,
    },
    /// Some operations of a batch failed; the others were applied.
    #[error("{} of {total} operations failed; first: {}", failures.len(), failures[0].1)]
    Batch {
        /// Index into the batch and the error, for each failed operation.
        failures: Vec<(usize, Self)>,
        /// Operations in the batch.
        total: usize,
    },
    /// A socket call failed.
    #[error("netlink {context}: {source}")]
    Io {
        /// Which call.
        context: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A reply could not be decoded.
    #[error("malformed IPVS netlink reply: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
    /// A reply lacked a required attribute.
    #[error("IPVS netlink reply lacks {attr}")]
    Missing {
        /// The attribute name.
        attr: &'static str,
    },
}

impl Error {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Self::Malformed {
            detail: detail.into(),
        }
    }

    pub(crate) fn missing(attr: &'static str) -> Self {
        Self::Missing { attr }
    }

    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        Self::Io { context, source }
    }

    /// The kernel's answer to `op` was `-errno`.
    pub(crate) fn from_errno(op: &Op, errno: i32) -> Self {
        if errno == libc::EPERM || errno == libc::EACCES {
            return Self::PermissionDenied { op: op.to_string() };
        }
        Self::Kernel {
            op: op.to_string(),
            errno,
            message: strerror(op, errno),
        }
    }

    /// The kernel's answer to a query (`what`, e.g. "list services") was
    /// `-errno`.
    pub(crate) fn from_query_errno(what: &str, errno: i32) -> Self {
        if errno == libc::EPERM || errno == libc::EACCES {
            return Self::PermissionDenied {
                op: what.to_owned(),
            };
        }
        Self::Kernel {
            op: what.to_owned(),
            errno,
            message: generic_strerror(errno),
        }
    }

    /// The errno of a kernel rejection, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            Self::PermissionDenied { .. } => Some(libc::EPERM),
            _ => None,
        }
    }
}

/// libipvs' `ipvs_strerror`: the message ipvsadm prints for `errno` after
/// `op`.
pub fn strerror(op: &Op, errno: i32) -> String {
    use Op::*;
    let specific = match (op, errno) {
        (AddService(_), libc::EEXIST) => Some("Service already exists"),
        (AddService(_) | EditService(_), libc::ENOENT) => {
            Some("Scheduler or persistence engine not found")
        }
        (EditService(_) | DelService(_) | Zero(Some(_)) | GetService(_), libc::ESRCH) => {
            Some("No such service")
        }
        (AddDest(..) | EditDest(..) | DelDest(..), libc::ESRCH) => Some("Service not defined"),
        (AddDest(..), libc::EEXIST) => Some("Destination already exists"),
        (EditDest(..) | DelDest(..), libc::ENOENT) => Some("No such destination"),
        (StartDaemon(_), libc::EEXIST) => Some("Daemon has already run"),
        (StopDaemon(_), libc::ESRCH) => Some("No daemon is running"),
        _ => None,
    };
    match specific {
        Some(s) => s.to_owned(),
        None => generic_strerror(errno),
    }
}

/// The operation-independent part of `ipvs_strerror`, else `strerror`.
fn generic_strerror(errno: i32) -> String {
    match errno {
        libc::EPERM => "Permission denied (you must be root)".into(),
        libc::EINVAL => {
            "Invalid operation.  Possibly wrong module version, address not unicast, ...".into()
        }
        libc::ENOPROTOOPT => "Protocol not available".into(),
        libc::ENOMEM => "Memory allocation problem".into(),
        libc::EOPNOTSUPP => "Operation not supported with IPv6".into(),
        libc::EAFNOSUPPORT => "Operation not supported with specified address family".into(),
        libc::EMSGSIZE => "Module is wrong version".into(),
        _ => io::Error::from_raw_os_error(errno).to_string(),
    }
}
