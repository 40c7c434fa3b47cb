//! Failure classes and error types.
//!
//! Every failed check carries a [`FailureClass`] that says at which layer it
//! failed, in HAProxy's spirit (`L4CON`, `L4TOUT`, `L6RSP`, `L7STS`, ...), so
//! that an operator can tell "the port is closed" from "the page changed".

use std::fmt;

/// Where a check failed.
///
/// L4 is the transport (connect, ICMP), L6 is TLS, L7 is the application
/// reply. `Local` failures happened on this host (socket setup, script, file).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The peer refused the connection (TCP RST to SYN, ICMP port unreachable).
    L4Refused,
    /// No route to the host or network (ICMP host/net unreachable).
    L4Unreachable,
    /// The connection (or ICMP echo) did not complete before the deadline.
    L4Timeout,
    /// Another transport error while connecting.
    L4Error,
    /// The TLS handshake failed.
    L6Tls,
    /// The TLS handshake did not complete before the deadline.
    L6Timeout,
    /// The reply had an unexpected status (HTTP status, SMTP code, DNS rcode).
    L7Status,
    /// The body's MD5 digest differed from the configured one.
    L7Digest,
    /// The body did not satisfy `regex` / `regex_no_match`.
    L7Regex,
    /// The reply was well formed but not the expected one (DNS answer,
    /// UDP reply bytes).
    L7Mismatch,
    /// The reply did not complete before the deadline.
    L7Timeout,
    /// The reply could not be parsed, or exceeded a size limit.
    L7Malformed,
    /// The peer closed or reset the connection before a complete reply.
    L7Closed,
    /// A MISC_CHECK script exited with a failure code or was killed.
    ScriptFailed,
    /// A MISC_CHECK script ran past its timeout and was killed.
    ScriptTimeout,
    /// A FILE_CHECK file could not be read, or its value means "down".
    FileState,
    /// A local resource (socket, bind address) could not be set up.
    Local,
}

impl FailureClass {
    /// A short HAProxy-like tag, for logs.
    pub fn tag(self) -> &'static str {
        match self {
            Self::L4Refused => "L4CON",
            Self::L4Unreachable => "L4UNR",
            Self::L4Timeout => "L4TOUT",
            Self::L4Error => "L4ERR",
            Self::L6Tls => "L6RSP",
            Self::L6Timeout => "L6TOUT",
            Self::L7Status => "L7STS",
            Self::L7Digest => "L7DGST",
            Self::L7Regex => "L7REGEX",
            Self::L7Mismatch => "L7RSP",
            Self::L7Timeout => "L7TOUT",
            Self::L7Malformed => "L7MAL",
            Self::L7Closed => "L7CLOSED",
            Self::ScriptFailed => "SCRIPT",
            Self::ScriptTimeout => "SCRIPTTOUT",
            Self::FileState => "FILE",
            Self::Local => "LOCAL",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A failed check: its class and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {detail}")]
pub struct Failure {
    /// Where it failed.
    pub class: FailureClass,
    /// What happened, for logs.
    pub detail: String,
}

impl Failure {
    /// Builds a failure.
    pub fn new(class: FailureClass, detail: impl Into<String>) -> Self {
        Self {
            class,
            detail: detail.into(),
        }
    }
}

/// A check specification that cannot be turned into a runnable probe.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `regex` / `regex_no_match` pattern does not compile.
    #[error("url {url}: invalid regex: {source}")]
    Regex {
        /// Index of the `url` block.
        url: usize,
        /// The regex crate's error.
        #[source]
        source: regex::Error,
    },
    /// The TLS configuration could not be built (bad CA file, bad SNI name).
    #[error("tls: {0}")]
    Tls(String),
    /// An HTTP check without any `url` block.
    #[error("HTTP check has no url block")]
    NoUrl,
    /// A DNS query name that is not a valid domain name.
    #[error("dns name {name:?}: {reason}")]
    DnsName {
        /// The name as configured.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A UDP `require_reply` pattern that is not hex with `X` wildcards.
    #[error("udp reply pattern: bad character at offset {offset}")]
    UdpPattern {
        /// Offset of the bad character.
        offset: usize,
    },
    /// A `regex_options` name keepalived does not know, or one whose PCRE2
    /// syntax change the `regex` crate has no equivalent for.
    #[error("regex_options: {name:?} {reason}")]
    RegexOption {
        /// The option as written.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A MISC_CHECK command line that is empty or badly quoted.
    #[error("misc_path: {0}")]
    MiscCommand(&'static str),
}
