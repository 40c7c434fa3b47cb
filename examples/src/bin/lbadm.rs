//! `lbadm`: a drop-in for `ipvsadm` built on `lb-ipvs`.
//!
//! It accepts ipvsadm's common command line (`-A -E -D -a -e -d -C -L/-l -n
//! -S -R -Z --set --start-daemon --stop-daemon` with `-t/-u/--sctp-service/-f`,
//! `-s -b -p -M --pe -o -r -g/-m/-i -w -x -y --tun-*` and the listing
//! modifiers) and prints the same listings byte for byte. Differences: host
//! and service names are resolved from `/etc/hosts` and `/etc/services`
//! only (no DNS), and `-R` parses the whole input before applying anything,
//! then applies it in batches (many requests per netlink datagram).

use std::{
    io::{Read, Write},
    process::ExitCode,
};

use lb_ipvs::{
    Client, Error, Op,
    cmdline::{self, Command, ListOptions},
    conn, list,
    list::{Files, Numeric, Resolver},
    save,
};

const USAGE: &str = "lbadm: ipvsadm-compatible IPVS administration (ipvsadm v1.31 command line)
Usage:
  lbadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  lbadm -D virtual-service
  lbadm -C
  lbadm -R
  lbadm -S [-n]
  lbadm -a|e virtual-service -r server-address [options]
  lbadm -d virtual-service -r server-address
  lbadm -L|l [virtual-service] [options]
  lbadm -Z [virtual-service]
  lbadm --set tcp tcpfin udp
  lbadm --start-daemon {master|backup} [daemon-options]
  lbadm --stop-daemon {master|backup}
  lbadm -h
virtual-service: --tcp-service|-t host[:port], --udp-service|-u host[:port],
  --sctp-service host[:port], --fwmark-service|-f fwmark [-6]
options: -s -p -M --pe -b -o -r -g -i -m -w -x -y --tun-type --tun-port
  --tun-nocsum --tun-csum --tun-remcsum -n -c --timeout --daemon --stats --rate
  --thresholds --persistent-conn --tun-info --exact --nosort
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match cmdline::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Opens the client, loading `ip_vs` once if the family is missing (as
/// ipvsadm does).
fn client() -> Result<Client, ExitCode> {
    match Client::new() {
        Err(Error::FamilyNotFound) => {
            let _ = std::process::Command::new("modprobe")
                .args(["-q", "ip_vs"])
                .status();
            Client::new()
        }
        other => other,
    }
    .map_err(|e| {
        eprintln!("Can't initialize ipvs: {e}");
        ExitCode::from(1)
    })
}

/// Prints a kernel error the way ipvsadm does (its `ipvs_strerror` text).
fn report(e: &Error) {
    match e {
        Error::Kernel { message, .. } => eprintln!("{message}"),
        Error::Batch { failures, .. } => {
            for (_, e) in failures {
                report(e);
            }
        }
        other => eprintln!("{other}"),
    }
}

fn out(s: &str) -> Result<(), ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(s.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|_| ExitCode::from(1))
}

fn run(cmd: Command) -> Result<(), ExitCode> {
    match cmd {
        Command::Help => out(USAGE),
        Command::Version => out("lbadm (lb-ipvs), ipvsadm v1.31 compatible\n"),
        Command::Apply(op) => apply(&mut client()?, &[op]),
        Command::List(l) => listing(&mut client()?, &l),
        Command::Save { numeric } => {
            let snap = client()?.snapshot().map_err(fail)?;
            out(&list::save(&snap, numeric, resolver(numeric).as_ref()))
        }
        Command::Restore => restore(),
        _ => out(USAGE),
    }
}

fn fail(e: Error) -> ExitCode {
    report(&e);
    ExitCode::from(1)
}

fn apply(c: &mut Client, ops: &[Op]) -> Result<(), ExitCode> {
    c.apply(ops).map_err(|e| {
        report(&e);
        ExitCode::from(255)
    })
}

fn resolver(numeric: bool) -> Box<dyn Resolver> {
    if numeric {
        Box::new(Numeric)
    } else {
        Box::new(Files::load())
    }
}

fn listing(c: &mut Client, l: &ListOptions) -> Result<(), ExitCode> {
    let res = resolver(l.format.numeric);
    if l.connections {
        let conns = conn::read().map_err(|e| {
            eprintln!("cannot open file {}: {e}", conn::CONN_PROC_FILE);
            ExitCode::from(1)
        })?;
        return out(&list::conns(&conns, &l.format, res.as_ref()));
    }
    if let Some(key) = l.service {
        let se = c.service(&key).map_err(fail)?;
        let dests = c.dests(&key).map_err(fail)?;
        return out(&list::list_service(&se, &dests, &l.format, res.as_ref()));
    }
    if l.timeout {
        return out(&list::timeouts(&c.timeouts().map_err(fail)?));
    }
    if l.daemon {
        return out(&list::daemons(&c.daemons().map_err(fail)?));
    }
    let snap = c.snapshot().map_err(fail)?;
    out(&list::list_all(&snap, &l.format, res.as_ref()))
}

/// `-R`: parse all of stdin, then apply consecutive changes in batches.
fn restore() -> Result<(), ExitCode> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|_| ExitCode::from(1))?;
    let cmds = save::parse_commands(&text).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    let mut c = client()?;
    let mut batch = Vec::new();
    let mut result = Ok(());
    for (_, cmd) in cmds {
        match cmd {
            Command::Apply(op) => batch.push(op),
            other => {
                let r = apply(&mut c, &std::mem::take(&mut batch));
                result = result.and(r);
                match other {
                    Command::List(l) => {
                        let r = listing(&mut c, &l);
                        result = result.and(r);
                    }
                    Command::Save { numeric } => {
                        let snap = c.snapshot().map_err(fail)?;
                        out(&list::save(&snap, numeric, resolver(numeric).as_ref()))?;
                    }
                    _ => {}
                }
            }
        }
    }
    let r = apply(&mut c, &batch);
    result.and(r)
}
