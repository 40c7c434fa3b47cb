//! Test-only network-namespace lab: build topologies of named hosts (Linux
//! network namespaces) joined by veth pairs or bridges, and run commands,
//! daemons and Rust closures inside them.
//!
//! Used by the VRRP interop tests (real keepalived), the forwarder's
//! end-to-end tests, the health-check tests and the director lab.
//!
//! # The environment gate (read this first)
//!
//! Every test that needs root or network namespaces starts with
//! [`lab_or_skip!`] and is named `netns_*` (nextest runs that group with
//! limited parallelism):
//!
//! ```no_run
//! use lb_testing_netns::lab_or_skip;
//!
//! #[test]
//! fn netns_something() {
//!     let Some(lab) = lab_or_skip!("something") else { return };
//!     // With extra required programs: lab_or_skip!("vrrp", "keepalived")
//!     # let _ = lab;
//! }
//! ```
//!
//! When the machine cannot run the test (not root, `ip` or a listed program
//! missing, no kernel netns) the macro prints `SKIP <test>: <reason>` and the
//! test returns early — unless `CI=true`, where it panics so CI never passes a
//! test that did not run. For other prerequisites use [`skip_or_fail`] with
//! [`test_name!`].
//!
//! # Topology and teardown
//!
//! A [`Lab`] owns namespaces named `lbt-<pid>-<n>-<tag>-<host>`, unique per
//! process and lab, so tests run in parallel. Veth pairs are created directly
//! inside their namespaces: nothing appears in the root namespace, and
//! interface names (chosen by the test, at most 15 bytes) only need to be
//! unique within a host. Dropping the lab — also during a panic — kills
//! every process inside its namespaces and deletes them. Leftovers of a test
//! process that was killed (its pid is in the name) are removed by the next
//! [`Lab::new`].
//!
//! Each lab also has a scratch directory, [`Lab::dir`], for configuration,
//! pid and log files (two keepalived instances must not share
//! `/run/keepalived.pid`), removed with the lab.
//!
//! # Configuring hosts
//!
//! [`Host`] has typed helpers for addresses ([`Host::add_addr`], IPv6 with
//! `nodad`), routes, sysctls ([`Host::sysctl`], per namespace), routers
//! ([`Host::enable_forwarding`]), the LVS-DR real server
//! ([`Host::add_loopback_vip`]), link up/down ([`Host::set_link`]), MAC and
//! ifindex lookup, and [`Host::disable_offloads`] for tests whose traffic a
//! userspace forwarder reads from packet sockets (veth otherwise hands it
//! partial checksums and 64 KiB GSO frames). [`Host::ip`] runs any other
//! `ip -n <netns> ...` command.
//!
//! # Running things inside a host
//!
//! - [`Host::command`]: a [`std::process::Command`] running in the namespace;
//!   [`Host::run`] runs one to completion with a typed error.
//! - [`Host::spawn`] / [`Process::spawn`]: a background daemon in its own
//!   process group, killed (whole group) when the [`Process`] guard drops.
//! - [`Host::run_in`]: a closure on a fresh thread that entered the namespace
//!   (`setns`); sockets it creates stay in the namespace.
//!   [`Host::spawn_thread`] does the same in the background.
//!
//! # Example: client — router — server
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::{Ipv4Addr, TcpListener, TcpStream};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let lab = lb_testing_netns::Lab::new("example")?;
//! let (client, router, server) = (lab.add_host("c")?, lab.add_host("r")?, lab.add_host("s")?);
//! lab.link(&client, "eth0", &router, "eth0")?;
//! lab.link(&router, "eth1", &server, "eth0")?;
//! router.enable_forwarding()?;
//! client.add_addr("eth0", Ipv4Addr::new(10, 0, 1, 2), 24)?;
//! router.add_addr("eth0", Ipv4Addr::new(10, 0, 1, 1), 24)?;
//! router.add_addr("eth1", Ipv4Addr::new(10, 0, 2, 1), 24)?;
//! server.add_addr("eth0", Ipv4Addr::new(10, 0, 2, 2), 24)?;
//! client.add_default_route(Ipv4Addr::new(10, 0, 1, 1))?;
//! server.add_default_route(Ipv4Addr::new(10, 0, 2, 1))?;
//! client.ping(Ipv4Addr::new(10, 0, 2, 2))?;
//!
//! let listener = server.run_in(|| TcpListener::bind("10.0.2.2:7000"))??;
//! let echo = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     conn.write_all(&buf)
//! });
//! let reply = client.run_in(|| -> std::io::Result<[u8; 5]> {
//!     let mut conn = TcpStream::connect("10.0.2.2:7000")?;
//!     conn.write_all(b"hello")?;
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     Ok(buf)
//! })??;
//! assert_eq!(&reply, b"hello");
//! echo.join().unwrap()?;
//! # Ok(()) }
//! ```

mod cmd;
mod error;
mod host;
mod lab;
mod names;
mod process;
mod skip;
mod sys;
mod wait;

pub use cmd::find_program;
pub use error::{Error, Result};
pub use host::{Bridge, Host};
pub use lab::Lab;
pub use names::{MAX_HOST_LEN, MAX_IFNAME_LEN, MAX_TAG_LEN};
pub use process::Process;
#[doc(hidden)]
pub use skip::lab_or_skip as __lab_or_skip;
pub use skip::{ci_requires_environment, skip_or_fail};
pub use wait::wait_for;
