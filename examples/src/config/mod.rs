//! keepalived.conf, read the way keepalived reads it.
//!
//! [`load`] reads a file (following `include` globs), checks every keyword
//! it knows and warns, with file:line, about the ones it does not, as
//! keepalived does. Structural problems (unbalanced braces, missing values,
//! out-of-range numbers, bad addresses, dangling references) are fatal
//! [`ConfigError`]s naming file:line:column. Where a block is missing its
//! `}`, the error points at the line before which it is missing: the first
//! keyword that can only belong to an enclosing block.
//!
//! One extension: top-level `fwmark_rules { … }` blocks, the marking rules
//! of fwmark services ([`FwmarkRule`]), which keepalived leaves to iptables
//! and skips as an unknown keyword.
//!
//! ```
//! let cfg = lb_examples::config::parse_str("inline.conf", r#"
//! vrrp_instance VI_1 {
//!     state MASTER
//!     interface eth0
//!     virtual_router_id 51
//!     priority 150
//!     virtual_ipaddress { 192.0.2.10/24 }
//! }
//! virtual_server 192.0.2.10 80 {
//!     lb_algo wlc
//!     lb_kind DR
//!     real_server 198.51.100.1 80 {
//!         weight 2
//!         TCP_CHECK { connect_timeout 3 }
//!     }
//! }
//! "#).unwrap();
//! assert_eq!(cfg.config.vrrp_instances[0].vrid, 51);
//! let rs = &cfg.config.virtual_servers[0].real_servers[0];
//! assert_eq!((rs.weight, rs.checkers.len()), (2, 1));
//! assert!(cfg.warnings.is_empty());
//! ```

mod build;
mod error;
mod lexer;
mod model;

use std::path::Path;

pub use error::{ConfigError, ErrorKind, Pos, Warning};
pub use model::*;

/// A configuration together with the warnings reading it produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Non-fatal findings (unknown keywords, ignored options), in file order.
    pub warnings: Vec<Warning>,
}

/// Reads a keepalived.conf file and everything it includes.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let stmts = lexer::read_file(path)?;
    finish(&stmts)
}

/// Parses configuration text; `name` stands for the file in messages.
pub fn parse_str(name: &str, text: &str) -> Result<Loaded, ConfigError> {
    let stmts = lexer::read_str(name, text)?;
    finish(&stmts)
}

fn finish(stmts: &[lexer::Stmt]) -> Result<Loaded, ConfigError> {
    let mut b = build::Builder::default();
    let config = b.build(stmts)?;
    Ok(Loaded {
        config,
        warnings: b.warnings,
    })
}

/// Exit codes of `--config-test`, as keepalived's: 0 valid, 3 fatal errors,
/// 4 non-fatal errors (warnings).
pub fn config_test_exit_code(r: &Result<Loaded, ConfigError>) -> i32 {
    match r {
        Err(_) => 3,
        Ok(l) if !l.warnings.is_empty() => 4,
        Ok(_) => 0,
    }
}

#[cfg(test)]
mod tests;
