//! Accept_Mode False enforcement (nftables table `inet lb_vrrp`) shared
//! between routers and cleaned up, in a network namespace:
//!
//! 1. two VRIDs of one [`MultiDriver`] hold the same VIP with Accept_Mode
//!    False; the first to leave Active neither unblocks nor removes the
//!    other's VIP;
//! 2. an element the driver does not own (another process's) keeps the
//!    table after the driver stops; only its own element goes;
//! 3. a [`Driver`] whose table was deleted under it (by another process
//!    whose sets were empty) re-creates it when it blocks; when it stops
//!    with both sets empty, the table is gone.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc;
use std::time::Duration;

use lb_testing_netns::{Host, lab_or_skip};
use lb_vrrp::linux::{Driver, MultiCommand, MultiDriver};
use lb_vrrp::wire::Version;
use lb_vrrp::{Config, Event, State, VirtualRouter};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    lb_testing_netns::wait_for(what, 10, f);
}

/// Runs `f` to completion on a current-thread runtime (in the calling
/// thread, so in its network namespace).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn router(vrid: u8) -> VirtualRouter {
    let mut cfg = Config::new(Version::V3, vrid, "10.0.0.1".parse().unwrap());
    cfg.priority = 150;
    cfg.interval = 10;
    cfg.accept_mode = false;
    cfg.virtual_addresses = vec![VIP];
    VirtualRouter::new(cfg).unwrap()
}

/// The table as nft lists it, `None` when it does not exist.
fn table(h: &Host) -> Option<String> {
    h.run("nft", ["list", "table", "inet", "lb_vrrp"])
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn nft(h: &Host, script: &str) {
    h.run("nft", [script]).unwrap();
}

#[test]
fn netns_accept_mode_elements_are_shared_and_the_table_cleaned_up() {
    let Some(lab) = lab_or_skip!("vrrpaccx", "nft") else {
        return;
    };
    let a = lab.add_host("a").unwrap();
    let peer = lab.add_host("peer").unwrap();
    lab.link(&a, "eth0", &peer, "eth0").unwrap();
    a.add_addr("eth0", Ipv4Addr::new(10, 0, 0, 1), 24).unwrap();
    assert!(table(&a).is_none());

    // 1. Two routers, one VIP.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (state_tx, state_rx) = mpsc::channel::<(usize, State)>();
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let driver = a
        .spawn_thread(move || {
            block_on(async move {
                let mut d = MultiDriver::new().unwrap();
                d.add(router(1), "eth0").unwrap();
                d.add(router(2), "eth0").unwrap();
                d.on_event(move |i, _, ev| {
                    if let Event::StateChanged { to, .. } = ev {
                        let _ = state_tx.send((i, *to));
                    }
                });
                cmd_tx.send(d.commands()).unwrap();
                d.run(stop_rx).await
            })
        })
        .unwrap();
    let commands: tokio::sync::mpsc::UnboundedSender<MultiCommand> = cmd_rx.recv().unwrap();
    let mut master = [false; 2];
    while master != [true; 2] {
        let (i, to) = state_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        master[i] = to == State::Master;
    }
    let t = table(&a).expect("the table while blocking");
    assert!(t.contains("10.0.0.100"), "{t}");
    // Router 0 leaves Active (its own shutdown); router 1 still blocks.
    let (done_tx, done_rx) = mpsc::channel();
    commands
        .send(Box::new(move |d: &mut MultiDriver| {
            let now = d.now();
            d.router_mut(0).handle_shutdown(now);
            d.flush(0);
            done_tx.send(()).unwrap();
        }))
        .unwrap();
    done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        state_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        (0, State::Initialize)
    );
    let t = table(&a).expect("the table while router 1 blocks");
    assert!(
        t.contains("10.0.0.100"),
        "router 0 unblocked router 1's VIP: {t}"
    );
    assert!(
        a.has_addr("eth0", VIP).unwrap(),
        "router 0 removed router 1's VIP"
    );

    // 2. Another user's element keeps the table.
    nft(&a, "add element inet lb_vrrp vips4 { 10.0.0.200 }");
    stop_tx.send(()).unwrap();
    driver.join().unwrap().unwrap();
    assert!(
        !a.has_addr("eth0", VIP).unwrap(),
        "the last holder removed the VIP"
    );
    let t = table(&a).expect("the table, still used by another");
    assert!(!t.contains("10.0.0.100") && t.contains("10.0.0.200"), "{t}");
    nft(&a, "delete element inet lb_vrrp vips4 { 10.0.0.200 }");

    // 3. One Driver; the table is deleted under it before it blocks.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let driver = a
        .spawn_thread(move || {
            block_on(async move {
                let mut d = Driver::new(router(3), "eth0").unwrap();
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                d.run(stop_rx).await
            })
        })
        .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(table(&a).is_some(), "Driver::new creates the table");
    nft(&a, "delete table inet lb_vrrp");
    go_tx.send(()).unwrap();
    wait_for("the VIP blocked again", || {
        table(&a).is_some_and(|t| t.contains("10.0.0.100") && t.contains("@vips4 drop"))
    });
    wait_for("the VIP", || a.has_addr("eth0", VIP).unwrap());
    stop_tx.send(()).unwrap();
    driver.join().unwrap().unwrap();
    assert!(!a.has_addr("eth0", VIP).unwrap());
    assert!(table(&a).is_none(), "{:?}", table(&a));
}
