//! `lbvm`: prepare the kernel VM, or run a command inside it.
//!
//! ```text
//! lbvm prepare [--refresh]
//! lbvm run [--timeout SECS] [--mem MB] [--share DIR]... [--no-dummy] [--console] -- COMMAND [ARGS...]
//! lbvm info
//! ```
//!
//! `run` exits with the command's exit code, 124 on a time-out and 125 when
//! the VM itself fails.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use lb_testing_vm::{Error, Stream, Vm};

const USAGE: &str = "\
usage:
  lbvm prepare [--refresh]     download and unpack Debian's kernel, build the initramfs
                               (cached under target/vm, or $LB_VM_DIR)
  lbvm run [OPTIONS] -- COMMAND [ARGS...]
                               boot a VM and run COMMAND as root in it (cwd and PATH
                               as on the host); exits with COMMAND's exit code
      --timeout SECS           kill the VM after SECS (default 120); exit code 124
      --mem MB                 guest memory (default 1024)
      --share DIR              share DIR read-write at the same path (repeatable)
      --no-dummy               do not create dummy0 (default: dummy0 10.0.0.254/8)
      --console                echo the kernel console to stderr
  lbvm info                    print where the prepared kernel is
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let sub = args.next().map(|s| s.to_string_lossy().into_owned());
    let rest: Vec<OsString> = args.collect();
    let result = match sub.as_deref() {
        Some("prepare") => prepare(&rest),
        Some("run") => run(rest),
        Some("info") => info(),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprint!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("lbvm: {e}");
        match e {
            Error::Timeout { .. } => ExitCode::from(124),
            _ => ExitCode::from(125),
        }
    })
}

fn prepare(args: &[OsString]) -> Result<ExitCode, Error> {
    let mut refresh = false;
    for a in args {
        match a.to_str() {
            Some("--refresh") => refresh = true,
            _ => return Ok(usage_error(&format!("unknown argument {a:?}"))),
        }
    }
    lb_testing_vm::prepare(refresh)?;
    Ok(ExitCode::SUCCESS)
}

fn info() -> Result<ExitCode, Error> {
    println!("cache: {}", lb_testing_vm::vm_dir().display());
    let a = lb_testing_vm::Assets::find()?;
    println!("kernel: {}", a.release);
    println!("kernel image: {}", a.kernel.display());
    println!("initramfs: {}", a.initramfs.display());
    println!("modules: {}", a.modules.display());
    Ok(ExitCode::SUCCESS)
}

fn run(args: Vec<OsString>) -> Result<ExitCode, Error> {
    let mut timeout = None;
    let mut mem = None;
    let mut shares = Vec::new();
    let mut dummy = true;
    let mut console = false;
    let mut it = args.into_iter();
    let mut command = Vec::new();
    while let Some(a) = it.next() {
        let number = |v: Option<OsString>, what: &str| -> Result<u64, String> {
            v.and_then(|v| v.to_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| format!("{what} needs a number"))
        };
        match a.to_str() {
            Some("--") => {
                command.extend(it.by_ref());
                break;
            }
            Some("--timeout") => match number(it.next(), "--timeout") {
                Ok(n) => timeout = Some(Duration::from_secs(n)),
                Err(e) => return Ok(usage_error(&e)),
            },
            Some("--mem") => match number(it.next(), "--mem").map(u32::try_from) {
                Ok(Ok(n)) => mem = Some(n),
                _ => return Ok(usage_error("--mem needs a number of MiB")),
            },
            Some("--share") => match it.next() {
                Some(d) => shares.push(std::path::absolute(&d).unwrap_or_else(|_| d.into())),
                None => return Ok(usage_error("--share needs a directory")),
            },
            Some("--no-dummy") => dummy = false,
            Some("--console") => console = true,
            Some(s) if s.starts_with('-') => {
                return Ok(usage_error(&format!("unknown option {s}")));
            }
            _ => {
                command.push(a);
                command.extend(it.by_ref());
                break;
            }
        }
    }
    if command.is_empty() {
        return Ok(usage_error("no command given"));
    }
    let mut vm = Vm::new()?.stream(Stream::Raw).console(console);
    if let Some(t) = timeout {
        vm = vm.timeout(t);
    }
    if let Some(m) = mem {
        vm = vm.memory_mb(m);
    }
    if !dummy {
        vm = vm.dummy_address(None);
    }
    for s in shares {
        vm = vm.share(s);
    }
    let out = vm.run(&command)?;
    Ok(ExitCode::from(u8::try_from(out.status).unwrap_or(125)))
}

fn usage_error(msg: &str) -> ExitCode {
    eprint!("lbvm: {msg}\n{USAGE}");
    ExitCode::from(2)
}
