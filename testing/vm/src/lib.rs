//! Test-only kernel VM: run a command, or one of your own tests, inside a
//! throwaway qemu VM booted from Debian's stock kernel, which has IPVS, ipip,
//! veth and the rest as modules even when the host kernel does not.
//!
//! The guest sees the host's root file system read-only with a tmpfs overlay on
//! top, so it runs the host's own `ipvsadm`, `keepalived` and cargo-built test
//! binaries unchanged; `modprobe` works inside (the prepared modules are bound
//! on `/lib/modules`). Each run is a fresh boot (~7 s with TCG); nothing the
//! guest writes survives except in directories shared with [`Vm::share`].
//!
//! # Running one of your tests inside the VM
//!
//! Name the test `vm_*` (nextest runs at most two at a time) and wrap its body
//! in [`in_vm!`]. Outside the VM the macro re-runs the current test binary inside
//! a VM with `--exact <this test> --nocapture` and asserts that the test ran
//! and passed; inside the VM (`LB_IN_VM=1`) it runs the body:
//!
//! ```no_run
//! #[test]
//! fn vm_ipvs_service_round_trip() {
//!     lb_testing_vm::in_vm!({
//!         // Here we are root in the VM, with the real kernel IPVS.
//!         let ok = std::process::Command::new("ipvsadm")
//!             .args(["-A", "-t", "10.0.0.1:80", "-s", "wlc"])
//!             .status()
//!             .unwrap()
//!             .success();
//!         assert!(ok);
//!     });
//! }
//! ```
//!
//! A first argument configures the VM (time limit, shares, set-up commands):
//! `in_vm!(|vm| vm.timeout(Duration::from_secs(60)), { ... })`.
//!
//! Every `in_vm!` test boots its own VM (~3 CPU-seconds). Checks that do not
//! need a pristine kernel can share one boot: call them one after another from
//! a single `vm_*` test.
//!
//! # Running a command
//!
//! ```no_run
//! let out = lb_testing_vm::Vm::new()?.run(&["ipvsadm", "-Ln"])?;
//! assert_eq!(out.status, 0);
//! # Ok::<(), lb_testing_vm::Error>(())
//! ```
//!
//! From the shell: `cargo run -p lb-testing-vm --bin lbvm -- run -- ipvsadm -Ln`.
//!
//! # When the VM is unavailable
//!
//! [`vm_or_skip`] (which [`in_vm!`] uses) returns `None` after printing why
//! when qemu or the kernel cannot be had, unless `CI=true`: then it panics, so a
//! CI run never passes by skipping.

mod assets;
mod cpio;
mod error;
mod vm;

use std::ffi::OsString;

pub use assets::{Assets, prepare, vm_dir};
pub use error::Error;
pub use vm::{DEFAULT_DUMMY_ADDRESS, Output, Stream, Vm};

/// The variable the guest sets for every command it runs.
pub const IN_VM_ENV: &str = "LB_IN_VM";

/// Whether this process runs inside the kernel VM (`LB_IN_VM=1`).
///
/// ```
/// // On the host (where doc tests run) this is false.
/// assert!(!lb_testing_vm::in_vm() || std::env::var("LB_IN_VM").as_deref() == Ok("1"));
/// ```
pub fn in_vm() -> bool {
    std::env::var_os(IN_VM_ENV).is_some_and(|v| v == "1")
}

/// Whether `CI=true`: missing environments are then failures, not skips.
pub fn is_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| v == "true")
}

/// A ready [`Vm`] (preparing the kernel if needed), or `None` after printing
/// why the VM is unavailable.
///
/// # Panics
///
/// When the VM is unavailable and `CI=true`.
///
/// ```no_run
/// let Some(vm) = lb_testing_vm::vm_or_skip() else { return };
/// let out = vm.run(&["true"]).unwrap();
/// assert!(out.success());
/// ```
pub fn vm_or_skip() -> Option<Vm> {
    match Vm::new() {
        Ok(vm) => Some(vm),
        Err(e) => {
            assert!(
                !is_ci(),
                "the kernel VM is unavailable and CI=true, so this is a failure: {e}"
            );
            eprintln!("SKIP: the kernel VM is unavailable: {e}");
            None
        }
    }
}

/// Runs the test named `test_name` (its libtest path, e.g. `tests::vm_foo`) from
/// the current test binary inside a VM configured by `configure`, and panics
/// unless it ran and passed. Skips as [`vm_or_skip`] does. [`in_vm!`] calls this
/// with the name of the enclosing test.
///
/// ```no_run
/// # fn real_work() {}
/// #[test]
/// fn vm_by_name() {
///     if lb_testing_vm::in_vm() {
///         real_work();
///     } else {
///         lb_testing_vm::run_test_in_vm("vm_by_name", |vm| vm);
///     }
/// }
/// ```
///
/// # Panics
///
/// When the test fails or does not run in the VM, when the VM fails, or when
/// the VM is unavailable and `CI=true`.
pub fn run_test_in_vm(test_name: &str, configure: impl FnOnce(Vm) -> Vm) {
    let Some(vm) = vm_or_skip() else { return };
    let exe = std::env::current_exe().expect("the current test binary's path");
    let vm = configure(vm.stream(Stream::Lines));
    let argv: [OsString; 5] = [
        exe.into(),
        "--exact".into(),
        test_name.into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ];
    let out = match vm.run(&argv) {
        Ok(out) => out,
        Err(e) => panic!("running {test_name} in the VM failed: {e}"),
    };
    let stdout = out.stdout_str();
    assert!(
        out.success(),
        "{test_name} failed in the VM (exit code {})",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test_name} did not run in the VM (is the name right?); its output:\n{stdout}"
    );
}

/// Runs `script` with `sh -c` and returns its stdout; panics with the script,
/// exit status, stdout and stderr if it fails. Meant for test bodies inside the
/// VM (`ipvsadm`, `ip`, `modprobe`), but works anywhere.
///
/// ```
/// assert_eq!(lb_testing_vm::sh("echo hi; echo there"), "hi\nthere\n");
/// ```
///
/// # Panics
///
/// When `sh` cannot be started or the script exits non-zero.
pub fn sh(script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{script}` failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs the enclosing test's body inside the kernel VM.
///
/// Outside the VM it re-runs the enclosing test in a VM (see
/// [`run_test_in_vm`]); inside it runs the block. The optional first argument
/// is a `FnOnce(Vm) -> Vm` that configures the VM.
///
/// ```no_run
/// use std::time::Duration;
///
/// #[test]
/// fn vm_modprobe_ipip() {
///     lb_testing_vm::in_vm!(|vm| vm.timeout(Duration::from_secs(60)), {
///         let st = std::process::Command::new("modprobe").arg("ipip").status().unwrap();
///         assert!(st.success());
///     });
/// }
/// ```
#[macro_export]
macro_rules! in_vm {
    ($body:block) => {
        $crate::in_vm!(|vm| vm, $body)
    };
    ($configure:expr, $body:block) => {{
        fn __lb_testing_vm_here() {}
        if $crate::in_vm() {
            $body
        } else {
            $crate::run_test_in_vm(
                &$crate::test_name_from_marker(::std::any::type_name_of_val(&__lb_testing_vm_here)),
                $configure,
            );
        }
    }};
}

/// The libtest name of the test that encloses the marker function whose type
/// name is `marker` (`crate::path::test_fn::marker` → `path::test_fn`; closure
/// segments such as `{{closure}}` from async tests are dropped). Used by
/// [`in_vm!`].
///
/// ```
/// assert_eq!(
///     lb_testing_vm::test_name_from_marker("my_crate::tests::vm_x::__lb_testing_vm_here"),
///     "tests::vm_x"
/// );
/// ```
#[doc(hidden)]
pub fn test_name_from_marker(marker: &str) -> String {
    let segments: Vec<&str> = marker.split("::").filter(|s| !s.starts_with('{')).collect();
    match segments.as_slice() {
        [_krate, path @ .., _marker] => path.join("::"),
        _ => marker.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_from_markers() {
        assert_eq!(test_name_from_marker("vm_smoke::vm_a::m"), "vm_a");
        assert_eq!(test_name_from_marker("k::a::b::vm_c::m"), "a::b::vm_c");
        assert_eq!(
            test_name_from_marker("k::vm_async::{{closure}}::m"),
            "vm_async"
        );
    }

    #[test]
    fn the_macro_marker_names_this_test() {
        fn here() {}
        assert_eq!(
            test_name_from_marker(std::any::type_name_of_val(&here)),
            "tests::the_macro_marker_names_this_test"
        );
    }
}
