//! VPN mode as a user meets it, in network namespaces the test creates: `httvps-client --tun`
//! in a client namespace whose only link is a veth pair to this namespace, where the real
//! gateway, control plane and Shadowsocks node run. Plain `curl` (no proxy settings) downloads
//! 50 MiB through the tunnel, `dig` resolves through it, a UDP echo goes round; with the
//! gateway stopped a capture on the veth sees nothing but the client's own reconnection
//! attempts; SIGTERM restores the namespace's routes and resolver. `--exclude` and `--route`
//! split the tunnel (judged by the address a target sees). Needs root (namespaces, TUN):
//! without it the test fails.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::netns::{must, ClientNamespace};
use common::process::Process;
use httvps_local_stack::{LocalStack, StackOptions};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UdpSocket};

const SIZE: usize = 50 * 1024 * 1024;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + i / 4099) as u8).collect()
}

/// `GET /download`: the 50 MiB pattern; anything else a short body.
async fn web_server(ip: Ipv4Addr) -> SocketAddr {
    let download: Arc<[u8]> = pattern(SIZE).into();
    let hello: Arc<[u8]> = Arc::from(&b"hello"[..]);
    common::web::serving(ip.into(), move |head| {
        if head.starts_with(b"GET /download") {
            download.clone()
        } else {
            hello.clone()
        }
    })
    .await
}

/// Answers every A query with 192.0.2.7.
async fn dns_server(ip: Ipv4Addr) -> SocketAddr {
    let socket = UdpSocket::bind((ip, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if n < 12 {
                continue;
            }
            // The question only (dig adds an EDNS OPT record, which the answer leaves out).
            let question_end = 12 + buf[12..n].iter().position(|b| *b == 0).unwrap_or(0) + 5;
            let mut answer = buf[..question_end.min(n)].to_vec();
            answer[2] = 0x81;
            answer[3] = 0x80;
            answer[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
            answer.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
            let _ = socket.send_to(&answer, from).await;
        }
    });
    addr
}

async fn udp_echo(ip: Ipv4Addr) -> SocketAddr {
    let socket = UdpSocket::bind((ip, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    addr
}

/// One UDP datagram to `to` from inside the namespace; the reply or a failure text.
fn udp_round_trip(ns: &ClientNamespace, to: SocketAddr, message: &str) -> Result<String, String> {
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(5)\n\
         s.connect(('{}',{}))\ns.send(b'{message}')\nsys.stdout.write(s.recv(2048).decode())",
        to.ip(),
        to.port()
    );
    let out = ns.exec("python3", &["-c", &script]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn start_client(ns: &ClientNamespace, link: &str, resolver: SocketAddr) -> Process {
    let mut command = ns.command(env!("CARGO_BIN_EXE_httvps-client"));
    command.args(["--tun", "--link", link, "--dns", &resolver.to_string()]);
    command.env("RUST_LOG", "warn");
    Process::start(command)
}

/// A capture on the host end of the veth of everything but the client's connection to the
/// gateway.
struct Capture {
    child: std::process::Child,
    file: std::path::PathBuf,
}

impl Capture {
    fn start(link: &str, gateway: SocketAddr, file: std::path::PathBuf) -> Capture {
        let filter = format!(
            "not (host {} and tcp port {}) and not arp and not (ip6 and icmp6)",
            gateway.ip(),
            gateway.port()
        );
        let mut child = Command::new("tcpdump")
            .args(["-i", link, "-n", "-U", "-w"])
            .arg(&file)
            .arg(&filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump is installed");
        // Capturing once it says it listens.
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let listening = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(listening.contains("listening on"), "tcpdump: {listening}");
        std::thread::spawn(move || for _ in lines {});
        Capture { child, file }
    }

    /// Stops the capture; every packet in it, one line each.
    fn stop(mut self) -> Vec<String> {
        must("kill", &["-INT", &self.child.id().to_string()]);
        let _ = self.child.wait();
        let out = must("tcpdump", &["-n", "-r", self.file.to_str().unwrap()]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_dns_and_udp_through_the_tun_with_kill_switch_and_restore() {
    let ns = ClientNamespace::create(0);
    let before = ns.network_state();
    let dir = tempfile::tempdir().unwrap();
    let mut options = StackOptions::ephemeral(dir.path());
    options.gateway_listen = SocketAddr::from((ns.host_ip, 0));
    let mut stack = LocalStack::start(options).await.expect("the stack starts");
    let gateway = stack.gateway().expect("running").local_addr();
    let web = web_server(ns.target_ip).await;
    let dns = dns_server(ns.target_ip).await;
    let echo = udp_echo(ns.target_ip).await;

    let client = start_client(&ns, &stack.link, dns);
    client.wait_for("connected: gateway").await;
    client.wait_for("TUN httvps0 up").await;

    // Plain curl, no proxy: 50 MiB through the TUN, intact.
    let file = dir.path().join("download.bin");
    let started = Instant::now();
    let out = ns.exec(
        "curl",
        &[
            "-sS",
            "--max-time",
            "120",
            "-o",
            file.to_str().unwrap(),
            &format!("http://{web}/download"),
        ],
    );
    assert!(
        out.status.success(),
        "curl through the TUN: {}\nclient: {:#?}",
        String::from_utf8_lossy(&out.stderr),
        client.lines()
    );
    let secs = started.elapsed().as_secs_f64();
    let got = std::fs::read(&file).unwrap();
    assert_eq!(got.len(), SIZE);
    assert_eq!(
        Sha256::digest(&got),
        Sha256::digest(pattern(SIZE)),
        "download intact"
    );
    println!(
        "50 MiB through the TUN: {secs:.2} s ({:.0} MiB/s)",
        50.0 / secs
    );

    // The system resolver points into the tunnel, and the query is answered through it.
    let resolv = ns.exec_ok("cat", &["/etc/resolv.conf"]);
    assert!(
        String::from_utf8_lossy(&resolv.stdout).contains("nameserver 198.18.0.2"),
        "{}",
        String::from_utf8_lossy(&resolv.stdout)
    );
    let out = ns.exec("dig", &["+short", "+time=5", "+tries=1", "a.example"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "192.0.2.7",
        "DNS through the tunnel: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A UDP echo round trip.
    assert_eq!(
        udp_round_trip(&ns, echo, "ping-through-tun"),
        Ok("ping-through-tun".into())
    );

    // IPv6 is routed into the TUN (and refused there), never around it; the default route
    // itself is untouched.
    for (family, probe) in [("-4", "192.0.2.99"), ("-6", "2001:db8::99")] {
        let route = ns.exec_ok("ip", &[family, "route", "get", probe]);
        assert!(
            String::from_utf8_lossy(&route.stdout).contains("dev httvps0"),
            "{probe} goes into the TUN: {}",
            String::from_utf8_lossy(&route.stdout)
        );
    }
    let gateway_route = ns.exec_ok("ip", &["route", "get", &gateway.ip().to_string()]);
    assert!(
        !String::from_utf8_lossy(&gateway_route.stdout).contains("httvps0"),
        "the gateway stays outside the tunnel"
    );

    // A target that refuses (nothing listens on the port): the application learns it at once.
    let closed = std::net::TcpListener::bind((ns.target_ip, 0)).unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let started = Instant::now();
    let out = ns.exec(
        "curl",
        &["-sS", "--max-time", "20", &format!("http://{closed_addr}/")],
    );
    assert!(!out.status.success(), "nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a refused connection fails at once, not by timeout ({:.1} s): {}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr)
    );

    // Kill switch: the gateway stops; nothing may leave around the tunnel, and new flows fail
    // at once.
    let status_lines = client.lines().len();
    stack.stop_gateway().await;
    let (_, down) = client.wait_for_after("down: ", status_lines).await;
    println!("after the gateway stopped: {down}");
    let capture = Capture::start(&ns.host_link, gateway, dir.path().join("leak.pcap"));
    let started = Instant::now();
    let out = ns.exec(
        "curl",
        &["-sS", "--max-time", "10", &format!("http://{web}/small")],
    );
    let curl_secs = started.elapsed().as_secs_f64();
    assert!(!out.status.success(), "no page while the tunnel is down");
    assert!(
        curl_secs < 3.0,
        "a new connection fails at once ({curl_secs:.1} s): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ns.exec("dig", &["+short", "+time=2", "+tries=1", "a.example"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("192.0.2.7"),
        "no answer while down"
    );
    assert!(
        udp_round_trip(&ns, echo, "leak?").is_err(),
        "no echo while down"
    );
    // Straight to the resolver and the target, as a misconfigured application would.
    let _ = ns.exec(
        "dig",
        &[
            &format!("@{}", dns.ip()),
            "-p",
            &dns.port().to_string(),
            "+time=1",
            "+tries=1",
            "a.example",
        ],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leaked = capture.stop();
    assert!(
        leaked.is_empty(),
        "packets left the namespace around the tunnel: {leaked:#?}"
    );

    // Back up: traffic flows again by itself.
    stack.start_gateway().await.expect("the gateway restarts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ns.exec(
            "curl",
            &["-sS", "--max-time", "5", &format!("http://{web}/small")],
        );
        if out.status.success() && out.stdout == b"hello" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no traffic 30 s after the gateway came back"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // SIGTERM: routes, device and resolver as they were.
    client.sigterm();
    client.wait_for("routes and DNS settings restored").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = client;
    while client.is_running() {
        assert!(Instant::now() < deadline, "the client exits after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ns.network_state(), before, "the namespace as it was");
    stack.stop().await;
}

/// Answers every connection with the address it came from, then closes.
async fn peer_echo(ip: Ipv4Addr) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = listener.accept().await {
            let _ = s.write_all(peer.ip().to_string().as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    addr
}

/// The address `target` sees a connection from the namespace come from: the client's own veth
/// address when it goes around the tunnel, the gateway's side when it goes through it.
fn seen_from(ns: &ClientNamespace, target: SocketAddr) -> String {
    let script = format!(
        "import socket,sys\ns=socket.create_connection(('{}',{}),timeout=10)\n\
         sys.stdout.write(s.recv(64).decode())",
        target.ip(),
        target.port()
    );
    let out = ns.exec("python3", &["-c", &script]);
    assert!(
        out.status.success(),
        "connect to {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn routed_by(ns: &ClientNamespace, destination: &str) -> String {
    let out = ns.exec_ok("ip", &["route", "get", destination]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn stop_client(client: Process) {
    client.sigterm();
    client.wait_for("routes and DNS settings restored").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = client;
    while client.is_running() {
        assert!(Instant::now() < deadline, "the client exits after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Split tunnelling: `--exclude` keeps a network outside the tunnel while everything else goes
/// in; `--route` sends only the networks it names into the tunnel. Judged by the address the
/// target sees and by the namespace's routes; both runs leave the namespace as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclude_and_route_split_the_tunnel() {
    let ns = ClientNamespace::create(1);
    let before = ns.network_state();
    let dir = tempfile::tempdir().unwrap();
    let mut options = StackOptions::ephemeral(dir.path());
    options.gateway_listen = SocketAddr::from((ns.host_ip, 0));
    let stack = LocalStack::start(options).await.expect("the stack starts");
    let target = peer_echo(ns.target_ip).await;
    let dns = dns_server(ns.target_ip).await;
    let direct = ns.client_ip.to_string();

    // Everything but the target's network goes into the tunnel.
    let mut command = ns.command(env!("CARGO_BIN_EXE_httvps-client"));
    command.args(["--tun", "--link", &stack.link, "--dns", &dns.to_string()]);
    command.args(["--exclude", &format!("{}/32", ns.target_ip)]);
    command.env("RUST_LOG", "warn");
    let client = Process::start(command);
    client.wait_for("TUN httvps0 up").await;
    client.wait_for("connected: gateway").await;
    assert_eq!(
        seen_from(&ns, target),
        direct,
        "an excluded network goes around the tunnel"
    );
    assert!(!routed_by(&ns, &ns.target_ip.to_string()).contains("httvps0"));
    assert!(
        routed_by(&ns, "192.0.2.99").contains("dev httvps0"),
        "the rest goes into the tunnel"
    );
    stop_client(client).await;
    assert_eq!(
        ns.network_state(),
        before,
        "the namespace as it was after --exclude"
    );

    // Only the target's network goes into the tunnel.
    let mut command = ns.command(env!("CARGO_BIN_EXE_httvps-client"));
    command.args(["--tun", "--link", &stack.link, "--dns", &dns.to_string()]);
    command.args(["--route", &format!("{}/32", ns.target_ip)]);
    command.env("RUST_LOG", "warn");
    let client = Process::start(command);
    client.wait_for("TUN httvps0 up").await;
    client.wait_for("connected: gateway").await;
    let seen = seen_from(&ns, target);
    assert_ne!(
        seen, direct,
        "a routed network goes through the tunnel (seen from {seen})"
    );
    assert!(routed_by(&ns, &ns.target_ip.to_string()).contains("dev httvps0"));
    assert!(
        !routed_by(&ns, "192.0.2.99").contains("httvps0"),
        "what --route does not name stays outside"
    );
    stop_client(client).await;
    assert_eq!(
        ns.network_state(),
        before,
        "the namespace as it was after --route"
    );
    stack.stop().await;
}

/// Without CAP_NET_ADMIN the client stops at once and says what it lacks.
#[test]
fn without_cap_net_admin_it_says_so() {
    let out = Command::new("setpriv")
        .args([
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--bounding-set=-all",
            "--",
            env!("CARGO_BIN_EXE_httvps-client"),
            "--tun",
            "--link",
            "httvps://dev:tok@127.0.0.1:9/p?fp=00",
        ])
        .output()
        .expect("setpriv (util-linux) is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not run: {stderr}");
    assert!(
        stderr.contains("CAP_NET_ADMIN"),
        "the error names the capability: {stderr}"
    );
    assert!(
        !Command::new("ip")
            .args(["link", "show", "httvps0"])
            .output()
            .unwrap()
            .status
            .success(),
        "no device was created"
    );
}
