//! The prepared kernel, modules and initramfs, cached under `<target>/vm/`.
//!
//! Layout of the cache directory ([`vm_dir`]):
//!
//! ```text
//! <target>/vm/
//!   lock                      held while preparing
//!   current                   the kernel release in use, e.g. "6.1.0-56-amd64"
//!   6.1.0-56-amd64/           published by an atomic rename once complete
//!     vmlinuz
//!     initramfs.cpio          busybox-static, /init, the boot modules
//!     lib/modules/6.1.0-56-amd64/...   every module, with modules.dep
//! ```

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cpio::CpioWriter;
use crate::error::Error;

/// The Debian metapackage whose dependency names the current kernel package.
const META_PACKAGE: &str = "linux-image-amd64";

/// Modules the initramfs loads (with their dependencies) before it can mount
/// the host root: virtio PCI transport, 9p over virtio, overlayfs, virtio-serial.
const BOOT_MODULES: &[&str] = &[
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "overlay",
    "virtio_console",
];

/// The static busybox that becomes the initramfs's only program.
const BUSYBOX: &str = "/bin/busybox";

const INIT_SCRIPT: &str = include_str!("init.sh");

/// How long [`prepare`] waits for another process that holds the lock.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// Paths of a prepared kernel.
#[derive(Debug, Clone)]
pub struct Assets {
    /// Kernel release (`uname -r` inside the VM).
    pub release: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// The uncompressed initramfs (newc cpio).
    pub initramfs: PathBuf,
    /// The directory bound on `/lib/modules` inside the VM.
    pub modules: PathBuf,
}

impl Assets {
    fn in_dir(dir: &Path, release: &str) -> Self {
        Self {
            release: release.to_owned(),
            vmlinuz: dir.join("vmlinuz"),
            initramfs: dir.join("initramfs.cpio"),
            modules: dir.join("lib/modules"),
        }
    }

    /// The prepared assets, or [`Error::NotPrepared`] when `lbvm prepare` has not
    /// run (or did not finish).
    pub fn find() -> Result<Self, Error> {
        let dir = vm_dir();
        let not_prepared = || Error::NotPrepared { dir: dir.clone() };
        let release = fs::read_to_string(dir.join("current")).map_err(|_| not_prepared())?;
        let release = release.trim();
        let kdir = dir.join(release);
        if release.is_empty() || !kdir.join("READY").is_file() {
            return Err(not_prepared());
        }
        Ok(Self::in_dir(&kdir, release))
    }
}

/// The cache directory: `$LB_VM_DIR`, else `$CARGO_TARGET_DIR/vm`, else
/// `<workspace root>/target/vm` (the workspace root is found by walking up from
/// this crate's manifest directory to the `Cargo.toml` with a `[workspace]`).
pub fn vm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LB_VM_DIR").filter(|d| !d.is_empty()) {
        return absolute(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return absolute(PathBuf::from(dir)).join("vm");
    }
    workspace_root().join("target").join("vm")
}

fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// Makes sure a kernel is prepared, preparing it if needed; prints each step
/// to stderr. With `refresh`, re-resolves the newest kernel package even when
/// one is cached.
///
/// Idempotent and safe to call from parallel processes: a lock file serialises
/// preparers, and the finished directory is published with an atomic rename.
pub fn prepare(refresh: bool) -> Result<Assets, Error> {
    if !refresh && let Ok(assets) = Assets::find() {
        say(format_args!(
            "kernel {} already prepared in {} (--refresh to look for a newer one)",
            assets.release,
            vm_dir().display()
        ));
        return Ok(assets);
    }
    let dir = vm_dir();
    fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let _lock = LockFile::acquire(&dir.join("lock"), LOCK_WAIT)?;
    // Someone else may have finished while we waited.
    if !refresh && let Ok(assets) = Assets::find() {
        return Ok(assets);
    }

    let package = kernel_package()?;
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_owned();
    let kdir = dir.join(&release);
    if kdir.join("READY").is_file() {
        say(format_args!(
            "kernel {release} already prepared in {}",
            kdir.display()
        ));
    } else {
        build(&dir, &package, &release)?;
    }
    write_atomic(&dir.join("current"), format!("{release}\n").as_bytes())?;
    let assets = Assets::find()?;
    say(format_args!(
        "ready: kernel {release} in {}",
        kdir.display()
    ));
    Ok(assets)
}

fn say(msg: std::fmt::Arguments<'_>) {
    eprintln!("lbvm prepare: {msg}");
}

/// `linux-image-<release>`, from `apt-cache depends linux-image-amd64` (running
/// `apt-get update` once if the package lists are missing). `LB_VM_KERNEL_PACKAGE`
/// overrides it.
fn kernel_package() -> Result<String, Error> {
    if let Ok(p) = std::env::var("LB_VM_KERNEL_PACKAGE")
        && !p.is_empty()
    {
        return Ok(p);
    }
    let resolve = || -> Option<String> {
        let out = Command::new("apt-cache")
            .args(["depends", META_PACKAGE])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            let dep = l.trim().strip_prefix("Depends:")?.trim();
            let tail = dep.strip_prefix("linux-image-")?;
            tail.starts_with(|c: char| c.is_ascii_digit())
                .then(|| dep.to_owned())
        })
    };
    if let Some(p) = resolve() {
        return Ok(p);
    }
    apt_update()?;
    resolve().ok_or_else(|| Error::Prepare {
        step: "resolve the kernel package",
        detail: format!("`apt-cache depends {META_PACKAGE}` names no linux-image-<release>"),
    })
}

fn apt_update() -> Result<(), Error> {
    say(format_args!("apt-get update"));
    run(
        Command::new("apt-get").args(["update", "-qq"]),
        "apt-get update",
    )
}

/// Downloads, unpacks and builds everything in a scratch directory, then
/// renames it to `<dir>/<release>`.
fn build(dir: &Path, package: &str, release: &str) -> Result<(), Error> {
    let scratch = dir.join(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)
        .map_err(|e| Error::io(format!("create {}", scratch.display()), e))?;
    let result = build_in(&scratch, package, release);
    if result.is_err() {
        let _ = fs::remove_dir_all(&scratch);
        return result;
    }
    let kdir = dir.join(release);
    let _ = fs::remove_dir_all(&kdir);
    fs::rename(&scratch, &kdir).map_err(|e| {
        let _ = fs::remove_dir_all(&scratch);
        Error::io(
            format!("rename {} to {}", scratch.display(), kdir.display()),
            e,
        )
    })
}

fn build_in(scratch: &Path, package: &str, release: &str) -> Result<(), Error> {
    // 1. download the .deb (updating stale package lists once if needed).
    say(format_args!("apt-get download {package}"));
    let download = |quiet: bool| {
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(scratch).arg("download");
        if running_as_root() {
            // Root downloading into a directory `_apt` cannot write to: skip the sandbox.
            cmd.args(["-o", "APT::Sandbox::User=root"]);
        }
        cmd.arg(package);
        if quiet {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        run(&mut cmd, "apt-get download")
    };
    if download(true).is_err() {
        apt_update()?;
        download(false)?;
    }
    let deb = find_file(scratch, |n| n.ends_with(".deb"))?.ok_or_else(|| Error::Prepare {
        step: "apt-get download",
        detail: format!("no .deb in {}", scratch.display()),
    })?;

    // 2. unpack it.
    say(format_args!("dpkg -x {}", deb.display()));
    let root = scratch.join("root");
    run(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
        "dpkg -x",
    )?;
    let _ = fs::remove_file(&deb);
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    fs::rename(&vmlinuz, scratch.join("vmlinuz"))
        .map_err(|e| Error::io(format!("move {}", vmlinuz.display()), e))?;
    let lib = scratch.join("lib");
    let modules_src = root.join("lib/modules");
    let modules_src = if modules_src.is_dir() {
        modules_src
    } else {
        root.join("usr/lib/modules")
    };
    fs::create_dir_all(&lib).map_err(|e| Error::io("create lib", e))?;
    fs::rename(&modules_src, lib.join("modules"))
        .map_err(|e| Error::io(format!("move {}", modules_src.display()), e))?;
    let _ = fs::remove_dir_all(&root);

    // 3. modules.dep.
    say(format_args!("depmod -b {} {release}", scratch.display()));
    run(
        Command::new("depmod").arg("-b").arg(scratch).arg(release),
        "depmod",
    )?;

    // 4. the initramfs.
    say(format_args!("building the initramfs with {BUSYBOX}"));
    build_initramfs(scratch, release)?;
    write_atomic(&scratch.join("READY"), format!("{package}\n").as_bytes())
}

fn build_initramfs(scratch: &Path, release: &str) -> Result<(), Error> {
    let busybox = fs::read(BUSYBOX).map_err(|e| Error::io(format!("read {BUSYBOX}"), e))?;
    if has_interpreter(&busybox) {
        return Err(Error::Prepare {
            step: "check busybox",
            detail: format!("{BUSYBOX} is dynamically linked; install busybox-static"),
        });
    }
    // The boot modules in dependency order, from modprobe's own resolution.
    let mut order: Vec<PathBuf> = Vec::new();
    for m in BOOT_MODULES {
        let out = Command::new("modprobe")
            .arg("-d")
            .arg(scratch)
            .args(["-S", release, "--show-depends", m])
            .output()
            .map_err(|e| Error::io("run modprobe --show-depends", e))?;
        if !out.status.success() {
            return Err(Error::Prepare {
                step: "resolve boot modules",
                detail: format!(
                    "modprobe --show-depends {m}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("insmod")
                && let Some(path) = words.next()
            {
                let path = PathBuf::from(path);
                if !order.contains(&path) {
                    order.push(path);
                }
            }
        }
    }

    let file = fs::File::create(scratch.join("initramfs.cpio"))
        .map_err(|e| Error::io("create initramfs.cpio", e))?;
    let mut cpio = CpioWriter::new(io::BufWriter::new(file));
    let io_err = |e| Error::io("write initramfs.cpio", e);
    for d in [
        "bin", "dev", "proc", "sys", "host", "upper", "newroot", "modules",
    ] {
        cpio.dir(d).map_err(io_err)?;
    }
    cpio.file("bin/busybox", 0o755, &busybox).map_err(io_err)?;
    cpio.file("init", 0o755, INIT_SCRIPT.as_bytes())
        .map_err(io_err)?;
    let mut names = String::new();
    for path in &order {
        let (name, data) = read_module(path)?;
        cpio.file(&format!("modules/{name}"), 0o644, &data)
            .map_err(io_err)?;
        names.push_str(&name);
        names.push('\n');
    }
    cpio.file("modules.order", 0o644, names.as_bytes())
        .map_err(io_err)?;
    cpio.finish().map_err(io_err)?.flush().map_err(io_err)
}

/// A module's file name (without a compression suffix) and its uncompressed
/// bytes: busybox insmod cannot load compressed modules.
fn read_module(path: &Path) -> Result<(String, Vec<u8>), Error> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let decompressor = [(".ko.xz", "xz"), (".ko.zst", "zstd"), (".ko.gz", "gzip")]
        .into_iter()
        .find(|(suffix, _)| file_name.ends_with(suffix));
    match decompressor {
        None => {
            let data =
                fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
            Ok((file_name, data))
        }
        Some((suffix, tool)) => {
            let out = Command::new(tool)
                .arg("-dc")
                .arg(path)
                .output()
                .map_err(|e| Error::io(format!("run {tool} -dc {}", path.display()), e))?;
            if !out.status.success() {
                return Err(Error::Prepare {
                    step: "decompress a boot module",
                    detail: format!("{tool} -dc {} failed", path.display()),
                });
            }
            let stem = &file_name[..file_name.len() - suffix.len()];
            Ok((format!("{stem}.ko"), out.stdout))
        }
    }
}

/// Whether an ELF file has a `PT_INTERP` program header (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // Only 64-bit little-endian ELF is expected here; anything else counts as dynamic.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return true;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return true;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return true;
    };
    (0..usize::from(phnum)).any(|i| {
        let at = phoff + i * usize::from(phentsize);
        u32_at(at).is_none_or(|kind| kind == 3)
    })
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn find_file(dir: &Path, pred: impl Fn(&str) -> bool) -> Result<Option<PathBuf>, Error> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| pred(&n.to_string_lossy()))))
}

fn run(cmd: &mut Command, step: &'static str) -> Result<(), Error> {
    let status = cmd
        .status()
        .map_err(|e| Error::io(format!("run {step}"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Prepare {
            step,
            detail: format!("exited with {status}"),
        })
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, data).map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("rename to {}", path.display()), e))
}

/// A lock held by creating a file exclusively; it records the holder's pid so a
/// lock left by a dead process is broken. (A plain file rather than `flock` keeps
/// the crate inside the workspace MSRV without `unsafe`.) The atomic rename in
/// [`build`] keeps the cache consistent even if two preparers ever overlap.
#[derive(Debug)]
struct LockFile {
    path: PathBuf,
}

impl LockFile {
    fn acquire(path: &Path, wait: Duration) -> Result<Self, Error> {
        let start = Instant::now();
        let mut told = false;
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Self {
                        path: path.to_owned(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(path).ok();
                    let alive = holder
                        .as_deref()
                        .and_then(|s| s.trim().parse::<u32>().ok())
                        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    // An empty file may be a holder that has not written its pid yet:
                    // treat it as alive for a moment.
                    let fresh = holder.as_deref().is_some_and(str::is_empty)
                        && fs::metadata(path)
                            .and_then(|m| m.modified())
                            .is_ok_and(|t| {
                                t.elapsed().unwrap_or_default() < Duration::from_secs(5)
                            });
                    if !alive && !fresh {
                        let _ = fs::remove_file(path);
                        continue;
                    }
                    if start.elapsed() > wait {
                        return Err(Error::Prepare {
                            step: "lock",
                            detail: format!("{} still held after {wait:?}", path.display()),
                        });
                    }
                    if !told {
                        say(format_args!(
                            "waiting for another preparer ({})",
                            path.display()
                        ));
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(Error::io(format!("create {}", path.display()), e)),
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_static_has_no_interpreter_and_sh_has_one() {
        // The host's /bin/sh is dynamically linked on every Debian system.
        if let Ok(sh) = fs::read("/bin/sh") {
            assert!(has_interpreter(&sh));
        }
        assert!(has_interpreter(b"not an elf"));
        assert!(has_interpreter(b""));
        // scripts/test installs busybox-static, whose /bin/busybox is static.
        if let Ok(bb) = fs::read(BUSYBOX) {
            assert!(!has_interpreter(&bb), "{BUSYBOX} should be busybox-static");
        }
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("lbvm-lock-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let held = LockFile::acquire(&path, Duration::ZERO).unwrap();
        assert!(matches!(
            LockFile::acquire(&path, Duration::ZERO),
            Err(Error::Prepare { step: "lock", .. })
        ));
        drop(held);
        let again = LockFile::acquire(&path, Duration::ZERO).unwrap();
        drop(again);
        // A lock left by a dead process is broken.
        fs::write(&path, "4294967295\n").unwrap();
        drop(LockFile::acquire(&path, Duration::ZERO).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn workspace_root_has_the_workspace_manifest() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(
            fs::read_to_string(root.join("Cargo.toml"))
                .unwrap()
                .contains("[workspace]")
        );
    }
}
