"""The mobile binding driven from its generated Python bindings the way an app drives it.

Run by tests/python_bindings.rs against a real gateway, with the environment naming the link
(HTTVPS_LINK), the device's subscription URL (SUBSCRIPTION_URL), the DNS responder behind the tunnel (DNS_RESOLVER, ip:port) and a TCP target that
greets every connection (TCP_TARGET, ip:port, greeting in TCP_GREETING). For each packet I/O
(callbacks as on iOS, a file descriptor as on Android), and once from the subscription: start, wait for the tunnel to be up, a
UDP DNS query as an IP packet gets its answer packet, a TCP SYN gets a SYN-ACK and the target's
greeting after the ACK, statistics count it, stop reports Stopped and refuses later packets.
Builds packets with the standard library only.
"""

import os
import queue
import socket
import struct
import sys
import time

import httvps_ffi as ffi

LINK = os.environ["HTTVPS_LINK"]
SUBSCRIPTION_URL = os.environ["SUBSCRIPTION_URL"]
DNS_RESOLVER = os.environ["DNS_RESOLVER"]
TCP_HOST, TCP_PORT = os.environ["TCP_TARGET"].rsplit(":", 1)
TCP_PORT = int(TCP_PORT)
GREETING = os.environ["TCP_GREETING"].encode()

DEVICE = "10.111.0.2"
DNS_ADDRESS = "10.111.0.53"
ANSWER_ADDRESS = bytes([192, 0, 2, 7])
WAIT = 15.0

SYN, RST, ACK, FIN, PSH = 0x02, 0x04, 0x10, 0x01, 0x08


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(protocol: int, src: str, dst: str, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0x4000, 64, protocol, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def pseudo(protocol: int, src: str, dst: str, length: int) -> bytes:
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, protocol, length)


def udp(src: str, sport: int, dst: str, dport: int, data: bytes) -> bytes:
    segment = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    sum_ = checksum(pseudo(17, src, dst, len(segment)) + segment) or 0xFFFF
    return ipv4(17, src, dst, segment[:6] + struct.pack("!H", sum_) + segment[8:])


def tcp(src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int,
        data: bytes = b"") -> bytes:
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0) + data
    sum_ = checksum(pseudo(6, src, dst, len(segment)) + segment)
    return ipv4(6, src, dst, segment[:16] + struct.pack("!H", sum_) + segment[18:])


def parse(packet: bytes) -> dict:
    """An IPv4 UDP or TCP packet's fields (others: version and protocol only)."""
    version = packet[0] >> 4
    if version != 4:
        return {"version": version}
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack("!H", packet[2:4])[0]
    out = {
        "version": 4,
        "protocol": packet[9],
        "src": socket.inet_ntoa(packet[12:16]),
        "dst": socket.inet_ntoa(packet[16:20]),
    }
    body = packet[ihl:total]
    if out["protocol"] == 17:
        out["sport"], out["dport"] = struct.unpack("!HH", body[:4])
        out["payload"] = body[8:]
    elif out["protocol"] == 6:
        sport, dport, seq, ack, offset, flags = struct.unpack("!HHIIBB", body[:14])
        out.update(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                   payload=body[(offset >> 4) * 4:])
    return out


def dns_query(ident: int, name: str) -> bytes:
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)


class Listener(ffi.StatusListener):
    def __init__(self):
        self.statuses = queue.Queue()

    def on_status(self, status):
        self.statuses.put(status)

    def wait_for(self, state):
        deadline = time.monotonic() + WAIT
        seen = []
        while time.monotonic() < deadline:
            try:
                status = self.statuses.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            seen.append(status)
            if status.state == state:
                return status
        raise AssertionError(f"no {state} within {WAIT} s; statuses: {seen}")


class CallbackIo(ffi.PacketWriter):
    """iOS's shape: packets in through send_packet, out through write_packet."""

    name = "callbacks"

    def __init__(self):
        self.packets = queue.Queue()
        self.tunnel = None

    def write_packet(self, packet):
        self.packets.put(bytes(packet))

    def start(self, config, listener):
        self.tunnel = ffi.Tunnel.start_with_callbacks(config, self, listener)
        return self.tunnel

    def send(self, packet):
        self.tunnel.send_packet(packet)

    def recv(self, timeout):
        return self.packets.get(timeout=timeout)

    def close(self):
        pass


class FdIo:
    """Android's shape: a descriptor carrying one IP packet per read and write (a datagram
    socket pair stands in for the TUN device)."""

    name = "file descriptor"

    def __init__(self):
        self.app, self.device = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)

    def start(self, config, listener):
        return ffi.Tunnel.start_with_fd(config, self.device.fileno(), listener)

    def send(self, packet):
        self.app.send(packet)

    def recv(self, timeout):
        self.app.settimeout(timeout)
        try:
            return self.app.recv(65536)
        except socket.timeout:
            raise queue.Empty

    def close(self):
        self.app.close()
        self.device.close()


def expect(io, what, matches):
    """The first packet out that `matches`, skipping others (retransmissions, ICMP)."""
    deadline = time.monotonic() + WAIT
    skipped = []
    while time.monotonic() < deadline:
        try:
            packet = parse(io.recv(deadline - time.monotonic()))
        except queue.Empty:
            break
        if matches(packet):
            return packet
        skipped.append(packet)
    raise AssertionError(f"{io.name}: no {what} within {WAIT} s; other packets: {skipped}")


def exercise(io, sport_base, link=None, subscription_url=None):
    listener = Listener()
    config = ffi.TunnelConfig(link=link, subscription_url=subscription_url, mtu=1500,
                              dns_address=DNS_ADDRESS, dns_resolver=DNS_RESOLVER)
    tunnel = io.start(config, listener)
    up = listener.wait_for(ffi.TunnelState.UP)
    assert tunnel.status().state == ffi.TunnelState.UP, tunnel.status()
    print(f"{io.name} ({'link' if link else 'subscription'}): up through {up.gateway}")

    # DNS: a query to the tunnel's DNS address is answered by the resolver behind the gateway.
    dns_port = sport_base
    io.send(udp(DEVICE, dns_port, DNS_ADDRESS, 53, dns_query(0x4242, "example.com")))
    answer = expect(io, "DNS answer", lambda p: p.get("protocol") == 17
                    and p["dport"] == dns_port)
    assert answer["src"] == DNS_ADDRESS and answer["sport"] == 53, answer
    assert answer["dst"] == DEVICE, answer
    ident, flags, _, ancount = struct.unpack("!HHHH", answer["payload"][:8])
    assert ident == 0x4242 and flags & 0x8000 and ancount == 1, answer
    assert answer["payload"].endswith(ANSWER_ADDRESS), answer
    print(f"{io.name}: DNS answer {answer['payload'].hex()}")

    # TCP: SYN gets SYN-ACK; after the ACK the target's greeting arrives through the gateway.
    tcp_port = sport_base + 1
    isn = 1000
    io.send(tcp(DEVICE, tcp_port, TCP_HOST, TCP_PORT, isn, 0, SYN))
    syn_ack = expect(io, "SYN-ACK", lambda p: p.get("protocol") == 6
                     and p["dport"] == tcp_port)
    assert syn_ack["flags"] & (SYN | ACK) == SYN | ACK, syn_ack
    assert syn_ack["ack"] == isn + 1, syn_ack
    assert syn_ack["src"] == TCP_HOST and syn_ack["sport"] == TCP_PORT, syn_ack
    print(f"{io.name}: SYN-ACK seq {syn_ack['seq']}")
    io.send(tcp(DEVICE, tcp_port, TCP_HOST, TCP_PORT, isn + 1, syn_ack["seq"] + 1, ACK))
    data = expect(io, "the target's greeting", lambda p: p.get("protocol") == 6
                  and p["dport"] == tcp_port and p["payload"])
    assert not data["flags"] & RST, data
    assert data["payload"] == GREETING, data
    print(f"{io.name}: greeting {data['payload']!r}")
    io.send(tcp(DEVICE, tcp_port, TCP_HOST, TCP_PORT, isn + 1,
                data["seq"] + len(data["payload"]), ACK | RST))

    # The descriptor's reader counts a packet once it has read it: wait for the last ones.
    deadline = time.monotonic() + WAIT
    stats = tunnel.statistics()
    while (stats.packets_sent < 4 or stats.packets_received < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = tunnel.statistics()
    assert stats.packets_sent == 4 and stats.packets_received >= 3, stats
    assert stats.bytes_sent > 0 and stats.bytes_received > 0 and stats.sessions == 1, stats
    print(f"{io.name}: {stats}")

    started = time.monotonic()
    tunnel.stop()
    listener.wait_for(ffi.TunnelState.STOPPED)
    assert tunnel.status().state == ffi.TunnelState.STOPPED
    print(f"{io.name}: stopped in {time.monotonic() - started:.2f} s")
    if isinstance(io, CallbackIo):
        try:
            tunnel.send_packet(udp(DEVICE, dns_port, DNS_ADDRESS, 53, dns_query(1, "a.b")))
        except ffi.TunnelError.Stopped:
            pass
        else:
            raise AssertionError("send_packet after stop was accepted")
    tunnel.stop()  # a second stop does nothing
    io.close()


def main():
    exercise(CallbackIo(), 40000, link=LINK)
    exercise(FdIo(), 41000, link=LINK)
    exercise(CallbackIo(), 42000, subscription_url=SUBSCRIPTION_URL)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
