//! FILE_CHECK: a file holds a number (keepalived `track_file`).
//!
//! With weight 0 a non-zero value means DOWN and zero means UP. Otherwise
//! the value times the weight (negated with `reverse`) is added to the
//! server's base weight; a negative result means DOWN. An unreadable or
//! non-numeric file means DOWN. Only the first 64 bytes are read.

use std::path::PathBuf;

use tokio::io::AsyncReadExt;

use crate::error::{Failure, FailureClass};

/// FILE_CHECK settings.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileSpec {
    /// The tracked file.
    pub path: PathBuf,
    /// `weight`: 0 for up/down only.
    pub weight: i64,
    /// `weight ... reverse`.
    pub reverse: bool,
    /// The real server's configured weight.
    pub base_weight: u32,
}

impl FileSpec {
    /// Up/down only (weight 0), base weight 1.
    ///
    /// ```
    /// let f = lb_health::probe::FileSpec::new("/run/lb/rs1");
    /// assert_eq!(f.weight, 0);
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            weight: 0,
            reverse: false,
            base_weight: 1,
        }
    }
}

/// Applies the value read from the file.
pub(crate) fn verdict(spec: &FileSpec, text: &str) -> Result<Option<u32>, Failure> {
    let t = text.trim();
    let value: i64 = if t.is_empty() {
        0
    } else {
        t.parse()
            .map_err(|_| Failure::new(FailureClass::FileState, format!("not a number: {t:?}")))?
    };
    if spec.weight == 0 {
        return if value == 0 {
            Ok(None)
        } else {
            Err(Failure::new(
                FailureClass::FileState,
                format!("value {value}"),
            ))
        };
    }
    let mut delta = i128::from(value) * i128::from(spec.weight);
    if spec.reverse {
        delta = -delta;
    }
    let w = i128::from(spec.base_weight) + delta;
    if w < 0 {
        return Err(Failure::new(FailureClass::FileState, format!("weight {w}")));
    }
    Ok(Some(u32::try_from(w).unwrap_or(u32::MAX)))
}

pub(crate) async fn run(spec: &FileSpec) -> Result<Option<u32>, Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(
            FailureClass::FileState,
            format!("{}: {e}", spec.path.display()),
        )
    };
    let f = tokio::fs::File::open(&spec.path).await.map_err(fail)?;
    let mut buf = Vec::with_capacity(64);
    f.take(64).read_to_end(&mut buf).await.map_err(fail)?;
    verdict(spec, &String::from_utf8_lossy(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantics() {
        let mut s = FileSpec::new("/x");
        assert_eq!(verdict(&s, "0\n"), Ok(None));
        assert_eq!(verdict(&s, ""), Ok(None));
        assert!(verdict(&s, "3").is_err());
        assert!(verdict(&s, "abc").is_err());
        s.weight = 2;
        s.base_weight = 10;
        assert_eq!(verdict(&s, " 3 "), Ok(Some(16)));
        assert_eq!(verdict(&s, "-5"), Ok(Some(0)));
        assert!(verdict(&s, "-6").is_err());
        s.reverse = true;
        assert_eq!(verdict(&s, "-3"), Ok(Some(16)));
        assert_eq!(
            verdict(&s, &i64::MAX.to_string()).unwrap_err().class,
            FailureClass::FileState
        );
    }
}
