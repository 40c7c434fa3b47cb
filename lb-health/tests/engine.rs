//! The engine against local servers: deduplication, reload keeping state,
//! removal, bounded concurrency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lb_health::probe::{ConnectSpec, HttpSpec, ProbeSpec, UrlSpec};
use lb_health::{CheckKey, DownAction, Engine, EngineConfig, EngineEvent, Event, StateConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::Receiver;

const INTER: Duration = Duration::from_millis(40);

fn state() -> StateConfig {
    StateConfig::haproxy(INTER, 1, 2)
}

fn tcp_key(addr: SocketAddr) -> CheckKey {
    let mut c = ConnectSpec::new(addr);
    c.timeout(Duration::from_millis(500));
    CheckKey {
        probe: ProbeSpec::Tcp(c),
        state: state(),
    }
}

async fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A server counting accepted connections.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            n2.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, n)
}

async fn next(
    rx: &mut Receiver<EngineEvent<&'static str>>,
    within: Duration,
) -> Option<EngineEvent<&'static str>> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

fn is_down(e: &Event) -> bool {
    matches!(
        e,
        Event::Down {
            action: DownAction::Remove,
            ..
        }
    )
}

#[tokio::test]
async fn identical_checks_run_once_and_notify_every_subscriber() {
    let (mut engine, mut rx) = Engine::new(EngineConfig::default());
    let key = tcp_key(closed_port().await);
    let report = engine
        .reload([("vs1/rs", key.clone()), ("vs2/rs", key.clone())])
        .unwrap();
    assert_eq!((report.added, engine.len()), (1, 1));
    let mut got = Vec::new();
    for _ in 0..2 {
        let ev = next(&mut rx, Duration::from_secs(5))
            .await
            .expect("down event");
        assert!(is_down(&ev.event), "{ev:?}");
        got.push(ev.server);
    }
    got.sort();
    assert_eq!(got, ["vs1/rs", "vs2/rs"]);
    assert_eq!(engine.subscribers(&key).len(), 2);
}

#[tokio::test]
async fn reload_keeps_unchanged_state_and_tells_newcomers() {
    let (mut engine, mut rx) = Engine::new(EngineConfig::default());
    let down = tcp_key(closed_port().await);
    engine.reload([("a", down.clone())]).unwrap();
    let ev = next(&mut rx, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ev.server, "a");
    assert!(is_down(&ev.event));

    let (addr, _) = counting_server().await;
    let up = tcp_key(addr);
    let report = engine
        .reload([("a", down.clone()), ("a2", down.clone()), ("b", up.clone())])
        .unwrap();
    assert_eq!((report.kept, report.added, report.removed), (1, 1, 0));
    // The newcomer learns the current state at once.
    let ev = next(&mut rx, Duration::from_secs(1)).await.unwrap();
    assert_eq!(ev.server, "a2");
    assert!(is_down(&ev.event));
    // The kept check did not restart: a fresh one would start UP and report
    // DOWN again after `fall` failures (2 * 40 ms); the healthy one is silent.
    assert_eq!(next(&mut rx, INTER * 10).await, None);
}

#[tokio::test]
async fn removed_checks_stop() {
    let (mut engine, _rx) = Engine::<&'static str>::new(EngineConfig::default());
    let (addr, n) = counting_server().await;
    engine.reload([("a", tcp_key(addr))]).unwrap();
    tokio::time::sleep(INTER * 6).await;
    let before = n.load(Ordering::SeqCst);
    assert!(before >= 2, "ran {before} times");
    let report = engine.reload(std::iter::empty()).unwrap();
    assert_eq!((report.removed, engine.len()), (1, 0));
    // Let a connection already in flight land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = n.load(Ordering::SeqCst);
    tokio::time::sleep(INTER * 6).await;
    assert_eq!(
        n.load(Ordering::SeqCst),
        after,
        "a removed check still runs"
    );
}

#[tokio::test]
async fn a_bad_probe_changes_nothing() {
    let (mut engine, _rx) = Engine::<&'static str>::new(EngineConfig::default());
    let (addr, _) = counting_server().await;
    engine.reload([("a", tcp_key(addr))]).unwrap();
    let mut url = UrlSpec::new("/");
    url.regex("(", false);
    let bad = CheckKey {
        probe: ProbeSpec::Http(HttpSpec::new(ConnectSpec::new(addr), vec![url])),
        state: state(),
    };
    assert!(engine.reload([("b", bad)]).is_err());
    assert_eq!(engine.len(), 1);
}

#[tokio::test]
async fn omega_reports_down_on_shutdown() {
    let (mut engine, mut rx) = Engine::new(EngineConfig::default());
    let (addr, _) = counting_server().await;
    let mut key = tcp_key(addr);
    key.state.omega(true);
    engine.reload([("a", key)]).unwrap();
    engine.shutdown();
    let ev = next(&mut rx, Duration::from_secs(1)).await.unwrap();
    assert!(is_down(&ev.event));
}

#[tokio::test]
async fn concurrency_is_bounded() {
    // A slow HTTP server recording how many exchanges overlap.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cur = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let (c2, m2, s2) = (cur.clone(), max.clone(), served.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (cur, max, served) = (c2.clone(), m2.clone(), s2.clone());
            tokio::spawn(async move {
                let now = cur.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                tokio::time::sleep(Duration::from_millis(60)).await;
                cur.fetch_sub(1, Ordering::SeqCst);
                served.fetch_add(1, Ordering::SeqCst);
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
            });
        }
    });
    let mut config = EngineConfig::default();
    config.max_concurrency = 2;
    let (mut engine, _rx) = Engine::new(config);
    let keys: Vec<_> = (0..8)
        .map(|i| {
            let mut st = StateConfig::haproxy(Duration::from_millis(10), 1, 1);
            st.warmup(Duration::from_millis(1));
            let mut c = ConnectSpec::new(addr);
            c.timeout(Duration::from_secs(5));
            let key = CheckKey {
                probe: ProbeSpec::Http(HttpSpec::new(c, vec![UrlSpec::new(format!("/{i}"))])),
                state: st,
            };
            ("s", key)
        })
        .collect();
    assert_eq!(engine.reload(keys).unwrap().added, 8);
    while served.load(Ordering::SeqCst) < 16 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        max.load(Ordering::SeqCst) <= 2,
        "{} probes at once",
        max.load(Ordering::SeqCst)
    );
    assert_eq!(max.load(Ordering::SeqCst), 2);
    let stats = engine.stats();
    assert!(stats.completed >= 16 && stats.starts >= stats.completed);
}

#[tokio::test(start_paused = true)]
async fn first_runs_are_spread_over_the_interval() {
    // With the clock paused, each TCP check to a closed port fails at once;
    // the probe starts record their lag (0 here) and the first-run times.
    let (mut engine, _rx) = Engine::<u32>::new(EngineConfig::default());
    let addr = closed_port().await;
    let mut pairs = Vec::new();
    for i in 0..50u16 {
        let mut c = ConnectSpec::new(addr);
        c.max_reply_bytes(usize::from(i) + 1); // distinct keys
        pairs.push((
            u32::from(i),
            CheckKey {
                probe: ProbeSpec::Tcp(c),
                state: StateConfig::haproxy(Duration::from_secs(10), 1, 1),
            },
        ));
    }
    engine.reload(pairs).unwrap();
    let mut per_second = Vec::new();
    let mut last = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Let spawned probes finish their (instant) connects.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let done = engine.stats().completed;
        per_second.push(done - last);
        last = done;
    }
    // 50 first runs spread over 10 s: no single second holds half of them.
    assert!(per_second.iter().all(|&n| n < 25), "{per_second:?}");
}
