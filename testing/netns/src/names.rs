//! Naming rules: namespace names that are unique per test and process, and
//! checks on the names tests choose.
//!
//! A namespace is named `lbt-<pid>-<n>-<tag>-<host>`: `lbt-` marks it as ours,
//! `<pid>` is the owning test process (so a later run can tell a leftover of a
//! killed process from a live lab of a parallel test), `<n>` counts labs
//! within the process (plain `cargo test` runs tests as threads of one
//! process) and `<tag>-<host>` keep it readable in `ip netns list`.

use crate::error::{Error, Result};

/// Prefix of every namespace this crate creates.
pub(crate) const NETNS_PREFIX: &str = "lbt-";

/// Longest lab tag accepted.
pub const MAX_TAG_LEN: usize = 12;
/// Longest host name accepted.
pub const MAX_HOST_LEN: usize = 15;
/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_IFNAME_LEN: usize = 15;

/// The namespace-name prefix of lab number `n` of process `pid`.
pub(crate) fn lab_prefix(pid: u32, n: u32, tag: &str) -> String {
    format!("{NETNS_PREFIX}{pid}-{n}-{tag}")
}

/// The owning pid encoded in one of our namespace names, `None` for a name
/// that is not ours.
pub(crate) fn owner_pid(netns: &str) -> Option<u32> {
    let rest = netns.strip_prefix(NETNS_PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    pid.parse().ok()
}

fn check(
    what: &'static str,
    name: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    rule: &'static str,
) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > max {
        match what {
            "tag" => "longer than 12 bytes",
            _ => "longer than 15 bytes",
        }
    } else if !name.chars().all(allowed) {
        rule
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    })
}

/// A lab tag: 1 to 12 of `[a-z0-9_]`.
pub(crate) fn check_tag(tag: &str) -> Result<()> {
    check(
        "tag",
        tag,
        MAX_TAG_LEN,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
        "only a-z, 0-9 and _ are allowed",
    )
}

/// A host name: 1 to 15 of `[a-z0-9_-]`.
pub(crate) fn check_host(name: &str) -> Result<()> {
    check(
        "host",
        name,
        MAX_HOST_LEN,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-',
        "only a-z, 0-9, _ and - are allowed",
    )
}

/// An interface name as the kernel's `dev_valid_name` wants it: 1 to 15
/// bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub(crate) fn check_ifname(name: &str) -> Result<()> {
    check(
        "interface",
        name,
        MAX_IFNAME_LEN,
        |c| c.is_ascii_graphic() && c != '/' && c != ':',
        "only printable ASCII without / or : is allowed",
    )?;
    if name == "." || name == ".." {
        return Err(Error::InvalidName {
            what: "interface",
            name: name.to_owned(),
            reason: "`.` and `..` are reserved",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trips_the_pid() {
        for pid in [1, 42, 4_194_304] {
            let netns = format!("{}-r1", lab_prefix(pid, 7, "vrrp"));
            assert_eq!(owner_pid(&netns), Some(pid));
        }
    }

    #[test]
    fn foreign_names_have_no_owner() {
        for name in [
            "",
            "lbt-",
            "lbt-12",
            "lbt-x-1-a-b",
            "lbt--1",
            "other-12-0-a-b",
            "lbt-12-",
        ] {
            assert_eq!(owner_pid(name), None, "{name}");
        }
    }

    #[test]
    fn tag_rules() {
        assert!(check_tag("vrrp_v3").is_ok());
        assert!(check_tag("abcdefghijkl").is_ok());
        for bad in ["", "abcdefghijklm", "Vrrp", "a-b", "a b"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_rules() {
        assert!(check_host("real-1").is_ok());
        for bad in ["", "sixteen-chars-xx", "R1", "a.b", "a/b"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ifname_rules() {
        for good in ["eth0", "veth-cr.100", "abcdefghijklmno"] {
            assert!(check_ifname(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "abcdefghijklmnop"] {
            let err = check_ifname(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidName {
                        what: "interface",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
