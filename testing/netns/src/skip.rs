//! The environment gate shared by every root / netns test of the workspace.

use std::fmt::Display;

use crate::lab::Lab;

/// Whether the run is under CI (`CI=true`): then a missing environment fails
/// the test instead of skipping it.
#[must_use]
pub fn ci_requires_environment() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Reports that `test` cannot run here because of `reason`: prints
/// `SKIP <test>: <reason>` and returns when `CI` is not `true`, panics when it is.
///
/// Use it for any other missing prerequisite (a kernel module, a tool);
/// [`lab_or_skip!`](crate::lab_or_skip) calls it for the lab's own checks.
///
/// ```no_run
/// let have_ipvs = std::path::Path::new("/proc/net/ip_vs").exists();
/// if !have_ipvs {
///     lb_testing_netns::skip_or_fail(lb_testing_netns::test_name!(), "no IPVS in this kernel");
///     return;
/// }
/// ```
pub fn skip_or_fail(test: &str, reason: impl Display) {
    if ci_requires_environment() {
        panic!("{test}: required test environment missing and CI=true: {reason}");
    }
    eprintln!("SKIP {test}: {reason}");
}

/// What [`lab_or_skip!`](crate::lab_or_skip) expands to; call the macro instead.
#[doc(hidden)]
#[must_use]
pub fn lab_or_skip(test: &str, tag: &str, programs: &[&str]) -> Option<Lab> {
    match Lab::with_programs(tag, programs) {
        Ok(lab) => Some(lab),
        Err(e) if e.is_environment() => {
            skip_or_fail(test, &e);
            None
        }
        Err(e) => panic!("{test}: cannot create the netns lab: {e}"),
    }
}

/// The path of the enclosing function, e.g. `my_crate::tests::netns_ping`.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        fn name_of<T>(_: T) -> &'static str {
            ::std::any::type_name::<T>()
        }
        let name = name_of(f);
        let name = name.strip_suffix("::f").unwrap_or(name);
        name.strip_suffix("::{{closure}}").unwrap_or(name)
    }};
}

/// Creates a [`Lab`](crate::Lab), or skips the test when the machine cannot
/// run it (not root, `ip` missing, no kernel netns, or one of the extra
/// programs missing).
///
/// Evaluates to `Option<Lab>`: `None` after printing `SKIP <test>: <reason>`
/// when `CI` is not `true`; with `CI=true` it panics instead, so CI never
/// passes a test that did not run. Any other error (a real failure) panics.
///
/// ```no_run
/// # use lb_testing_netns::lab_or_skip;
/// # fn netns_example() {
/// let Some(lab) = lab_or_skip!("vrrp", "keepalived") else { return };
/// let r1 = lab.add_host("r1").unwrap();
/// # let _ = r1;
/// # }
/// ```
#[macro_export]
macro_rules! lab_or_skip {
    ($tag:expr $(, $program:expr)* $(,)?) => {
        $crate::__lab_or_skip($crate::test_name!(), $tag, &[$($program),*])
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_name_is_the_enclosing_function() {
        let name = crate::test_name!();
        assert_eq!(
            name,
            "lb_testing_netns::skip::tests::test_name_is_the_enclosing_function"
        );
        let closure = || crate::test_name!();
        let in_closure = closure();
        assert_eq!(in_closure, name);
    }
}
