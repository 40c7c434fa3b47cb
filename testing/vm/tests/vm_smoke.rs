//! Smoke tests of the kernel VM: real IPVS and ipip from the Debian kernel,
//! output separation, exit codes, time limits, shares, and running this test
//! binary's own tests inside the VM. Each test boots one VM (~8 s with TCG).

use std::process::Command;

use lb_testing_vm::vm_or_skip;

#[test]
fn vm_ipvsadm_service_destination_and_ipip() {
    let Some(vm) = vm_or_skip() else { return };
    let script = "\
        ipvsadm -A -t 10.0.0.1:80 -s wlc && \
        ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3 && \
        ipvsadm -Ln && \
        modprobe ipip && \
        grep -o '^ipip ' /proc/modules";
    let out = vm.run(&["sh", "-c", script]).unwrap();
    let stdout = out.stdout_str();
    assert!(
        out.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        out.stderr_str()
    );
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        lines.contains(&vec!["TCP", "10.0.0.1:80", "wlc"]),
        "service missing from:\n{stdout}"
    );
    assert!(
        lines.contains(&vec!["->", "10.0.0.2:80", "Masq", "3", "0", "0"]),
        "destination missing from:\n{stdout}"
    );
    assert_eq!(
        lines.last(),
        Some(&vec!["ipip"]),
        "ipip not loaded:\n{stdout}"
    );
}

#[test]
fn vm_exit_code_output_separation_and_share() {
    let Some(vm) = vm_or_skip() else { return };
    let dir = std::env::temp_dir().join(format!("lbvm-share-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let release = vm.assets().release.clone();
    let out = vm
        .share(&dir)
        .env("LB_SHARE_DIR", &dir)
        .run(&[
            "sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; echo \"$LB_IN_VM $(uname -r)\" > \"$LB_SHARE_DIR/from-guest\"; exit 3",
        ])
        .unwrap();
    let from_guest = std::fs::read_to_string(dir.join("from-guest"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout_str(), "to-stdout\n");
    assert_eq!(out.stderr_str(), "to-stderr\n");
    let console = String::from_utf8_lossy(&out.console);
    assert!(console.contains("LBVM-EXIT:3"), "console:\n{console}");
    assert!(!console.contains("to-stdout"), "console:\n{console}");
    let from_guest = from_guest.unwrap();
    let (flag, release_in_guest) = from_guest.trim().split_once(' ').unwrap();
    assert_eq!(flag, "1");
    assert_eq!(release_in_guest, release);
}

/// Through the `lbvm` binary: the time limit kills qemu (`Error::Timeout` in the
/// API) and maps to exit code 124.
#[test]
fn vm_time_limit_kills_a_hanging_command() {
    // The gate (skip or fail) and the prepared kernel, as for the other tests.
    let Some(_vm) = vm_or_skip() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_lbvm"))
        .args([
            "run",
            "--timeout",
            "20",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 1000",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "stderr:\n{stderr}");
    assert!(
        stderr.contains("did not finish within 20s"),
        "stderr:\n{stderr}"
    );
    // Whatever the command printed before it was killed is passed through.
    assert!(
        b"started\n".starts_with(&out.stdout),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn vm_own_test_runs_inside_with_kernel_ipvs() {
    lb_testing_vm::in_vm!({
        assert!(lb_testing_vm::in_vm(), "the body runs only inside the VM");
        lb_testing_vm::sh("ipvsadm -A -u 10.0.0.3:53 -s rr");
        // The kernel's own view: /proc/net/ip_vs lists services in hex.
        let table = std::fs::read_to_string("/proc/net/ip_vs").unwrap();
        assert!(table.contains("UDP  0A000003:0035 rr"), "{table}");
    });
}

/// A wrong test name must not pass silently: libtest exits 0 when `--exact`
/// matches nothing, so `run_test_in_vm` also checks that one test passed.
#[test]
fn vm_unknown_test_name_fails_instead_of_passing() {
    if lb_testing_vm::in_vm() || vm_or_skip().is_none() {
        return;
    }
    let panic = std::panic::catch_unwind(|| {
        lb_testing_vm::run_test_in_vm("no_such_test", |vm| vm);
    })
    .expect_err("a test that does not exist cannot pass");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("did not run in the VM"), "{msg}");
}
