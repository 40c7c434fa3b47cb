//! The `lbsim` binary: output on the shipped example, JSON lines, and the
//! error contract (file and line named, exit code 2, nothing on stdout).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/lbsim")
}

fn lbsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbsim"))
        .args(args)
        .output()
        .expect("run lbsim")
}

/// Writes `files` into a fresh directory and returns their paths.
fn scratch(name: &str, files: &[(&str, &str)]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("lbsim-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    files
        .iter()
        .map(|(f, text)| {
            let p = dir.join(f);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        })
        .collect()
}

fn example_paths() -> (String, String) {
    let c = configs();
    (
        c.join("rules.txt").display().to_string(),
        c.join("clients.txt").display().to_string(),
    )
}

#[test]
fn example_output_matches_expected_and_readme() {
    let (rules, clients) = example_paths();
    let out = lbsim(&[&rules, &clients]);
    assert!(out.status.success(), "{out:?}");
    let expected = std::fs::read_to_string(configs().join("expected.txt")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    assert!(out.stderr.is_empty());
    // The README shows the same run.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&expected),
        "examples/README.md is out of date"
    );
    for f in ["rules.txt", "clients.txt"] {
        let text = std::fs::read_to_string(configs().join(f)).unwrap();
        assert!(readme.contains(&text), "README does not show {f}");
    }
}

#[test]
fn json_lines_mirror_the_text_output() {
    let (rules, clients) = example_paths();
    let text = String::from_utf8(lbsim(&[&rules, &clients]).stdout).unwrap();
    let out = lbsim(&["--json", &rules, &clients]);
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    assert_eq!(json.lines().count(), text.lines().count());
    for (j, t) in json.lines().zip(text.lines()) {
        let v: serde_json::Value = serde_json::from_str(j).unwrap();
        let input = v["input"].as_str().unwrap();
        let dest = v["dest"].as_str().unwrap_or("none");
        assert_eq!(format!("{input} -> {dest}"), t);
        assert_eq!(v["reason"].is_null(), !v["dest"].is_null());
    }
}

fn assert_fails(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "partial output: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

#[test]
fn a_bad_rule_line_names_file_and_line() {
    let p = scratch(
        "badrule",
        &[
            (
                "rules",
                "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w x\n",
            ),
            ("clients", "tcp 192.0.2.1:1000 10.0.0.1:80\n"),
        ],
    );
    let out = lbsim(&[&p[0], &p[1]]);
    assert_fails(&out, &format!("lbsim: {}:2: ", p[0]));
    let p = scratch(
        "dupdest",
        &[
            (
                "rules",
                "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1\n-a -t 10.0.0.1:80 -r 10.0.1.1\n",
            ),
            ("clients", "tcp 192.0.2.1:1000 10.0.0.1:80\n"),
        ],
    );
    assert_fails(
        &lbsim(&[&p[0], &p[1]]),
        &format!("{}:3: Destination already exists", p[0]),
    );
}

#[test]
fn a_bad_client_line_prints_nothing_at_all() {
    // The first two lines are fine; the third is not. No partial output.
    let p = scratch(
        "badclient",
        &[
            (
                "rules",
                "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m\n",
            ),
            (
                "clients",
                "tcp 192.0.2.1:1000 10.0.0.1:80\ntcp 192.0.2.2:1000 10.0.0.1:80\ntcp 192.0.2.3 10.0.0.1:80\n",
            ),
        ],
    );
    let out = lbsim(&[&p[0], &p[1]]);
    assert_fails(&out, &format!("lbsim: {}:3: bad client address", p[1]));
    assert_fails(
        &out,
        "expected `PROTO SRC:SPORT DST:DPORT [fwmark=N] [inactive]`",
    );
    assert_fails(&lbsim(&["--json", &p[0], &p[1]]), ":3: ");
}

#[test]
fn missing_files_and_bad_usage_exit_2() {
    let (rules, _) = example_paths();
    assert_fails(
        &lbsim(&[&rules, "/nonexistent/clients"]),
        "/nonexistent/clients: cannot read",
    );
    assert_fails(&lbsim(&[&rules]), "Usage");
}
