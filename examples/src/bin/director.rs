//! `director`: what operators run instead of keepalived + ipvsadm.
//!
//! ```text
//! director --config-test [-f FILE]        check a keepalived.conf (exit 0 / 3 / 4)
//! director [run] [-f FILE] [--dataplane auto|ipvs|userspace] [--runtime-dir DIR]
//!          [--interface IF ...] [--metrics ADDR]
//! director status [--json] [--runtime-dir DIR]
//! director lab                            the network-namespace demonstration (root)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lb_examples::config;
use lb_examples::director::daemon::{self, Dataplane, Options};
use lb_examples::director::lab;

#[derive(Parser, Debug)]
#[command(
    name = "director",
    about = "L4 load balancer director reading keepalived.conf"
)]
struct Cli {
    /// Check the configuration and exit: 0 valid, 3 fatal errors, 4 warnings.
    #[arg(short = 't', long = "config-test")]
    config_test: bool,
    /// The configuration file.
    #[arg(
        short = 'f',
        long = "use-file",
        global = true,
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    file: PathBuf,
    /// Runtime directory (status socket).
    #[arg(long, global = true, default_value = "/run/lb-director")]
    runtime_dir: PathBuf,
    /// Which dataplane to program.
    #[arg(long, global = true, value_enum, default_value_t = DataplaneArg::Auto)]
    dataplane: DataplaneArg,
    /// More interfaces for the userspace dataplane (VRRP interfaces are always used).
    #[arg(long = "interface", global = true)]
    interfaces: Vec<String>,
    /// Serve Prometheus metrics on this address.
    #[arg(long, global = true)]
    metrics: Option<SocketAddr>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DataplaneArg {
    Auto,
    Ipvs,
    Userspace,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the director (the default).
    Run,
    /// Show the running director's table, VRRP state and health.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Build a lab in network namespaces and demonstrate failover (root).
    Lab(lab::LabArgs),
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.config_test {
        let r = config::load(&cli.file);
        match &r {
            Ok(l) => {
                for w in &l.warnings {
                    eprintln!("{w}");
                }
                if l.warnings.is_empty() {
                    eprintln!("{}: configuration OK", cli.file.display());
                }
            }
            Err(e) => eprintln!("{e}"),
        }
        return ExitCode::from(config::config_test_exit_code(&r) as u8);
    }
    match cli.cmd.unwrap_or(Cmd::Run) {
        Cmd::Status { json } => match daemon::status(&cli.runtime_dir, json) {
            Ok(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("director: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Lab(args) => ExitCode::from(lab::main(&args) as u8),
        Cmd::Run => {
            init_logs();
            let code = daemon::run(Options {
                config: cli.file,
                dataplane: match cli.dataplane {
                    DataplaneArg::Auto => Dataplane::Auto,
                    DataplaneArg::Ipvs => Dataplane::Ipvs,
                    DataplaneArg::Userspace => Dataplane::Userspace,
                },
                runtime_dir: cli.runtime_dir,
                interfaces: cli.interfaces,
                metrics: cli.metrics,
            });
            ExitCode::from(code as u8)
        }
    }
}
