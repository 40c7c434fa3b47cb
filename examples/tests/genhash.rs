//! `genhash` against an in-process HTTP server: it prints the body's MD5
//! as keepalived's genhash does, and exits non-zero when the fetch fails.

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn genhash(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_genhash"))
        .args(args)
        .output()
        .expect("run genhash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn prints_the_body_digest_and_fails_loudly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut b = [0u8; 256];
                while !req.ends_with(b"\r\n\r\n") {
                    match s.read(&mut b).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let reply: &[u8] = if req.starts_with(b"GET /chunked ") {
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld\n\r\n0\r\n\r\n"
                } else {
                    b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n"
                };
                let _ = s.write_all(reply).await;
            });
        }
    });
    let out = tokio::task::spawn_blocking({
        let port = port.clone();
        move || genhash(&["-s", "127.0.0.1", "-p", &port, "-u", "/index.html"])
    })
    .await
    .unwrap();
    assert!(out.status.success());
    // md5("hello world\n"), as `md5sum` and keepalived's genhash print it.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "6f5902ac237024bdd0c176cb93063dc4\n"
    );

    let out = tokio::task::spawn_blocking({
        let port = port.clone();
        move || {
            genhash(&[
                "-s",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                "/chunked",
                "-P",
                "1.1",
                "-v",
            ])
        }
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MD5SUM = 6f5902ac237024bdd0c176cb93063dc4"),
        "{text}"
    );

    // Nothing listens on port 1: a failure, with a non-zero exit (keepalived #766).
    let out = tokio::task::spawn_blocking(|| {
        genhash(&["-s", "127.0.0.1", "-p", "1", "-u", "/", "-t", "2"])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
