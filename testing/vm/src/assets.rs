//! The prepared kernel, modules and initramfs, cached under `<target>/vm/`.
//!
//! Layout of the cache directory ([`vm_dir`]):
//!
//! ```text
//! <target>/vm/
//!   lock                      held while preparing
//!   current                   the kernel release in use, e.g. "6.1.0-56-amd64"
//!   debs/                     the downloaded kernel package, kept for rebuilds
//!   6.1.0-56-amd64/           published by an atomic rename once complete
//!     vmlinuz
//!     vmlinux                 extracted from vmlinuz when it has a PVH entry point
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
    /// The kernel qemu boots: the uncompressed `vmlinux` (booted through its PVH
    /// entry point, which halves the boot's CPU time under TCG by skipping the
    /// in-guest decompression) when it could be extracted, else the `vmlinuz`.
    pub kernel: PathBuf,
    /// The uncompressed initramfs (newc cpio).
    pub initramfs: PathBuf,
    /// The directory bound on `/lib/modules` inside the VM.
    pub modules: PathBuf,
}

impl Assets {
    fn in_dir(dir: &Path, release: &str) -> Self {
        let vmlinux = dir.join("vmlinux");
        Self {
            release: release.to_owned(),
            kernel: if vmlinux.is_file() {
                vmlinux
            } else {
                dir.join("vmlinuz")
            },
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
        if release.is_empty() || !is_ready(&kdir) {
            return Err(not_prepared());
        }
        Ok(Self::in_dir(&kdir, release))
    }
}

/// What `READY` starts with: a cache built by another version of this crate
/// (another init script or boot-module list) is rebuilt, not reused.
fn stamp() -> String {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in INIT_SCRIPT
        .bytes()
        .chain(BOOT_MODULES.join(" ").into_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("lbvm-cache 2 {h:016x}\n")
}

fn is_ready(kdir: &Path) -> bool {
    fs::read_to_string(kdir.join("READY")).is_ok_and(|s| s.starts_with(&stamp()))
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

    // Only the lock holder builds, so any scratch directory left now is from a
    // preparer that was killed.
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let package = kernel_package()?;
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_owned();
    let kdir = dir.join(&release);
    if is_ready(&kdir) {
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
    let result = build_in(dir, &scratch, package, release);
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

fn build_in(dir: &Path, scratch: &Path, package: &str, release: &str) -> Result<(), Error> {
    // 1. the .deb: the one kept from an earlier build of this package, else a
    //    fresh download (updating stale package lists once if needed).
    let debs = dir.join("debs");
    let is_ours = |n: &str| n.starts_with(&format!("{package}_")) && n.ends_with(".deb");
    let kept = find_file(&debs, is_ours).ok().flatten();
    let deb = match kept {
        Some(deb) => {
            say(format_args!("reusing {}", deb.display()));
            deb
        }
        None => download(scratch, package, &debs)?,
    };

    // 2. unpack it.
    say(format_args!("dpkg -x {}", deb.display()));
    let root = scratch.join("root");
    if let Err(e) = run(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
        "dpkg -x",
    ) {
        // A damaged package is downloaded again next time.
        let _ = fs::remove_file(&deb);
        return Err(e);
    }
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    fs::rename(&vmlinuz, scratch.join("vmlinuz"))
        .map_err(|e| Error::io(format!("move {}", vmlinuz.display()), e))?;
    let image = fs::read(scratch.join("vmlinuz")).map_err(|e| Error::io("read vmlinuz", e))?;
    match extract_vmlinux(&image) {
        Some(elf) => {
            say(format_args!(
                "extracted vmlinux (PVH entry point) from vmlinuz"
            ));
            fs::write(scratch.join("vmlinux"), elf).map_err(|e| Error::io("write vmlinux", e))?;
        }
        None => say(format_args!(
            "no PVH vmlinux in vmlinuz; booting the compressed image"
        )),
    }
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
    write_atomic(
        &scratch.join("READY"),
        format!("{}{package}\n", stamp()).as_bytes(),
    )
}

/// Downloads `package` and keeps it in `debs` (dropping older kernels' packages).
fn download(scratch: &Path, package: &str, debs: &Path) -> Result<PathBuf, Error> {
    say(format_args!("apt-get download {package}"));
    let attempt = |quiet: bool| {
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
    if attempt(true).is_err() {
        apt_update()?;
        attempt(false)?;
    }
    let deb = find_file(scratch, |n| n.ends_with(".deb"))?.ok_or_else(|| Error::Prepare {
        step: "apt-get download",
        detail: format!("no .deb in {}", scratch.display()),
    })?;
    let _ = fs::remove_dir_all(debs);
    fs::create_dir_all(debs).map_err(|e| Error::io(format!("create {}", debs.display()), e))?;
    let kept = debs.join(deb.file_name().unwrap_or_default());
    fs::rename(&deb, &kept).map_err(|e| Error::io(format!("move {}", deb.display()), e))?;
    Ok(kept)
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

/// The uncompressed kernel ELF inside a bzImage, if it has a PVH entry point
/// (qemu boots such an ELF directly). The payload is found by its compression
/// magic and decompressed with the matching tool; trailing data is ignored.
fn extract_vmlinux(image: &[u8]) -> Option<Vec<u8>> {
    const FORMATS: &[(&[u8], &str, &[&str])] = &[
        (b"\xfd7zXZ\x00", "xz", &["-dc", "--single-stream"]),
        (b"\x28\xb5\x2f\xfd", "zstd", &["-dc"]),
        (b"\x1f\x8b\x08", "gzip", &["-dc"]),
    ];
    FORMATS.iter().find_map(|(magic, tool, args)| {
        let at = image.windows(magic.len()).position(|w| w == *magic)?;
        let elf = decompress(tool, args, &image[at..])?;
        has_pvh_note(&elf).then_some(elf)
    })
}

/// `tool args` with `input` on stdin; its stdout whatever its exit status (gzip
/// and zstd complain about the data after the stream).
fn decompress(tool: &str, args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The tool may stop reading at the end of its stream: ignore EPIPE.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().ok()?;
    let _ = writer.join();
    Some(out.stdout)
}

/// ELF64 little-endian helpers over an untrusted byte slice.
struct Elf<'a>(&'a [u8]);

impl Elf<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            self.0.get(at..at.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.0.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    fn u64(&self, at: usize) -> Option<usize> {
        let v = u64::from_le_bytes(self.0.get(at..at.checked_add(8)?)?.try_into().ok()?);
        usize::try_from(v).ok()
    }

    /// The program headers as (type, file offset, file size), `None` if malformed
    /// or not a 64-bit little-endian ELF.
    fn program_headers(&self) -> Option<Vec<(u32, usize, usize)>> {
        if self.0.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
            return None;
        }
        let phoff = self.u64(0x20)?;
        let phentsize = usize::from(self.u16(0x36)?);
        (0..usize::from(self.u16(0x38)?))
            .map(|i| {
                let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
                Some((self.u32(at)?, self.u64(at + 8)?, self.u64(at + 32)?))
            })
            .collect()
    }
}

/// Whether an ELF has a `PT_INTERP` program header (is dynamically linked).
/// Anything that is not a well-formed 64-bit little-endian ELF counts as dynamic.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    Elf(elf)
        .program_headers()
        .is_none_or(|phs| phs.iter().any(|&(kind, _, _)| kind == PT_INTERP))
}

/// Whether an ELF has the Xen `PHYS32_ENTRY` note that marks a PVH entry point.
fn has_pvh_note(elf: &[u8]) -> bool {
    const PT_NOTE: u32 = 4;
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    let e = Elf(elf);
    let Some(phs) = e.program_headers() else {
        return false;
    };
    phs.iter()
        .filter(|&&(kind, _, _)| kind == PT_NOTE)
        .any(|&(_, off, size)| {
            // Notes: namesz, descsz, type, name (padded to 4), desc (padded to 4).
            let end = off.saturating_add(size).min(elf.len());
            let mut at = off;
            while at + 12 <= end {
                let (Some(namesz), Some(descsz), Some(kind)) =
                    (e.u32(at), e.u32(at + 4), e.u32(at + 8))
                else {
                    return false;
                };
                let name_at = at + 12;
                let next = (namesz as usize)
                    .checked_next_multiple_of(4)
                    .zip((descsz as usize).checked_next_multiple_of(4))
                    .and_then(|(n, d)| name_at.checked_add(n)?.checked_add(d));
                let Some(next) = next.filter(|&next| next <= end) else {
                    return false;
                };
                if kind == XEN_ELFNOTE_PHYS32_ENTRY
                    && elf.get(name_at..name_at + 4) == Some(b"Xen\0")
                {
                    return true;
                }
                at = next;
            }
            false
        })
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

    /// A minimal ELF64 with one `PT_NOTE` segment holding one note.
    fn elf_with_note(name: &[u8; 4], kind: u32) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        e[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        e[64..68].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        e[72..80].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        e[96..104].copy_from_slice(&20u64.to_le_bytes()); // p_filesz
        for word in [4, 4, kind] {
            e.extend_from_slice(&u32::to_le_bytes(word));
        }
        e.extend_from_slice(name);
        e.extend_from_slice(&0x0100_0000u32.to_le_bytes());
        e
    }

    #[test]
    fn pvh_note_is_found_only_when_present() {
        assert!(has_pvh_note(&elf_with_note(b"Xen\0", 18)));
        assert!(!has_pvh_note(&elf_with_note(b"Xen\0", 17)));
        assert!(!has_pvh_note(&elf_with_note(b"GNU\0", 18)));
        // Truncations anywhere must not panic.
        let full = elf_with_note(b"Xen\0", 18);
        for len in 0..full.len() {
            assert!(!has_pvh_note(&full[..len]), "truncated to {len}");
        }
        // A static ELF without PT_INTERP.
        assert!(!has_interpreter(&full));
    }

    #[test]
    fn vmlinux_is_extracted_from_an_xz_payload_with_junk_around_it() {
        let elf = elf_with_note(b"Xen\0", 18);
        let Some(xz) = compress("xz", &elf) else {
            panic!("xz is needed (Debian package xz-utils)");
        };
        let mut image = b"bzImage setup code".to_vec();
        image.extend_from_slice(&xz);
        image.extend_from_slice(b"trailing data");
        assert_eq!(extract_vmlinux(&image), Some(elf));
        // Without a PVH note there is nothing to boot directly.
        let plain = compress("xz", &elf_with_note(b"Xen\0", 1)).unwrap();
        assert_eq!(extract_vmlinux(&plain), None);
        assert_eq!(extract_vmlinux(b"no payload"), None);
    }

    fn compress(tool: &str, data: &[u8]) -> Option<Vec<u8>> {
        let mut child = Command::new(tool)
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(data).ok()?;
        Some(child.wait_with_output().ok()?.stdout)
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
