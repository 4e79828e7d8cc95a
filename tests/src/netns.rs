//! A small LAN of network namespaces for tests of what crosses a network (LAN discovery's
//! broadcasts): hosts `0..n`, each a namespace with one veth at `10.201.0.(i+1)/24`, all plugged
//! into a bridge in a namespace of its own. Needs root and iproute2; everything is removed on
//! drop.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::process::Command;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// The LAN's hosts, by index.
#[derive(Debug)]
pub struct Lan {
    prefix: String,
    hosts: usize,
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Lan {
    /// Makes a LAN of `hosts` hosts (at most 250); the namespaces' names start with `prefix`
    /// and this process's id, so that runs side by side do not meet.
    ///
    /// # Errors
    /// Not root, no `ip`, or the kernel refused a namespace, bridge or veth.
    pub fn new(prefix: &str, hosts: usize) -> io::Result<Self> {
        let lan = Self {
            prefix: format!("{prefix}{}", std::process::id()),
            hosts: 0,
        };
        let bridge = lan.bridge();
        ip(&["netns", "add", &bridge])?;
        let mut lan = lan;
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
        for i in 0..hosts.min(250) {
            let host = lan.host(i);
            ip(&["netns", "add", &host])?;
            lan.hosts = i + 1;
            let port = format!("p{i}");
            ip(&[
                "link", "add", "eth0", "netns", &host, "type", "veth", "peer", "name", &port,
                "netns", &bridge,
            ])?;
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &bridge, "link", "set", &port, "up"])?;
            let addr = format!("{}/24", Self::address(i));
            ip(&["-n", &host, "addr", "add", &addr, "brd", "+", "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
            // The limited broadcast (255.255.255.255) leaves by the default route.
            ip(&["-n", &host, "route", "add", "default", "dev", "eth0"])?;
        }
        Ok(lan)
    }

    fn bridge(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// Host `i`'s namespace.
    pub fn host(&self, i: usize) -> String {
        format!("{}-h{i}", self.prefix)
    }

    /// Host `i`'s address.
    pub fn address(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, 0, u8::try_from(i + 1).unwrap_or(u8::MAX))
    }

    /// The LAN's broadcast address.
    pub fn broadcast() -> Ipv4Addr {
        Ipv4Addr::new(10, 201, 0, 255)
    }

    /// Runs `f` on a thread inside host `i`'s namespace: the sockets it opens (and the threads
    /// it starts, which inherit the namespace) are that host's.
    ///
    /// # Errors
    /// The namespace could not be entered.
    ///
    /// # Panics
    /// If `f` panics.
    pub fn on_host<T: Send + 'static>(
        &self,
        i: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        let path = format!("/var/run/netns/{}", self.host(i));
        std::thread::spawn(move || {
            let ns = File::open(&path)?;
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
            Ok(f())
        })
        .join()
        .expect("the namespace's thread")
    }

    /// A command that runs `program` in host `i`'s namespace.
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.host(i), program]);
        c
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for i in 0..self.hosts {
            let _ = ip(&["netns", "del", &self.host(i)]);
        }
        let _ = ip(&["netns", "del", &self.bridge()]);
    }
}
