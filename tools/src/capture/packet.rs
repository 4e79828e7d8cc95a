//! From a captured packet's bytes to its addresses and TCP or UDP payload, for the link types
//! tcpdump writes: Ethernet (VLAN tags included), Linux cooked (SLL and SLL2, `-i any`), BSD
//! loopback (NULL and LOOP) and raw IP; IPv4 and IPv6.

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::DataLink;

/// What a packet carries, as far as framewire cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// TCP or UDP, and the payload (perhaps cut short by the capture).
    pub transport: Transport<'a>,
}

/// The transport layer of a [`Segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp {
        /// Its sequence number.
        seq: u32,
        /// SYN set.
        syn: bool,
        /// FIN or RST set: the direction ends.
        fin: bool,
        /// Its payload.
        payload: &'a [u8],
    },
    /// A UDP datagram's payload.
    Udp(&'a [u8]),
}

/// Why a packet carries no [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotASegment {
    /// A link type this reader does not know.
    UnknownLink,
    /// Neither IPv4 nor IPv6 (ARP, say).
    NotIp,
    /// Neither TCP nor UDP, or an IP fragment.
    NotTcpOrUdp,
    /// The headers were cut short or malformed.
    Malformed,
}

/// Linux cooked capture v1: 16 bytes, the protocol in the last two.
const SLL_LEN: usize = 16;
/// Linux cooked capture v2: 20 bytes, the protocol in the first two.
const SLL2_LEN: usize = 20;

/// Decodes one packet.
///
/// # Errors
/// Why it carries no TCP or UDP segment.
pub fn decode_packet(link: DataLink, data: &[u8]) -> Result<Segment<'_>, NotASegment> {
    let sliced = match link {
        DataLink::ETHERNET => {
            LaxSlicedPacket::from_ethernet(data).map_err(|_| NotASegment::Malformed)?
        }
        DataLink::LINUX_SLL => {
            let header = data.get(..SLL_LEN).ok_or(NotASegment::Malformed)?;
            let protocol = EtherType(u16::from_be_bytes([header[14], header[15]]));
            LaxSlicedPacket::from_ether_type(protocol, &data[SLL_LEN..])
        }
        DataLink::LINUX_SLL2 => {
            let header = data.get(..SLL2_LEN).ok_or(NotASegment::Malformed)?;
            let protocol = EtherType(u16::from_be_bytes([header[0], header[1]]));
            LaxSlicedPacket::from_ether_type(protocol, &data[SLL2_LEN..])
        }
        // A 4-byte address family (host order for NULL, network order for LOOP); the IP version
        // nibble says the same, so the family is skipped and IP read directly.
        DataLink::NULL | DataLink::LOOP => {
            let ip = data.get(4..).ok_or(NotASegment::Malformed)?;
            LaxSlicedPacket::from_ip(ip).map_err(|_| NotASegment::Malformed)?
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => {
            LaxSlicedPacket::from_ip(data).map_err(|_| NotASegment::Malformed)?
        }
        _ => return Err(NotASegment::UnknownLink),
    };
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(LaxNetSlice::Arp(_)) | None => {
            return Err(match sliced.stop_err {
                Some(_) => NotASegment::Malformed,
                None => NotASegment::NotIp,
            });
        }
    };
    match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Ok(Segment {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            transport: Transport::Tcp {
                seq: tcp.sequence_number(),
                syn: tcp.syn(),
                fin: tcp.fin() || tcp.rst(),
                payload: tcp.payload(),
            },
        }),
        Some(TransportSlice::Udp(udp)) => Ok(Segment {
            src: SocketAddr::new(src_ip, udp.source_port()),
            dst: SocketAddr::new(dst_ip, udp.destination_port()),
            transport: Transport::Udp(udp.payload()),
        }),
        _ if sliced.stop_err.is_some() => Err(NotASegment::Malformed),
        _ => Err(NotASegment::NotTcpOrUdp),
    }
}
