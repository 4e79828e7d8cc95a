//! Sending a UDP session's datagrams: one system call per datagram, or, with segmentation offload,
//! one per run of datagrams to the same address ([`crate::sys::send_segments`]).
//!
//! A session fills datagrams up to its datagram size, so what it has to send in one turn is a run
//! of full datagrams of one size, then a shorter last one: exactly the shape `UDP_SEGMENT` takes
//! (every segment of one size, the last possibly shorter). A datagram that does not fit the run
//! (another size, another address) ends it.

use std::io;
use std::net::SocketAddr;

use framewire_protocol::session::{Instant, Session, Transmit};
use framewire_protocol::wire::MAX_DATAGRAM_SIZE;
use log::{debug, info};
use mio::net::UdpSocket;

use crate::capture::Way;
use crate::shared::Shared;
use crate::sys;

/// The most bytes one segmented send carries (the kernel's bound on a UDP payload).
const MAX_RUN_BYTES: usize = MAX_DATAGRAM_SIZE;

/// Where a worker's UDP datagrams are written and sent from.
#[derive(Debug)]
pub(crate) struct UdpSender {
    /// Room for a run of datagrams and one more of the largest size.
    out: Vec<u8>,
    /// Whether to send runs of datagrams in one call; turned off for good when the kernel
    /// refuses.
    segment: bool,
    local: SocketAddr,
}

/// The datagrams written but not yet sent: `out[..len]`, `count` of them, all of `size` bytes
/// but the last, all to `to`.
#[derive(Debug, Clone, Copy)]
struct Run {
    len: usize,
    count: usize,
    size: usize,
    to: SocketAddr,
}

impl UdpSender {
    pub(crate) fn new(local: SocketAddr, segment: bool) -> Self {
        Self {
            out: vec![0u8; MAX_RUN_BYTES + MAX_DATAGRAM_SIZE],
            segment,
            local,
        }
    }

    /// Scratch room for one datagram (a handshake reply).
    pub(crate) fn scratch(&mut self) -> &mut [u8] {
        &mut self.out[..MAX_DATAGRAM_SIZE]
    }

    /// Sends the first `len` bytes of [`UdpSender::scratch`] to `to`, on their own.
    pub(crate) fn send_scratch(
        &self,
        socket: &UdpSocket,
        len: usize,
        to: SocketAddr,
        shared: &Shared,
    ) {
        let datagram = &self.out[..len];
        shared.capture(|c| c.udp(to, self.local, Way::Out, datagram));
        send_to(socket, datagram, to);
    }

    /// Sends everything `session` has to send now.
    pub(crate) fn send_all(
        &mut self,
        session: &mut Session,
        now: Instant,
        socket: &UdpSocket,
        shared: &Shared,
    ) {
        let local = self.local;
        self.send_from(
            socket,
            |buf| session.poll_transmit(now, buf),
            |to, datagram| shared.capture(|c| c.udp(to, local, Way::Out, datagram)),
        );
    }

    /// Sends the datagrams `next` writes (each into the buffer it is given, until it returns
    /// `None`), showing each to `observe` first; returns the system calls it took.
    fn send_from(
        &mut self,
        socket: &UdpSocket,
        mut next: impl FnMut(&mut [u8]) -> Option<Transmit>,
        mut observe: impl FnMut(SocketAddr, &[u8]),
    ) -> usize {
        let mut calls = 0;
        let mut run: Option<Run> = None;
        loop {
            let start = run.map_or(0, |r| r.len);
            let Some(t) = next(&mut self.out[start..]) else {
                break;
            };
            let datagram = &self.out[start..start + t.len];
            observe(t.destination, datagram);
            if !self.segment {
                send_to(socket, datagram, t.destination);
                calls += 1;
                continue;
            }
            match run {
                Some(r) if r.joins(t.len, t.destination) => {
                    let r = Run {
                        len: r.len + t.len,
                        count: r.count + 1,
                        ..r
                    };
                    if t.len < r.size {
                        // A shorter datagram is the last a run can take.
                        calls += self.flush(socket, r);
                        run = None;
                    } else {
                        run = Some(r);
                    }
                }
                other => {
                    if let Some(r) = other {
                        calls += self.flush(socket, r);
                        self.out.copy_within(start..start + t.len, 0);
                    }
                    run = Some(Run {
                        len: t.len,
                        count: 1,
                        size: t.len,
                        to: t.destination,
                    });
                }
            }
        }
        if let Some(r) = run {
            calls += self.flush(socket, r);
        }
        calls
    }

    /// Sends a run; returns the system calls it took.
    fn flush(&mut self, socket: &UdpSocket, run: Run) -> usize {
        let bytes = &self.out[..run.len];
        if run.count == 1 {
            send_to(socket, bytes, run.to);
            return 1;
        }
        // Two datagrams of `size` fit in 65,507 bytes, so `size` fits a `u16`; were it not to, the
        // run goes out one datagram per call, as the kernel would have refused it.
        let segmented = u16::try_from(run.size)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
            .and_then(|size| sys::send_segments(socket, bytes, size, run.to));
        match segmented {
            Ok(_) => 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // As a single datagram that would block: lost, and resent by its session.
                debug!("{}: udp send would block", run.to);
                1
            }
            Err(e) => {
                if sys::segmentation_unsupported(&e) {
                    info!("udp segmentation offload refused ({e}); one datagram per call from now");
                    self.segment = false;
                } else {
                    debug!("{}: udp send failed: {e}", run.to);
                }
                for datagram in bytes.chunks(run.size) {
                    send_to(socket, datagram, run.to);
                }
                1 + run.count
            }
        }
    }
}

impl Run {
    /// Whether a datagram of `len` bytes to `to` may follow this run's datagrams in one send:
    /// same address, no larger, and within the kernel's bounds on one send (where segmentation
    /// is not offered, `MAX_SEGMENTS` is 1 and nothing joins).
    fn joins(&self, len: usize, to: SocketAddr) -> bool {
        to == self.to
            && len <= self.size
            && self.count < sys::MAX_SEGMENTS
            && self.len + len <= MAX_RUN_BYTES
    }
}

fn send_to(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) {
    match socket.send_to(datagram, to) {
        Ok(_) => {}
        // The session resends what must arrive; nothing waits for the socket.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => debug!("{to}: udp send would block"),
        Err(e) => debug!("{to}: udp send failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket as StdSocket;
    use std::time::Duration;

    use super::*;

    /// A datagram of `len` bytes that says which one it is.
    fn datagram(index: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (index * 31 + i) as u8).collect()
    }

    fn receiver() -> StdSocket {
        let s = StdSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Sends `plan` (destination, length) through a sender; returns the system calls it took
    /// and what it showed the observer.
    fn send(segment: bool, plan: &[(SocketAddr, usize)]) -> (usize, Vec<(SocketAddr, Vec<u8>)>) {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut sender = UdpSender::new(socket.local_addr().unwrap(), segment);
        let mut queue = plan.iter().enumerate();
        let mut observed = Vec::new();
        let calls = sender.send_from(
            &socket,
            |buf| {
                let (i, &(to, len)) = queue.next()?;
                buf[..len].copy_from_slice(&datagram(i, len));
                Some(Transmit {
                    destination: to,
                    len,
                })
            },
            |to, d| observed.push((to, d.to_vec())),
        );
        (calls, observed)
    }

    fn receive(socket: &StdSocket, n: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 65_536];
        (0..n)
            .map(|_| {
                let (len, _) = socket.recv_from(&mut buf).unwrap();
                buf[..len].to_vec()
            })
            .collect()
    }

    fn expected(plan: &[(SocketAddr, usize)]) -> Vec<Vec<u8>> {
        plan.iter()
            .enumerate()
            .map(|(i, &(_, len))| datagram(i, len))
            .collect()
    }

    #[test]
    fn runs_of_one_size_leave_in_one_call_and_arrive_as_the_datagrams_they_were() {
        let r = receiver();
        let to = r.local_addr().unwrap();
        // A full run ended by a shorter datagram; a larger one starts a run of its own, which a
        // shorter one ends; then a datagram alone.
        let sizes = [1200, 1200, 1200, 700, 1200, 300, 400, 900];
        let plan: Vec<_> = sizes.iter().map(|&len| (to, len)).collect();
        let (calls, observed) = send(true, &plan);
        assert_eq!(receive(&r, plan.len()), expected(&plan));
        if cfg!(target_os = "linux") {
            // [1200 1200 1200 700] [1200 300] [400] [900]
            assert_eq!(calls, 4);
        }
        let shown: Vec<_> = observed.into_iter().map(|(_, d)| d).collect();
        assert_eq!(
            shown,
            expected(&plan),
            "every datagram is shown to the capture"
        );
    }

    #[test]
    fn without_segmentation_every_datagram_is_a_call_of_its_own() {
        let r = receiver();
        let to = r.local_addr().unwrap();
        let plan: Vec<_> = [1200, 1200, 1200, 700]
            .iter()
            .map(|&len| (to, len))
            .collect();
        let (calls, _) = send(false, &plan);
        assert_eq!(calls, plan.len());
        assert_eq!(receive(&r, plan.len()), expected(&plan));
    }

    #[test]
    fn a_run_ends_at_another_address_and_at_the_kernels_bounds() {
        let (a, b) = (receiver(), receiver());
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // 100 datagrams of 1200 bytes: 54 fit the 65,507-byte bound of one send, then 46.
        let mut plan: Vec<_> = (0..100).map(|_| (to_a, 1200)).collect();
        // Another address ends the run even at the same size.
        plan.extend([(to_b, 1200), (to_b, 1200), (to_a, 1200)]);
        // 70 small ones: 64 segments at most per send, then 6.
        plan.extend((0..70).map(|_| (to_b, 100)));
        let (calls, _) = send(true, &plan);
        let (for_a, for_b): (Vec<_>, Vec<_>) = expected(&plan)
            .into_iter()
            .zip(&plan)
            .partition(|(_, (to, _))| *to == to_a);
        let for_a: Vec<_> = for_a.into_iter().map(|(d, _)| d).collect();
        let for_b: Vec<_> = for_b.into_iter().map(|(d, _)| d).collect();
        assert_eq!(receive(&a, for_a.len()), for_a);
        assert_eq!(receive(&b, for_b.len()), for_b);
        if cfg!(target_os = "linux") {
            // [54] [46] [2 to b] [1 to a] [64] [6]
            assert_eq!(calls, 6);
        }
    }
}
