//! `genhash`: print the MD5 digest of a web page's body, as keepalived's
//! `genhash` does, for the `digest` of an HTTP_GET / SSL_GET `url` block.
//!
//! ```text
//! genhash -s 10.0.0.1 -p 80 -u /health.html [--ssl] [--virtualhost www.example]
//! 6f5902ac237024bdd0c176cb93063dc4
//! ```
//!
//! The digest is lowercase hex over the (de-chunked) body only, the same
//! bytes the checker hashes. Unlike keepalived's genhash before #766, a
//! failed fetch exits non-zero.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lb_health::probe::http::fetch;
use lb_health::probe::{ConnectSpec, HttpSpec, HttpVersion, TlsSpec, UrlSpec};

#[derive(Debug, Parser)]
#[command(
    name = "genhash",
    about = "MD5 digest of a web page body, for keepalived-style HTTP_GET/SSL_GET checks"
)]
struct Args {
    /// Server IP address.
    #[arg(short = 's', long = "server")]
    server: IpAddr,
    /// Server port.
    #[arg(short = 'p', long = "port")]
    port: u16,
    /// Path of the page.
    #[arg(short = 'u', long = "url")]
    url: String,
    /// Use TLS (certificates are not verified, as in keepalived).
    #[arg(short = 'S', long = "ssl", visible_alias = "use-ssl")]
    ssl: bool,
    /// Host header to send (also the SNI name with --ssl).
    #[arg(short = 'V', long = "virtualhost", visible_alias = "use-virtualhost")]
    virtualhost: Option<String>,
    /// HTTP protocol: 1.0, 1.0c (1.0 with Connection: close) or 1.1.
    #[arg(short = 'P', long = "protocol", default_value = "1.0")]
    protocol: String,
    /// Total timeout in seconds.
    #[arg(short = 't', long = "timeout", default_value_t = 5)]
    timeout: u64,
    /// Also print the status code and body length.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let version = match args.protocol.to_ascii_lowercase().as_str() {
        "1.0" => HttpVersion::V10,
        "1.0c" => HttpVersion::V10Close,
        "1.1" => HttpVersion::V11,
        other => {
            eprintln!("genhash: unknown protocol {other:?} (1.0, 1.0c or 1.1)");
            return ExitCode::from(2);
        }
    };
    let mut connect = ConnectSpec::new(SocketAddr::new(args.server, args.port));
    connect.timeout(Duration::from_secs(args.timeout.max(1)));
    let mut spec = HttpSpec::new(connect, vec![UrlSpec::new(args.url.clone())]);
    spec.version(version);
    if let Some(host) = &args.virtualhost {
        spec.virtualhost(host.clone());
    }
    if args.ssl {
        let mut tls = TlsSpec::new();
        if let Some(host) = &args.virtualhost {
            tls.sni(host.clone());
        }
        spec.tls(tls);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("genhash: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fetch(&spec, 0)) {
        Ok(page) => {
            if args.verbose {
                println!("HTTP status = {}", page.status);
                println!("Body length = {}", page.body.len());
                println!("MD5SUM = {}", page.digest_hex());
            } else {
                println!("{}", page.digest_hex());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("genhash: fetch of {} failed: {e}", args.url);
            ExitCode::FAILURE
        }
    }
}
