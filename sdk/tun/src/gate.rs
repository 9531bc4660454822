//! The gate in front of the stack: decides per inbound packet whether it may enter, and builds
//! the refusal the sender gets otherwise (a TCP RST, an ICMP unreachable) so applications fail
//! at once instead of retrying into silence. Nothing refused is forwarded anywhere.

use std::net::IpAddr;

use etherparse::{
    icmpv4::DestUnreachableHeader, icmpv6::DestUnreachableCode, Icmpv4Type, Icmpv6Type, NetSlice,
    PacketBuilder, SlicedPacket, TransportSlice,
};

/// What becomes of an inbound packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Into the stack.
    Pass,
    /// Dropped; the reply (if any) goes back to the sender.
    Refuse(Option<Vec<u8>>),
}

/// Why packets are refused now.
#[derive(Clone, Copy, Debug)]
pub struct GatePolicy {
    /// A session is up: new flows may open.
    pub tunnel_up: bool,
    /// IPv6 is carried; when not, every IPv6 packet is refused (never leaked: the routes send
    /// it here and it ends here).
    pub carry_ipv6: bool,
}

/// The TTL / hop limit of the refusals (they come from the "router" the TUN pretends to be).
const REPLY_TTL: u8 = 64;
/// An ICMPv6 error quotes at most this much of the packet (RFC 4443: the whole error must fit
/// in the minimum IPv6 MTU, 1280).
const ICMPV6_QUOTE: usize = 1280 - 40 - 8;

/// The verdict on `packet` (one IP packet) under `policy`.
pub fn judge(packet: &[u8], policy: GatePolicy) -> Verdict {
    let Ok(parsed) = SlicedPacket::from_ip(packet) else {
        // Not an IP packet the stack could use either.
        return Verdict::Refuse(None);
    };
    let (src, dst) = match &parsed.net {
        Some(NetSlice::Ipv4(v4)) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
        ),
        Some(NetSlice::Ipv6(v6)) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
        ),
        _ => return Verdict::Refuse(None),
    };
    let ipv6_blocked = dst.is_ipv6() && !policy.carry_ipv6;
    match &parsed.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            // A segment of a flow the stack already carries goes on even while the session is
            // being replaced (the stack resets it when its stream fails); a new flow (a SYN)
            // is refused at once. A RST is never answered.
            let opens = tcp.syn() && !tcp.ack();
            if tcp.rst() && ipv6_blocked {
                return Verdict::Refuse(None);
            }
            if tcp.rst() || !(ipv6_blocked || (opens && !policy.tunnel_up)) {
                return Verdict::Pass;
            }
            let payload_len = tcp.payload().len() as u32;
            let (seq, ack) = if tcp.ack() {
                (tcp.acknowledgment_number(), None)
            } else {
                let consumed = payload_len + u32::from(tcp.syn()) + u32::from(tcp.fin());
                (0, Some(tcp.sequence_number().wrapping_add(consumed)))
            };
            Verdict::Refuse(tcp_reset(
                (dst, tcp.destination_port()),
                (src, tcp.source_port()),
                seq,
                ack,
            ))
        }
        Some(TransportSlice::Udp(_)) => {
            if !ipv6_blocked && policy.tunnel_up {
                Verdict::Pass
            } else {
                Verdict::Refuse(unreachable(packet, src, dst))
            }
        }
        // ICMP and other protocols are not carried (HTTVPS carries TCP and UDP): dropped, never
        // answered here (a local echo reply would claim a reachability nobody checked).
        _ => Verdict::Refuse(None),
    }
}

/// A RST from `from` to `to`: `seq` and, for a segment that carried no ACK, the `ack` it needs.
fn tcp_reset(
    from: (IpAddr, u16),
    to: (IpAddr, u16),
    seq: u32,
    ack: Option<u32>,
) -> Option<Vec<u8>> {
    let ip = match (from.0, to.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), REPLY_TTL),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), REPLY_TTL),
        _ => return None,
    };
    let tcp = ip.tcp(from.1, to.1, seq, 0).rst();
    let tcp = match ack {
        Some(ack) => tcp.ack(ack),
        None => tcp,
    };
    let mut out = Vec::with_capacity(tcp.size(0));
    tcp.write(&mut out, &[]).ok()?;
    Some(out)
}

/// An ICMP(v6) destination unreachable for `packet`, from its destination back to its source.
fn unreachable(packet: &[u8], src: IpAddr, dst: IpAddr) -> Option<Vec<u8>> {
    let (builder, quote) = match (dst, src) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            // RFC 792: the IP header and the first 8 bytes of its payload; quoting the whole
            // header-plus-8 of a packet with options is fine too.
            let header_len = usize::from(packet.first()? & 0x0f) * 4;
            let quote = &packet[..packet.len().min(header_len + 8)];
            let b = PacketBuilder::ipv4(from.octets(), to.octets(), REPLY_TTL).icmpv4(
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Network),
            );
            (Builder::V4(b), quote)
        }
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            let quote = &packet[..packet.len().min(ICMPV6_QUOTE)];
            let b = PacketBuilder::ipv6(from.octets(), to.octets(), REPLY_TTL).icmpv6(
                Icmpv6Type::DestinationUnreachable(DestUnreachableCode::Prohibited),
            );
            (Builder::V6(b), quote)
        }
        _ => return None,
    };
    let mut out = Vec::new();
    match builder {
        Builder::V4(b) => b.write(&mut out, quote).ok()?,
        Builder::V6(b) => b.write(&mut out, quote).ok()?,
    }
    Some(out)
}

enum Builder {
    V4(etherparse::PacketBuilderStep<etherparse::Icmpv4Header>),
    V6(etherparse::PacketBuilderStep<etherparse::Icmpv6Header>),
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: GatePolicy = GatePolicy {
        tunnel_up: true,
        carry_ipv6: false,
    };
    const DOWN: GatePolicy = GatePolicy {
        tunnel_up: false,
        carry_ipv6: false,
    };

    fn syn_v4() -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 2], [192, 0, 2, 1], 64)
            .tcp(40000, 443, 1000, 64240)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        v
    }

    fn udp(src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let b = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
            _ => unreachable!(),
        }
        .udp(5353, 53);
        let mut v = Vec::new();
        b.write(&mut v, b"query").unwrap();
        v
    }

    #[test]
    fn a_new_flow_passes_while_up_and_is_reset_while_down() {
        assert_eq!(judge(&syn_v4(), UP), Verdict::Pass);
        let Verdict::Refuse(Some(reply)) = judge(&syn_v4(), DOWN) else {
            panic!("a SYN while down gets a reply");
        };
        let parsed = SlicedPacket::from_ip(&reply).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = parsed.transport else {
            panic!("a TCP reply");
        };
        assert!(tcp.rst() && tcp.ack());
        assert_eq!(tcp.acknowledgment_number(), 1001, "acknowledges the SYN");
        assert_eq!((tcp.source_port(), tcp.destination_port()), (443, 40000));
        let Some(NetSlice::Ipv4(ip)) = parsed.net else {
            panic!("IPv4")
        };
        assert_eq!(ip.header().source_addr().octets(), [192, 0, 2, 1]);
        assert_eq!(ip.header().destination_addr().octets(), [10, 0, 0, 2]);
    }

    #[test]
    fn udp_while_down_gets_icmp_unreachable() {
        let packet = udp([10, 0, 0, 2].into(), [192, 0, 2, 53].into());
        assert_eq!(judge(&packet, UP), Verdict::Pass);
        let Verdict::Refuse(Some(reply)) = judge(&packet, DOWN) else {
            panic!("a reply");
        };
        let parsed = SlicedPacket::from_ip(&reply).unwrap();
        assert!(matches!(
            parsed.transport,
            Some(TransportSlice::Icmpv4(ref i)) if matches!(i.icmp_type(), Icmpv4Type::DestinationUnreachable(_))
        ));
    }

    #[test]
    fn ipv6_is_refused_unless_carried() {
        let packet = udp("fd00::2".parse().unwrap(), "2001:db8::53".parse().unwrap());
        let Verdict::Refuse(Some(reply)) = judge(&packet, UP) else {
            panic!("an ICMPv6 reply");
        };
        let parsed = SlicedPacket::from_ip(&reply).unwrap();
        assert!(matches!(parsed.transport, Some(TransportSlice::Icmpv6(_))));
        let carried = GatePolicy {
            carry_ipv6: true,
            ..UP
        };
        assert_eq!(judge(&packet, carried), Verdict::Pass);
    }

    #[test]
    fn icmp_and_garbage_are_dropped_silently() {
        let b = PacketBuilder::ipv4([10, 0, 0, 2], [192, 0, 2, 1], 64).icmpv4_echo_request(1, 1);
        let mut ping = Vec::new();
        b.write(&mut ping, b"ping").unwrap();
        assert_eq!(judge(&ping, UP), Verdict::Refuse(None));
        assert_eq!(judge(&[0x45, 0, 0], UP), Verdict::Refuse(None));
    }
}
