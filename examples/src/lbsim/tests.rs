use super::*;

fn sim(rules: &str) -> Sim {
    let mut s = Sim::new();
    s.apply_rules("rules", rules).unwrap();
    s
}

fn go(s: &mut Sim, clients: &str) -> Vec<Option<SocketAddr>> {
    parse_clients("clients", clients)
        .unwrap()
        .iter()
        .map(|c| s.connect(c).unwrap().dest)
        .collect()
}

fn sa(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn restore_order_and_wlc_counts_active() {
    // -a lines in file order: 10.0.1.3 is added last, so it heads the list.
    let mut s = sim("-A -t 10.0.0.1:80 -s wlc\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 1\n");
    // wlc: all idle, the first in list order; an active conn weighs 256
    // inactive ones, so three SYN-only conns on .2 still beat one active on .3.
    let got = go(
        &mut s,
        "tcp 192.0.2.1:1000 10.0.0.1:80\n\
         tcp 192.0.2.2:1000 10.0.0.1:80 inactive\n\
         tcp 192.0.2.3:1000 10.0.0.1:80 inactive\n\
         tcp 192.0.2.4:1000 10.0.0.1:80 inactive\n\
         tcp 192.0.2.5:1000 10.0.0.1:80 inactive\n",
    );
    assert_eq!(
        got,
        vec![
            sa("10.0.1.3:80"),
            sa("10.0.1.2:80"),
            sa("10.0.1.1:80"),
            sa("10.0.1.2:80"),
            sa("10.0.1.1:80"),
        ]
    );
}

#[test]
fn udp_is_never_active() {
    let mut s = sim("-A -u 10.0.0.1:53 -s lc\n\
                     -a -u 10.0.0.1:53 -r 10.0.1.1:53 -m\n\
                     -a -u 10.0.0.1:53 -r 10.0.1.2:53 -m\n");
    let c = parse_clients("c", "udp 192.0.2.1:1000 10.0.0.1:53\n").unwrap();
    let a = s.connect(&c[0]).unwrap();
    assert!(!a.active);
    let id = s
        .director()
        .find_service(&ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: "10.0.0.1:53".parse().unwrap(),
        })
        .unwrap();
    let svc = s.director().service(id).unwrap();
    let inactive: u32 = svc.dests().map(|(_, d)| d.inactive_conns()).sum();
    assert_eq!(inactive, 1);
}

#[test]
fn persistence_netmask_and_fwmark() {
    let mut s = sim("-A -f 80 -s rr -p 600 -M 255.255.255.0\n\
                     -a -f 80 -r 10.0.1.1:0 -g\n\
                     -a -f 80 -r 10.0.1.2:0 -g\n");
    let got = go(
        &mut s,
        "tcp 192.0.2.1:1000 10.0.0.1:80 fwmark=80\n\
         tcp 192.0.2.200:1000 10.0.0.1:443 fwmark=0x50\n\
         tcp 198.51.100.1:1000 10.0.0.1:443 fwmark=80\n\
         tcp 198.51.100.1:1001 10.0.0.1:443\n",
    );
    assert_eq!(
        got,
        vec![
            sa("10.0.1.2:80"),
            sa("10.0.1.2:443"),
            sa("10.0.1.1:443"),
            None
        ]
    );
}

#[test]
fn thresholds_and_quiesced() {
    let mut s = sim("-A -t 10.0.0.1:80 -s rr\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1 -x 1\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 0\n");
    let got = go(
        &mut s,
        "tcp 192.0.2.1:1000 10.0.0.1:80\ntcp 192.0.2.1:1001 10.0.0.1:80\n",
    );
    // .2 is quiesced; .1 is OVERLOADed after one conn (-x 1).
    assert_eq!(got, vec![sa("10.0.1.1:80"), None]);
}

#[test]
fn edits_and_deletes_apply_in_order() {
    let mut s = sim("-A -t 10.0.0.1:80 -s rr\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.2:80 -m\n\
                     -e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 0\n\
                     -d -t 10.0.0.1:80 -r 10.0.1.1:80\n\
                     -a -t 10.0.0.1:80 -r 10.0.1.3:80 -m\n\
                     -E -t 10.0.0.1:80 -s wrr\n\
                     -Z\n");
    assert_eq!(
        go(&mut s, "tcp 192.0.2.1:1000 10.0.0.1:80\n"),
        vec![sa("10.0.1.3:80")]
    );
}

#[test]
fn rule_errors_name_file_and_line() {
    let mut s = Sim::new();
    let e = s
        .apply_rules(
            "r.txt",
            "-A -t 10.0.0.1:80 -s rr\n\n-A -t 10.0.0.1:80 -s rr\n",
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "r.txt:3: Service already exists");
    let e = Sim::new()
        .apply_rules("r", "-a -t 10.0.0.1:80 -r 10.0.1.1\n")
        .unwrap_err();
    assert_eq!(e.to_string(), "r:1: Service not defined");
    let e = Sim::new()
        .apply_rules("r", "-A -t 10.0.0.1:80 -s nope\n")
        .unwrap_err();
    assert!(e.message.starts_with("unknown scheduler `nope`"), "{e}");
    let e = Sim::new().apply_rules("r", "-L -n\n").unwrap_err();
    assert!(e.message.contains("not a table command"), "{e}");
    let e = Sim::new()
        .apply_rules("r", "-A -t 10.0.0.1:80 -x\n")
        .unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("r", 1));
    let e = Sim::new()
        .apply_rules("r", "-A -t 10.0.0.1:80\n-d -t 10.0.0.1:80 -r 10.0.1.1:80\n")
        .unwrap_err();
    assert_eq!(e.to_string(), "r:2: No such destination");
}

#[test]
fn client_errors_name_file_line_and_syntax() {
    for (text, needle) in [
        ("tcp 1.2.3.4:5\n", "too few fields"),
        ("icmp 1.2.3.4:5 10.0.0.1:80\n", "unknown protocol `icmp`"),
        ("tcp 1.2.3.4 10.0.0.1:80\n", "bad client address `1.2.3.4`"),
        ("tcp 1.2.3.4:5 10.0.0.1:99999\n", "bad virtual address"),
        ("tcp 1.2.3.4:5 [::1]:80\n", "mix IPv4 and IPv6"),
        ("tcp 1.2.3.4:5 10.0.0.1:80 fwmark=0\n", "bad fwmark `0`"),
        ("tcp 1.2.3.4:5 10.0.0.1:80 active\n", "unexpected `active`"),
    ] {
        let e = parse_clients("c.txt", &format!("# comment\n\n{text}")).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("c.txt", 3), "{text}");
        assert!(e.message.contains(needle), "{e}");
        assert!(e.message.contains(CLIENT_SYNTAX), "{e}");
    }
}

#[test]
fn run_formats_text_and_json() {
    let rules = "-A -t [2001:db8::1]:80 -s sh -b sh-port\n\
                 -a -t [2001:db8::1]:80 -r [2001:db8:1::1]:8080 -m\n";
    let clients = "tcp [2001:db8:9::1]:1000 [2001:db8::1]:80\n\
                   tcp [2001:db8:9::1]:20 [2001:db8::1]:80 inactive\n";
    let out = run("r", rules, "c", clients, false).unwrap();
    assert_eq!(
        out,
        "tcp [2001:db8:9::1]:1000 [2001:db8::1]:80 -> [2001:db8:1::1]:8080\n\
         tcp [2001:db8:9::1]:20 [2001:db8::1]:80 inactive -> none\n"
    );
    let out = run("r", rules, "c", clients, true).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["dest"], "[2001:db8:1::1]:8080");
    assert_eq!(lines[0]["service"], "-t [2001:db8::1]:80");
    assert_eq!(lines[0]["active"], true);
    assert_eq!(lines[0]["fwmark"], serde_json::Value::Null);
    assert_eq!(lines[1]["dest"], serde_json::Value::Null);
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(
        lines[1]["reason"],
        "source port 20 (FTP data) is never scheduled"
    );
}
