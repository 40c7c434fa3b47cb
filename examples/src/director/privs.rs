//! Users for checker scripts.

/// Looks `user` (and `group`, default the user's primary group) up in
/// `/etc/passwd` and `/etc/group`; numeric ids are taken as they are.
pub fn lookup_user(user: &str, group: Option<&str>) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let (uid, mut gid) = match user.parse::<u32>() {
        Ok(u) => (u, u),
        Err(_) => passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })?,
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
                groups.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[0] == g).then(|| f[2].parse().ok())?
                })?
            }
        };
    }
    Some((uid, gid))
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_and_numeric() {
        assert_eq!(super::lookup_user("root", None), Some((0, 0)));
        assert_eq!(super::lookup_user("1234", Some("99")), Some((1234, 99)));
        assert_eq!(super::lookup_user("no-such-user-here", None), None);
    }
}

/// Capabilities the running director keeps.
pub mod caps {
    /// `CAP_SETGID`.
    pub const SETGID: u32 = 6;
    /// `CAP_SETUID`.
    pub const SETUID: u32 = 7;
    /// `CAP_NET_ADMIN`: addresses, nftables, (IPVS).
    pub const NET_ADMIN: u32 = 12;
    /// `CAP_NET_RAW`: VRRP, ARP and packet sockets, ICMP checks.
    pub const NET_RAW: u32 = 13;
}

/// The highest capability number we drop from the bounding set.
const CAP_LAST: u32 = 63;

/// Drops every capability not in `keep` from the effective, permitted,
/// inheritable, ambient and bounding sets of the calling thread.
/// Capabilities are per thread: call this before any other thread exists
/// (threads created later inherit the reduced sets).
#[allow(unsafe_code)] // capset(2) and prctl(2) have no safe wrapper in libc.
pub fn drop_capabilities(keep: &[u32]) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut mask = [0u32; 2];
    for &c in keep {
        if c < 64 {
            mask[(c / 32) as usize] |= 1 << (c % 32);
        }
    }
    for cap in 0..=CAP_LAST {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers.
        // EINVAL for numbers beyond the kernel's last capability is expected.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: mask[0],
            permitted: mask[0],
            inheritable: 0,
        },
        Data {
            effective: mask[1],
            permitted: mask[1],
            inheritable: 0,
        },
    ];
    // SAFETY: `hdr` and `data` are live, correctly laid out
    // `__user_cap_header_struct` / two `__user_cap_data_struct`s
    // (version 3 reads two), and the kernel only reads them.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
