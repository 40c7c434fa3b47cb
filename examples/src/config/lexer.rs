//! Reading keepalived.conf text into statements: comments, quoting, braces
//! and `include` with globs.
//!
//! keepalived's syntax is line oriented: a statement is a keyword followed by
//! its arguments up to the end of the line; a `{` opens a block whose
//! statements end at the matching `}`. `!` and `#` start a comment wherever a
//! word could start. Double quotes group a word containing spaces.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, ErrorKind, Pos};

/// How deep `include` may nest before we call it a loop.
const MAX_INCLUDE_DEPTH: usize = 8;
/// Largest configuration file we read (keepalived has no such limit; a file
/// this large is a mistake, not a configuration).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// One word of the input, with where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The text, with quotes removed.
    pub text: String,
    /// Where the word starts.
    pub pos: Pos,
}

/// A statement: a keyword, its arguments, and its block if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stmt {
    /// The first word.
    pub keyword: Word,
    /// The rest of the words on the line, before any `{`.
    pub args: Vec<Word>,
    /// The statements inside `{ … }`, if the statement opened a block.
    pub block: Option<Block>,
}

/// The inside of a `{ … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// Where the `{` stands.
    pub open: Pos,
    /// The statements inside, in order.
    pub stmts: Vec<Stmt>,
    /// Where the matching `}` stands; `None` when the input ended first.
    pub close: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Open(Pos),
    Close(Pos),
    Newline,
}

/// Reads `path` and every file it includes into one statement list.
///
/// An unclosed block is not an error here (the typed layer knows which
/// keyword the block was missing its `}` before, and reports that line); a
/// stray `}` is.
pub(crate) fn read_file(path: &Path) -> Result<Vec<Stmt>, ConfigError> {
    let mut toks = Vec::new();
    include(path, None, 0, &mut toks)?;
    let mut it = toks.into_iter().peekable();
    let stmts = parse_stmts(&mut it, None)?;
    Ok(stmts.0)
}

/// Parses configuration text that did not come from a file (tests, fuzzing,
/// the embedded lab configuration). `name` is what error messages call it.
/// `include` lines are resolved relative to the current directory.
pub(crate) fn read_str(name: &str, text: &str) -> Result<Vec<Stmt>, ConfigError> {
    let mut toks = Vec::new();
    lex(Arc::from(Path::new(name)), text, 0, &mut toks)?;
    let mut it = toks.into_iter().peekable();
    Ok(parse_stmts(&mut it, None)?.0)
}

fn include(
    path: &Path,
    from: Option<&Pos>,
    depth: usize,
    out: &mut Vec<Tok>,
) -> Result<(), ConfigError> {
    let err_pos = || {
        from.cloned()
            .unwrap_or_else(|| Pos::new(Arc::from(path), 0, 0))
    };
    if depth > MAX_INCLUDE_DEPTH {
        return Err(ConfigError::new(
            err_pos(),
            ErrorKind::IncludeDepth(MAX_INCLUDE_DEPTH),
        ));
    }
    let io = |e: std::io::Error| {
        ConfigError::new(
            err_pos(),
            ErrorKind::Io {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        )
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ConfigError::new(
            err_pos(),
            ErrorKind::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_FILE_BYTES,
            },
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(
            err_pos(),
            ErrorKind::NotUtf8 {
                path: path.to_path_buf(),
                offset: e.utf8_error().valid_up_to(),
            },
        )
    })?;
    lex(Arc::from(path), &text, depth, out)
}

/// Splits one file into tokens, expanding `include` lines in place.
fn lex(file: Arc<Path>, text: &str, depth: usize, out: &mut Vec<Tok>) -> Result<(), ConfigError> {
    for (lineno, line) in text.lines().enumerate() {
        let lineno = lineno as u32 + 1;
        let mut words: Vec<Tok> = Vec::new();
        let mut chars = line.char_indices().peekable();
        while let Some(&(i, c)) = chars.peek() {
            let col = line[..i].chars().count() as u32 + 1;
            let pos = Pos::new(file.clone(), lineno, col);
            match c {
                c if c.is_whitespace() => {
                    chars.next();
                }
                '!' | '#' => break,
                '{' => {
                    chars.next();
                    words.push(Tok::Open(pos));
                }
                '}' => {
                    chars.next();
                    words.push(Tok::Close(pos));
                }
                '"' => {
                    chars.next();
                    let mut s = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '"' {
                            closed = true;
                            break;
                        }
                        s.push(c);
                    }
                    if !closed {
                        return Err(ConfigError::new(pos, ErrorKind::UnterminatedQuote));
                    }
                    words.push(Tok::Word(Word { text: s, pos }));
                }
                _ => {
                    let mut s = String::new();
                    while let Some(&(_, c)) = chars.peek() {
                        if c.is_whitespace() || c == '{' || c == '}' || c == '"' {
                            break;
                        }
                        s.push(c);
                        chars.next();
                    }
                    words.push(Tok::Word(Word { text: s, pos }));
                }
            }
        }
        if let Some(Tok::Word(w)) = words.first()
            && w.text == "include"
        {
            let pos = w.pos.clone();
            let Some(Tok::Word(pattern)) = words.get(1) else {
                return Err(ConfigError::new(
                    pos,
                    ErrorKind::MissingValue("include".into()),
                ));
            };
            for path in expand_include(&file, pattern)? {
                include(&path, Some(&pattern.pos), depth + 1, out)?;
            }
            continue;
        }
        out.extend(words);
        out.push(Tok::Newline);
    }
    Ok(())
}

/// Resolves an include pattern relative to the including file's directory,
/// as keepalived does, and expands globs in sorted order. A pattern without
/// glob characters that names no file is an error; a glob that matches
/// nothing is not (keepalived ignores it too).
fn expand_include(file: &Path, pattern: &Word) -> Result<Vec<PathBuf>, ConfigError> {
    let mut p = PathBuf::from(&pattern.text);
    if p.is_relative()
        && let Some(dir) = file.parent()
    {
        p = dir.join(p);
    }
    let s = p.to_string_lossy().into_owned();
    if !s.contains(['*', '?', '[']) {
        return Ok(vec![p]);
    }
    let paths = glob::glob(&s).map_err(|e| {
        ConfigError::new(
            pattern.pos.clone(),
            ErrorKind::BadValue {
                keyword: "include".into(),
                value: pattern.text.clone(),
                expected: format!("a glob pattern ({})", e.msg),
            },
        )
    })?;
    let mut out: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

type Toks = std::iter::Peekable<std::vec::IntoIter<Tok>>;

/// Parses statements until the matching `}` (returned) or the end of input.
fn parse_stmts(it: &mut Toks, open: Option<&Pos>) -> Result<(Vec<Stmt>, Option<Pos>), ConfigError> {
    let mut stmts = Vec::new();
    loop {
        match it.next() {
            None => return Ok((stmts, None)),
            Some(Tok::Newline) => {}
            Some(Tok::Close(pos)) => {
                if open.is_none() {
                    return Err(ConfigError::new(pos, ErrorKind::UnexpectedClose));
                }
                return Ok((stmts, Some(pos)));
            }
            Some(Tok::Open(pos)) => {
                // A `{` with no keyword before it: keepalived treats this as
                // a syntax error too.
                return Err(ConfigError::new(pos, ErrorKind::UnexpectedOpen));
            }
            Some(Tok::Word(keyword)) => {
                let mut args = Vec::new();
                let mut block = None;
                loop {
                    match it.peek() {
                        Some(Tok::Word(_)) => {
                            let Some(Tok::Word(w)) = it.next() else {
                                unreachable!()
                            };
                            args.push(w);
                        }
                        Some(Tok::Open(_)) => {
                            let Some(Tok::Open(p)) = it.next() else {
                                unreachable!()
                            };
                            let (inner, close) = parse_stmts(it, Some(&p))?;
                            block = Some(Block {
                                open: p,
                                stmts: inner,
                                close: close.clone(),
                            });
                            if close.is_none() {
                                // Input ended inside this block; no more statements.
                                stmts.push(Stmt {
                                    keyword,
                                    args,
                                    block,
                                });
                                return Ok((stmts, None));
                            }
                            break;
                        }
                        Some(Tok::Newline) => {
                            it.next();
                            // keepalived also accepts the `{` alone on the next line.
                            if block.is_none() && next_is_open(it) {
                                continue;
                            }
                            break;
                        }
                        Some(Tok::Close(_)) | None => break,
                    }
                }
                stmts.push(Stmt {
                    keyword,
                    args,
                    block,
                });
            }
        }
    }
}

/// Whether the next non-newline token is `{` (and if so, leaves the newlines
/// consumed). Used for a `{` on the line after its keyword.
fn next_is_open(it: &mut Toks) -> bool {
    // Only a single newline gap is allowed; look one token ahead.
    matches!(it.peek(), Some(Tok::Open(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &Stmt) -> &str {
        &s.keyword.text
    }

    #[test]
    fn statements_blocks_comments_quotes() {
        let text = "! comment\nglobal_defs {\n  router_id LVS_1 # trailing\n  notification_email_from \"a b\"\n}\nvrrp_instance VI { state MASTER }\n";
        let s = read_str("t.conf", text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(kw(&s[0]), "global_defs");
        let b = s[0].block.as_ref().unwrap();
        assert_eq!(kw(&b.stmts[0]), "router_id");
        assert_eq!(b.stmts[0].args[0].text, "LVS_1");
        assert_eq!(b.stmts[1].args[0].text, "a b");
        assert_eq!(b.stmts[1].args[0].pos.line, 4);
        assert_eq!(b.stmts[1].args[0].pos.col, 27);
        let vi = &s[1];
        assert_eq!(vi.args[0].text, "VI");
        assert_eq!(kw(&vi.block.as_ref().unwrap().stmts[0]), "state");
    }

    #[test]
    fn brace_on_next_line() {
        let s = read_str("t", "virtual_server 1.2.3.4 80\n{\n delay_loop 6\n}\n").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].block.as_ref().unwrap().stmts.len(), 1);
    }

    #[test]
    fn stray_close_and_unterminated_quote() {
        let e = read_str("t", "a 1\n}\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (2, 1));
        assert!(matches!(e.kind, ErrorKind::UnexpectedClose));
        let e = read_str("t", "a \"open\n").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::UnterminatedQuote));
        assert_eq!((e.pos.line, e.pos.col), (1, 3));
    }

    #[test]
    fn unclosed_block_keeps_open_position() {
        let s = read_str("t", "x {\n y {\n  z 1\n }\n").unwrap();
        let b = s[0].block.as_ref().unwrap();
        assert!(b.close.is_none());
        assert_eq!(b.open.line, 1);
    }

    #[test]
    fn include_with_glob_sorted_and_relative() {
        let dir = std::env::temp_dir().join(format!("lbcfg-inc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(dir.join("conf.d/b.conf"), "b 2\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "a 1\n").unwrap();
        std::fs::write(
            dir.join("main.conf"),
            "first 0\ninclude conf.d/*.conf\nlast 3\n",
        )
        .unwrap();
        let s = read_file(&dir.join("main.conf")).unwrap();
        let names: Vec<_> = s.iter().map(kw).collect();
        assert_eq!(names, ["first", "a", "b", "last"]);
        assert!(s[1].keyword.pos.file.ends_with("conf.d/a.conf"));
        // A missing plain include names the including line.
        std::fs::write(dir.join("bad.conf"), "\ninclude nope.conf\n").unwrap();
        let e = read_file(&dir.join("bad.conf")).unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(matches!(e.kind, ErrorKind::Io { .. }));
        // An include loop stops at the depth limit.
        std::fs::write(dir.join("loop.conf"), "include loop.conf\n").unwrap();
        let e = read_file(&dir.join("loop.conf")).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::IncludeDepth(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
