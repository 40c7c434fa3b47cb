//! Configuration errors and warnings, each naming file:line:column.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in a configuration file. Lines and columns count from 1; a line of
/// 0 means "the file as a whole" (it could not be opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file the text came from.
    pub file: Arc<Path>,
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub col: u32,
}

impl Pos {
    pub(crate) fn new(file: Arc<Path>, line: u32, col: u32) -> Self {
        Self { file, line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}

/// A fatal configuration error: the file cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {kind}")]
pub struct ConfigError {
    /// Where the problem is.
    pub pos: Pos,
    /// What the problem is.
    pub kind: ErrorKind,
}

impl ConfigError {
    pub(crate) fn new(pos: Pos, kind: ErrorKind) -> Self {
        Self { pos, kind }
    }
}

/// The kinds of fatal error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A file is not UTF-8.
    #[error("{} is not UTF-8 text (bad byte at offset {offset})", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first bad byte.
        offset: usize,
    },
    /// A file is unreasonably large.
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// `include` nested too deeply (usually a file including itself).
    #[error("include nested more than {0} deep (an include loop?)")]
    IncludeDepth(usize),
    /// A `"` without its closing partner on the same line.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A `}` with no open block.
    #[error("unexpected '}}' with no open block")]
    UnexpectedClose,
    /// A `{` with no keyword before it.
    #[error("unexpected '{{' without a keyword")]
    UnexpectedOpen,
    /// A block was never closed. `keyword` is the block's keyword and
    /// `opened` where its `{` stands; the error's own position is the line
    /// before which the `}` is missing (or the end of the file).
    #[error("missing '}}' for '{keyword}' opened at line {opened}{}", before.as_ref().map(|b| format!(" (before '{b}')")).unwrap_or_default())]
    UnclosedBlock {
        /// The block's keyword.
        keyword: String,
        /// The line of its `{`.
        opened: u32,
        /// The keyword that showed the block must have ended, if any.
        before: Option<String>,
    },
    /// A keyword that needs a value has none.
    #[error("'{0}' needs a value")]
    MissingValue(String),
    /// A block keyword written after another statement on the same line,
    /// as in `weight 2 TCP_CHECK { … }`: keepalived reads one statement per
    /// line, so the block would be lost. The error stands at the block
    /// keyword.
    #[error("'{keyword}' swallows the block of '{}' (start '{}' on a new line)", after.as_deref().unwrap_or("?"), after.as_deref().unwrap_or("?"))]
    UnexpectedBlock {
        /// The statement the block keyword was written after.
        keyword: String,
        /// The block keyword.
        after: Option<String>,
    },
    /// A keyword that needs a block has none.
    #[error("'{0}' needs a '{{ … }}' block")]
    MissingBlock(String),
    /// A value that does not parse or is out of range.
    #[error("bad value '{value}' for '{keyword}': expected {expected}")]
    BadValue {
        /// The keyword.
        keyword: String,
        /// The offending text.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// Two objects with the same name (instances, scripts, groups).
    #[error("duplicate {what} '{name}' (first defined at line {first_line})")]
    Duplicate {
        /// What kind of object.
        what: &'static str,
        /// Its name.
        name: String,
        /// The line of the first definition.
        first_line: u32,
    },
    /// A reference to an object that is not defined.
    #[error("{what} '{name}' is not defined")]
    Undefined {
        /// What kind of object.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// Settings that contradict each other.
    #[error("{0}")]
    Conflict(String),
}

/// A non-fatal problem: keepalived would warn and carry on, and so do we.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.pos, self.message)
    }
}
