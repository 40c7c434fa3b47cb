//! Booting the VM and running one command in it.
//!
//! Each [`Vm::run`] boots a fresh qemu (TCG) with:
//! - the host root shared read-only over 9p (tag `hostroot`) and a tmpfs overlay on
//!   top, so the guest runs the host's own binaries and every write is thrown away;
//! - a per-run host directory (tag `lbvmrun`, mounted at `/run/lbvm`) holding the
//!   generated `cmd.sh`, the `config` the init reads, and the `status` it writes;
//! - optional read-write shares mounted at their host paths ([`Vm::share`]);
//! - the kernel console on the serial port and the command's stdout and stderr on
//!   two virtio-serial ports, each connected to a Unix socket this process listens
//!   on, so kernel messages never mix with the command's output.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::assets::{self, Assets};
use crate::error::Error;

/// The qemu binary.
const QEMU: &str = "qemu-system-x86_64";

/// Host environment variables passed into the VM by default (plus every `LB_*`).
const PASSED_ENV: &[&str] = &["PATH", "RUST_BACKTRACE", "RUST_LOG", "CI"];

/// The address given to `dummy0` by default, so that `ipvsadm -a` accepts
/// destinations in 10.0.0.0/8 (the kernel refuses destinations that are not
/// routable unicast addresses: "address not unicast").
pub const DEFAULT_DUMMY_ADDRESS: &str = "10.0.0.254/8";

/// The command's captured output and exit code.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The command's exit code (128 + N when killed by signal N, 125 when the
    /// guest could not start it).
    pub status: i32,
    /// What the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// What the command wrote to stderr.
    pub stderr: Vec<u8>,
    /// The kernel console (serial port): boot messages and the init's own notes.
    pub console: Vec<u8>,
}

impl Output {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// stdout, lossily decoded.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr, lossily decoded.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// How a run's output reaches the host's own stdout/stderr while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Stream {
    /// Only capture (the default).
    #[default]
    Off,
    /// Capture, and print each complete line with `print!`/`eprint!` (so the
    /// libtest harness captures it like the test's own output).
    Lines,
    /// Capture, and copy the bytes to the process's stdout/stderr as they come
    /// (what the `lbvm` binary does).
    Raw,
}

/// A VM configuration; each [`Vm::run`] boots a fresh VM from it.
///
/// ```no_run
/// use std::time::Duration;
/// use lb_testing_vm::Vm;
///
/// let out = Vm::new()?
///     .timeout(Duration::from_secs(60))
///     .run(&["sh", "-c", "modprobe ip_vs && ipvsadm -Ln"])?;
/// assert!(out.success(), "{}", out.stderr_str());
/// # Ok::<(), lb_testing_vm::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Vm {
    assets: Assets,
    timeout: Duration,
    memory_mb: u32,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    shares: Vec<PathBuf>,
    dummy_address: Option<String>,
    setup: Vec<String>,
    stream: Stream,
    console: bool,
}

impl Vm {
    /// A VM with the prepared kernel, preparing it first if needed (see
    /// [`crate::prepare`]; that downloads the Debian kernel package once).
    ///
    /// Defaults: 120 s time limit, 1024 MiB, the host's current directory, the
    /// host's `PATH`, `RUST_BACKTRACE`, `RUST_LOG`, `CI` and `LB_*` variables,
    /// `lo` up and `dummy0` with [`DEFAULT_DUMMY_ADDRESS`], output captured only.
    pub fn new() -> Result<Self, Error> {
        which(QEMU).ok_or(Error::ToolMissing {
            program: QEMU,
            package: "qemu-system-x86",
        })?;
        let assets = match Assets::find() {
            Ok(a) => a,
            Err(Error::NotPrepared { .. }) => assets::prepare(false)?,
            Err(e) => return Err(e),
        };
        let env = std::env::vars_os()
            .filter(|(k, _)| {
                let k = k.to_string_lossy();
                PASSED_ENV.contains(&k.as_ref()) || k.starts_with("LB_")
            })
            .collect();
        Ok(Self {
            assets,
            timeout: Duration::from_secs(120),
            memory_mb: 1024,
            env,
            cwd: None,
            shares: Vec::new(),
            dummy_address: Some(DEFAULT_DUMMY_ADDRESS.to_owned()),
            setup: Vec::new(),
            stream: Stream::Off,
            console: false,
        })
    }

    /// The time limit for the whole run (boot included); qemu is killed after it.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Guest memory in MiB.
    #[must_use]
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    /// Sets (or overrides) an environment variable for the command.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let key = key.as_ref().to_owned();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.as_ref().to_owned()));
        self
    }

    /// The command's working directory (a host path; default: the host's current
    /// directory).
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Shares a host directory read-write, mounted at the same path in the guest:
    /// the way to get files out of the VM.
    #[must_use]
    pub fn share(mut self, dir: impl Into<PathBuf>) -> Self {
        self.shares.push(dir.into());
        self
    }

    /// The address (CIDR) of the `dummy0` interface created before the command,
    /// or `None` for no dummy interface (`lo` is brought up either way).
    #[must_use]
    pub fn dummy_address(mut self, cidr: Option<&str>) -> Self {
        self.dummy_address = cidr.map(str::to_owned);
        self
    }

    /// A shell command run (as root, in the guest) after the network set-up and
    /// before the command; the run fails with exit code 125 if it fails.
    #[must_use]
    pub fn setup(mut self, shell: impl Into<String>) -> Self {
        self.setup.push(shell.into());
        self
    }

    /// Whether and how to echo the command's output while it runs.
    #[must_use]
    pub fn stream(mut self, stream: Stream) -> Self {
        self.stream = stream;
        self
    }

    /// Echo the kernel console to stderr while it runs (for debugging boots).
    #[must_use]
    pub fn console(mut self, on: bool) -> Self {
        self.console = on;
        self
    }

    /// The prepared kernel this VM boots.
    pub fn assets(&self) -> &Assets {
        &self.assets
    }

    /// Boots a VM, runs `argv` (looked up on the passed `PATH`) and returns its
    /// output and exit code. A non-zero exit code is not an error; a time-out,
    /// a boot failure or a host I/O failure is.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Output, Error> {
        let run_dir = RunDir::create()?;
        let cwd = match &self.cwd {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(|e| Error::io("current directory", e))?,
        };
        write_file(&run_dir.0.join("cmd.sh"), &self.script(&cwd, argv)?)?;
        write_file(&run_dir.0.join("config"), &self.config())?;

        let listen = |name: &str| {
            let path = run_dir.0.join(name);
            let l = UnixListener::bind(&path)
                .map_err(|e| Error::io(format!("listen on {}", path.display()), e))?;
            l.set_nonblocking(true)
                .map_err(|e| Error::io("set_nonblocking", e))?;
            Ok::<_, Error>((path, l))
        };
        let (con_path, con) = listen("console.sock")?;
        let (out_path, out) = listen("stdout.sock")?;
        let (err_path, err) = listen("stderr.sock")?;

        let mut cmd = Command::new(QEMU);
        cmd.args(["-accel", "tcg", "-nodefaults", "-no-user-config"])
            .args(["-display", "none", "-no-reboot"])
            .arg("-m")
            .arg(self.memory_mb.to_string())
            .arg("-kernel")
            .arg(&self.assets.kernel)
            .arg("-initrd")
            .arg(&self.assets.initramfs)
            .args(["-append", "console=ttyS0 quiet panic=-1"])
            .arg("-chardev")
            .arg(chardev("con", &con_path))
            .args(["-serial", "chardev:con"])
            .arg("-virtfs")
            .arg("local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap")
            .arg("-virtfs")
            .arg(virtfs(&run_dir.0, "lbvmrun"))
            .args(["-device", "virtio-serial-pci"])
            .arg("-chardev")
            .arg(chardev("out", &out_path))
            .args(["-device", "virtserialport,chardev=out,name=lbvm.stdout"])
            .arg("-chardev")
            .arg(chardev("err", &err_path))
            .args(["-device", "virtserialport,chardev=err,name=lbvm.stderr"]);
        for (i, dir) in self.shares.iter().enumerate() {
            cmd.arg("-virtfs")
                .arg(virtfs(dir, &format!("lbvmshare{i}")));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = KillOnDrop(
            cmd.spawn()
                .map_err(|e| Error::io(format!("spawn {QEMU}"), e))?,
        );

        let done = Arc::new(AtomicBool::new(false));
        let (con_sink, out_sink, err_sink) = match self.stream {
            Stream::Off => (Sink::None, Sink::None, Sink::None),
            Stream::Lines => (Sink::None, Sink::StdoutLines, Sink::StderrLines),
            Stream::Raw => (Sink::None, Sink::StdoutRaw, Sink::StderrRaw),
        };
        let con_sink = if self.console {
            Sink::StderrLines
        } else {
            con_sink
        };
        let pumps = [
            pump(con, con_sink, done.clone()),
            pump(out, out_sink, done.clone()),
            pump(err, err_sink, done.clone()),
        ];
        let qemu_err = child.0.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });

        let exited = wait_until(&mut child.0, Instant::now() + self.timeout);
        let qemu_status = match exited {
            Some(status) => Some(status),
            None => {
                child.kill();
                None
            }
        };
        done.store(true, Ordering::SeqCst);
        let [con, out, err] = pumps.map(|p| p.join().unwrap_or_default());
        let qemu_err = qemu_err.and_then(|t| t.join().ok()).unwrap_or_default();
        let mut output = Output {
            status: -1,
            stdout: out,
            stderr: err,
            console: con,
        };
        let Some(qemu_status) = qemu_status else {
            return Err(Error::Timeout {
                limit: self.timeout,
                output: Box::new(output),
            });
        };
        let status = fs::read_to_string(run_dir.0.join("status"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        match status {
            Some(code) => {
                output.status = code;
                Ok(output)
            }
            None => Err(Error::NoStatus {
                qemu: format!(
                    "{qemu_status}; {}",
                    String::from_utf8_lossy(&qemu_err).trim()
                ),
                console: output.console,
            }),
        }
    }

    /// The script the guest runs: environment, network set-up, `cd`, `exec`.
    fn script<S: AsRef<OsStr>>(&self, cwd: &Path, argv: &[S]) -> Result<Vec<u8>, Error> {
        let mut s: Vec<u8> = Vec::new();
        s.extend_from_slice(b"# generated by lb-testing-vm\n");
        let mut has_home = false;
        for (k, v) in &self.env {
            let name = k.to_string_lossy();
            if !is_env_name(&name) {
                return Err(Error::BadEnvName(name.into_owned()));
            }
            has_home |= name == "HOME";
            s.extend_from_slice(format!("export {name}=").as_bytes());
            quote_into(&mut s, v.as_bytes());
            s.push(b'\n');
        }
        if !has_home {
            s.extend_from_slice(b"export HOME=/root\n");
        }
        s.extend_from_slice(b"export LB_IN_VM=1\n");
        s.extend_from_slice(b"fail() { echo \"lbvm: set-up failed: $*\" >&2; exit 125; }\n");
        s.extend_from_slice(b"ip link set lo up || fail 'ip link set lo up'\n");
        if let Some(cidr) = &self.dummy_address {
            let mut line = String::new();
            let q = quote(cidr.as_bytes());
            let _ = writeln!(
                line,
                "{{ ip link add dummy0 type dummy && ip addr add {q} dev dummy0 && ip link set dummy0 up; }} || fail 'dummy0 {}'",
                cidr.replace('\'', "")
            );
            s.extend_from_slice(line.as_bytes());
        }
        for line in &self.setup {
            s.extend_from_slice(b"{ ");
            s.extend_from_slice(line.as_bytes());
            s.extend_from_slice(b"\n} || fail ");
            quote_into(&mut s, line.as_bytes());
            s.push(b'\n');
        }
        s.extend_from_slice(b"cd ");
        quote_into(&mut s, cwd.as_os_str().as_bytes());
        s.extend_from_slice(b" || fail cd\nexec");
        for a in argv {
            s.push(b' ');
            quote_into(&mut s, a.as_ref().as_bytes());
        }
        s.push(b'\n');
        Ok(s)
    }

    /// The file the init sources: where the modules are, which shares to mount.
    fn config(&self) -> Vec<u8> {
        let mut s = b"LBVM_MODULES=".to_vec();
        quote_into(&mut s, self.assets.modules.as_os_str().as_bytes());
        s.push(b'\n');
        for (i, dir) in self.shares.iter().enumerate() {
            s.extend_from_slice(format!("lbvm_share lbvmshare{i} ").as_bytes());
            quote_into(&mut s, dir.as_os_str().as_bytes());
            s.push(b'\n');
        }
        s
    }
}

fn chardev(id: &str, path: &Path) -> OsString {
    let mut s = OsString::from(format!("socket,id={id},path="));
    s.push(qemu_escape(path));
    s
}

fn virtfs(dir: &Path, tag: &str) -> OsString {
    let mut s = OsString::from("local,path=");
    s.push(qemu_escape(dir));
    s.push(format!(
        ",mount_tag={tag},security_model=none,multidevs=remap"
    ));
    s
}

/// qemu option values escape a comma by doubling it.
fn qemu_escape(path: &Path) -> OsString {
    let bytes = path.as_os_str().as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsStr::from_bytes(&out).to_owned()
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Single-quotes `bytes` for a POSIX shell.
fn quote_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}

fn quote(bytes: &[u8]) -> String {
    let mut v = Vec::new();
    quote_into(&mut v, bytes);
    String::from_utf8_lossy(&v).into_owned()
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), Error> {
    fs::write(path, data).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// qemu, killed if the run ends early (time limit, panic) so no VM outlives it.
#[derive(Debug)]
struct KillOnDrop(Child);

impl KillOnDrop {
    fn kill(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for `child` until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

#[derive(Debug, Clone, Copy)]
enum Sink {
    None,
    StdoutLines,
    StderrLines,
    StdoutRaw,
    StderrRaw,
}

impl Sink {
    /// Echoes `chunk`; `partial` carries an unfinished line between calls.
    fn echo(self, chunk: &[u8], partial: &mut Vec<u8>) {
        match self {
            Self::None => {}
            Self::StdoutRaw => {
                let mut o = io::stdout().lock();
                let _ = o.write_all(chunk);
                let _ = o.flush();
            }
            Self::StderrRaw => {
                let _ = io::stderr().lock().write_all(chunk);
            }
            Self::StdoutLines | Self::StderrLines => {
                partial.extend_from_slice(chunk);
                if let Some(end) = partial.iter().rposition(|&b| b == b'\n') {
                    let lines: Vec<u8> = partial.drain(..=end).collect();
                    self.print(&lines);
                }
            }
        }
    }

    fn finish(self, partial: &mut Vec<u8>) {
        if !partial.is_empty() {
            partial.push(b'\n');
            self.print(partial);
            partial.clear();
        }
    }

    fn print(self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        match self {
            Self::StdoutLines => print!("{text}"),
            Self::StderrLines => eprint!("{text}"),
            _ => {}
        }
    }
}

/// Accepts qemu's connection on `listener` and collects what it sends until
/// qemu exits; gives up waiting for the connection once `done` is set.
fn pump(listener: UnixListener, sink: Sink, done: Arc<AtomicBool>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if done.load(Ordering::SeqCst) {
                        return Vec::new();
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return Vec::new(),
            }
        };
        let _ = stream.set_nonblocking(false);
        let mut all = Vec::new();
        let mut partial = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    sink.echo(&buf[..n], &mut partial);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        sink.finish(&mut partial);
        all
    })
}

/// A per-run scratch directory under the temp dir, removed on drop.
#[derive(Debug)]
struct RunDir(PathBuf);

impl RunDir {
    fn create() -> Result<Self, Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lbvm-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(Self(dir))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The first executable `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes_and_spaces() {
        assert_eq!(quote(b"a b"), "'a b'");
        assert_eq!(quote(b"it's"), "'it'\\''s'");
        assert_eq!(quote(b""), "''");
    }

    #[test]
    fn quoted_words_round_trip_through_sh() {
        let words = [
            "plain",
            "with space",
            "it's",
            "$HOME",
            "`x`",
            "a\nb",
            "\\",
            "",
        ];
        let mut script = b"printf '%s\\0'".to_vec();
        for w in words {
            script.push(b' ');
            quote_into(&mut script, w.as_bytes());
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(OsStr::from_bytes(&script))
            .output()
            .unwrap();
        let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
        let want: Vec<&[u8]> = words
            .iter()
            .map(|w| w.as_bytes())
            .chain([&b""[..]])
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("LB_X1"));
        assert!(is_env_name("_a"));
        assert!(!is_env_name("1A"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name(""));
    }

    #[test]
    fn qemu_escape_doubles_commas() {
        assert_eq!(qemu_escape(Path::new("/a,b")), OsString::from("/a,,b"));
    }
}
