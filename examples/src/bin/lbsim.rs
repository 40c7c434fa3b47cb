//! `lbsim RULES CLIENTS`: which real server does each client go to?
//!
//! RULES is an IPVS rule set in `ipvsadm -S -n` format, applied as
//! `ipvsadm -R` would; CLIENTS has one new connection per line,
//! `PROTO SRC:SPORT DST:DPORT [fwmark=N] [inactive]`. Each client line is
//! printed followed by ` -> RIP:RPORT`, or ` -> none` where the kernel
//! finds no destination; `--json` prints JSON lines instead. A bad line in
//! either file is reported with its file and line number, exit code 2, and
//! nothing on standard output. See examples/README.md.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Which real server does this client go to? Simulates Linux IPVS
/// scheduling (services, persistence, schedulers, thresholds) for a rule
/// set and a list of new connections.
#[derive(Debug, Parser)]
#[command(name = "lbsim", version)]
struct Args {
    /// Print one JSON object per client line.
    #[arg(long)]
    json: bool,
    /// Rule set in ipvsadm save format (`ipvsadm -S -n`).
    rules: PathBuf,
    /// New connections, one per line: `PROTO SRC:SPORT DST:DPORT [fwmark=N] [inactive]`.
    clients: PathBuf,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = read(&args.rules)
        .and_then(|rules| Ok((rules, read(&args.clients)?)))
        .and_then(|(rules, clients)| {
            lb_examples::lbsim::run(
                &args.rules.display().to_string(),
                &rules,
                &args.clients.display().to_string(),
                &clients,
                args.json,
            )
            .map_err(|e| e.to_string())
        });
    match result {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lbsim: {e}");
            ExitCode::from(2)
        }
    }
}
