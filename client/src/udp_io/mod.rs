//! framewire's UDP socket code, the server's and the clients': sending a session's datagrams with
//! as few system calls as the platform allows, and receiving likewise.
//!
//! A session fills datagrams up to its datagram size, so what it has to send in one turn is a run
//! of full datagrams of one size, then a shorter last one: exactly the shape segmentation offload
//! takes (`UDP_SEGMENT` on Linux: every segment of one size, the last possibly shorter), which
//! [`UdpSender`] gathers. The receiving side can ask the kernel for the same shape back
//! ([`enable_coalesced_receive`], `UDP_GRO`): one read then holds several datagrams of one sender,
//! which [`Received::datagrams`] splits again. Where the kernel offers neither, both fall back to
//! one datagram per call, and a peer sees ordinary datagrams either way.
//!
//! This module does not read what the datagrams say: it moves them, whatever the session put in
//! them, and hands what it read to a session ([`Received::hand_to`]).

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use framewire_protocol::session::{Instant, Session, Transmit};
use framewire_protocol::wire::MAX_DATAGRAM_SIZE;
use log::{debug, info};
use mio::net::UdpSocket;

#[cfg(target_os = "linux")]
mod batch;
#[cfg(target_os = "linux")]
mod linux;
// Compiled and tested on Linux too, so the fallback builds and behaves wherever CI runs.
#[cfg(any(not(target_os = "linux"), test))]
mod other;

#[cfg(target_os = "linux")]
pub use batch::RecvBatch;
#[cfg(target_os = "linux")]
pub use linux::{
    MAX_SEGMENTS, enable_coalesced_receive, enable_receive_timestamps, enable_stream_timestamps,
    recv_coalesced, recv_stamped, segmentation_unsupported, send_segments,
};
#[cfg(not(target_os = "linux"))]
pub use other::{
    MAX_SEGMENTS, RecvBatch, enable_coalesced_receive, enable_receive_timestamps,
    enable_stream_timestamps, recv_coalesced, recv_stamped, segmentation_unsupported,
    send_segments,
};

/// The most bytes one segmented send carries (the kernel's bound on a UDP payload).
const MAX_RUN_BYTES: usize = MAX_DATAGRAM_SIZE;

/// One read from a UDP socket: one datagram, or several of one size from one sender.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The sender.
    pub from: SocketAddr,
    /// What was read.
    pub data: &'a [u8],
    /// The size of each datagram in `data` but the last, where the kernel coalesced them.
    segment: Option<usize>,
    /// When the kernel received it (system clock), where the socket asked for the stamp.
    arrived: Option<std::time::SystemTime>,
}

impl<'a> Received<'a> {
    pub(crate) fn new(from: SocketAddr, data: &'a [u8], segment: Option<usize>) -> Self {
        Self {
            from,
            data,
            segment,
            arrived: None,
        }
    }

    pub(crate) fn arrived(mut self, at: Option<std::time::SystemTime>) -> Self {
        self.arrived = at;
        self
    }

    /// When the kernel received the read (its system clock), if the socket asked for arrival
    /// times ([`enable_receive_timestamps`]).
    pub fn arrival(&self) -> Option<std::time::SystemTime> {
        self.arrived
    }

    /// The session time the read arrived at: `now` less how long it waited in the socket, never
    /// before `floor` (the last time the session was given) nor after `now`.
    pub fn arrived_at(&self, now: Instant, floor: Instant) -> Instant {
        arrival_instant(self.arrived, now, floor)
    }

    /// The datagrams the read holds, in the order they were sent (an empty datagram is one
    /// empty slice).
    pub fn datagrams(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let size = self.segment.unwrap_or(self.data.len()).max(1);
        let empty = self.data.is_empty().then_some(self.data);
        self.data.chunks(size).chain(empty)
    }

    /// Hands each datagram of the read to `session` as received at `now`, each in a buffer of its
    /// own (the session keeps parts of it).
    pub fn hand_to(&self, session: &mut Session, now: Instant) {
        for datagram in self.datagrams() {
            session.handle_datagram(now, self.from, Bytes::copy_from_slice(datagram));
        }
    }
}

/// The session time of a kernel arrival stamp `arrived`: `now` less how long it waited, never
/// before `floor` (the last time the session was given) nor after `now`; `now` without a stamp.
pub fn arrival_instant(
    arrived: Option<std::time::SystemTime>,
    now: Instant,
    floor: Instant,
) -> Instant {
    let waited = arrived
        .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
        .unwrap_or_default();
    let at = Instant::from_micros(
        now.as_micros()
            .saturating_sub(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX)),
    );
    at.max(floor).min(now)
}

/// Where a socket's outgoing datagrams are written and sent from: one system call per datagram,
/// or, with segmentation offload, one per run of datagrams to the same address.
#[derive(Debug)]
pub struct UdpSender {
    /// Room for a run of datagrams and one more of the largest size.
    out: Vec<u8>,
    /// Whether to send runs of datagrams in one call; turned off for good when the kernel
    /// refuses.
    segment: bool,
}

/// What [`UdpSender::send_from`] did.
#[derive(Debug)]
pub struct Sent {
    /// System calls made.
    pub calls: usize,
    /// The first send that failed for a reason other than a full socket buffer (a datagram the
    /// socket would not take is lost, and its session resends what must arrive).
    pub failure: Option<io::Error>,
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
    /// A sender that segments runs (where the kernel lets it) if `segment`.
    pub fn new(segment: bool) -> Self {
        Self {
            out: vec![0u8; MAX_RUN_BYTES + MAX_DATAGRAM_SIZE],
            segment,
        }
    }

    /// Scratch room for one datagram (a handshake reply).
    pub fn scratch(&mut self) -> &mut [u8] {
        &mut self.out[..MAX_DATAGRAM_SIZE]
    }

    /// Sends the first `len` bytes of [`UdpSender::scratch`] to `to` on their own, showing them to
    /// `observe` first.
    ///
    /// # Errors
    /// The send failed for a reason other than a full socket buffer.
    pub fn send_scratch(
        &self,
        socket: &UdpSocket,
        len: usize,
        to: SocketAddr,
        observe: impl FnOnce(SocketAddr, &[u8]),
    ) -> io::Result<()> {
        let datagram = &self.out[..len.min(MAX_DATAGRAM_SIZE)];
        observe(to, datagram);
        send_to(socket, datagram, to)
    }

    /// Sends the datagrams `next` writes (each into the buffer it is given, until it returns
    /// `None`; a session's `poll_transmit`), showing each to `observe` first.
    pub fn send_from(
        &mut self,
        socket: &UdpSocket,
        mut next: impl FnMut(&mut [u8]) -> Option<Transmit>,
        mut observe: impl FnMut(SocketAddr, &[u8]),
    ) -> Sent {
        let mut sent = Sent {
            calls: 0,
            failure: None,
        };
        let mut run: Option<Run> = None;
        loop {
            let start = run.map_or(0, |r| r.len);
            let Some(t) = next(&mut self.out[start..]) else {
                break;
            };
            let datagram = &self.out[start..start + t.len];
            observe(t.destination, datagram);
            if !self.segment {
                sent.note(send_to(socket, datagram, t.destination));
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
                        self.flush(socket, r, &mut sent);
                        run = None;
                    } else {
                        run = Some(r);
                    }
                }
                other => {
                    if let Some(r) = other {
                        self.flush(socket, r, &mut sent);
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
            self.flush(socket, r, &mut sent);
        }
        sent
    }

    /// Sends a run.
    fn flush(&mut self, socket: &UdpSocket, run: Run, sent: &mut Sent) {
        let bytes = &self.out[..run.len];
        if run.count == 1 {
            sent.note(send_to(socket, bytes, run.to));
            return;
        }
        // Two datagrams of `size` fit in 65,507 bytes, so `size` fits a `u16`; were it not to, the
        // run goes out one datagram per call, as the kernel would have refused it.
        let segmented = u16::try_from(run.size)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
            .and_then(|size| send_segments(socket, bytes, size, run.to));
        match segmented {
            Ok(_) => sent.note(Ok(())),
            // As a single datagram that would block: lost, and resent by its session.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                debug!("{}: udp send would block", run.to);
                sent.note(Ok(()));
            }
            Err(e) => {
                if segmentation_unsupported(&e) {
                    info!("udp segmentation offload refused ({e}); one datagram per call from now");
                    self.segment = false;
                } else {
                    debug!("{}: udp send failed: {e}", run.to);
                }
                sent.note(Ok(()));
                for datagram in bytes.chunks(run.size) {
                    sent.note(send_to(socket, datagram, run.to));
                }
            }
        }
    }
}

impl Sent {
    /// The first failure, if any.
    ///
    /// # Errors
    /// [`Sent::failure`].
    pub fn result(self) -> io::Result<()> {
        self.failure.map_or(Ok(()), Err)
    }

    /// One system call and what it did.
    fn note(&mut self, result: io::Result<()>) {
        self.calls += 1;
        if let Err(e) = result {
            self.failure.get_or_insert(e);
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
            && self.count < MAX_SEGMENTS
            && self.len + len <= MAX_RUN_BYTES
    }
}

/// Sends one datagram; a full socket buffer (the datagram is lost, and its session resends what
/// must arrive) and an ICMP error left by an earlier send are not failures.
fn send_to(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
    match socket.send_to(datagram, to) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            debug!("{to}: udp send would block");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => {
            debug!("{to}: udp send failed: {e}");
            Err(e)
        }
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

    /// Datagrams of these sizes, all to `to`.
    fn plan_to(to: SocketAddr, sizes: &[usize]) -> Vec<(SocketAddr, usize)> {
        sizes.iter().map(|&len| (to, len)).collect()
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
        let mut sender = UdpSender::new(segment);
        let mut queue = plan.iter().enumerate();
        let mut observed = Vec::new();
        let sent = sender.send_from(
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
        assert!(sent.failure.is_none(), "{:?}", sent.failure);
        (sent.calls, observed)
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
        let plan = plan_to(to, &sizes);
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
            "every datagram is shown to the observer"
        );
    }

    #[test]
    fn without_segmentation_every_datagram_is_a_call_of_its_own() {
        let r = receiver();
        let to = r.local_addr().unwrap();
        let plan = plan_to(to, &[1200, 1200, 1200, 700]);
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

    /// Calls `read` (which adds what one call read to the list it is given and says how many
    /// reads that call made) until `n` datagrams have come, within a deadline; returns them and
    /// the reads made.
    pub(super) fn collect(
        n: usize,
        mut read: impl FnMut(&mut Vec<Vec<u8>>) -> io::Result<usize>,
    ) -> (Vec<Vec<u8>>, usize) {
        let (mut got, mut reads) = (Vec::new(), 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < n {
            assert!(std::time::Instant::now() < deadline, "only {got:?} of {n}");
            match read(&mut got) {
                Ok(k) => reads += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        (got, reads)
    }

    /// Reads from `socket` until `n` datagrams have come; returns them and the reads it took.
    fn read_back(socket: &UdpSocket, n: usize) -> (Vec<Vec<u8>>, usize) {
        let mut buf = vec![0u8; 65_536];
        collect(n, |got| {
            let r = recv_coalesced(socket, &mut buf)?;
            got.extend(r.datagrams().map(<[u8]>::to_vec));
            Ok(1)
        })
    }

    fn mio_receiver(coalesce: bool) -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        if coalesce {
            enable_coalesced_receive(&socket).unwrap();
        }
        socket
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_segmented_run_comes_back_as_one_read_that_splits_into_the_datagrams_sent() {
        let r = mio_receiver(true);
        let to = r.local_addr().unwrap();
        let plan = plan_to(to, &[1200, 1200, 1200, 700]);
        let (calls, _) = send(true, &plan);
        assert_eq!(calls, 1);
        let (got, reads) = read_back(&r, plan.len());
        assert_eq!(got, expected(&plan));
        assert_eq!(reads, 1, "the kernel coalesced the run");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_batch_of_coalesced_reads_splits_each_into_its_datagrams() {
        let r = mio_receiver(true);
        let to = r.local_addr().unwrap();
        // Two runs (two sends), then a lone datagram.
        let plan = plan_to(to, &[900, 900, 900, 1200, 1200, 100, 50]);
        let (calls, _) = send(true, &plan);
        assert_eq!(calls, 3);
        let mut batch = RecvBatch::new();
        let (got, _) = collect(plan.len(), |got| {
            let n = batch.recv(&r)?;
            for i in 0..n {
                let read = batch.get(i).unwrap();
                assert!(read.from.ip().is_loopback());
                got.extend(read.datagrams().map(<[u8]>::to_vec));
            }
            Ok(n)
        });
        assert_eq!(got, expected(&plan));
    }

    #[test]
    fn without_coalescing_each_read_is_one_datagram() {
        let r = mio_receiver(false);
        let to = r.local_addr().unwrap();
        let plan = plan_to(to, &[1200, 1200, 1200, 700]);
        send(true, &plan);
        let (got, reads) = read_back(&r, plan.len());
        assert_eq!(got, expected(&plan));
        assert_eq!(reads, plan.len());
    }

    #[test]
    fn a_read_splits_at_the_segment_size_and_its_last_datagram_may_be_shorter() {
        let from = "127.0.0.1:9".parse().unwrap();
        let data: Vec<u8> = (0..25).collect();
        let read = Received::new(from, &data, Some(10));
        let parts: Vec<&[u8]> = read.datagrams().collect();
        assert_eq!(parts, vec![&data[..10], &data[10..20], &data[20..]]);
        let whole = Received::new(from, &data, None);
        assert_eq!(whole.datagrams().collect::<Vec<_>>(), vec![&data[..]]);
        let empty = Received::new(from, &[], None);
        assert_eq!(
            empty.datagrams().collect::<Vec<_>>(),
            vec![&[] as &[u8]],
            "an empty datagram is still a datagram (to be counted as malformed)"
        );
    }
}
