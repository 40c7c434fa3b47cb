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
