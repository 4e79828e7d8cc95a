//! Challenge cookies: how a server checks that a client can receive at the address it claims,
//! without keeping any state until it does (docs/PROTOCOL.md section 4.1.2).
//!
//! A cookie is `generation (u8) | issued at (u64, µs) | mac (u64)`, where the MAC is SipHash-2-4
//! under the server's secret of that generation over the generation, the issue time, the client's
//! address and port, and the Hello's nonce. The secret rotates: the driver supplies fresh random
//! keys ([`CookieJar::rotate`]), and cookies of the current and the previous generation are
//! accepted while they are younger than the cookie lifetime.

use core::hash::Hasher;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use siphasher::sip::SipHasher24;

use super::time::Instant;

/// The length of a cookie.
pub const COOKIE_LEN: usize = 1 + 8 + 8;

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not the length or shape of a cookie.
    Malformed,
    /// Its generation is neither the current nor the previous secret's.
    UnknownGeneration,
    /// Older than the lifetime, or issued in the future.
    Expired,
    /// The MAC does not match: forged, or issued to another address or nonce.
    Forged,
}

#[derive(Debug, Clone)]
struct Key {
    generation: u8,
    bytes: [u8; 16],
}

/// The server's cookie secrets.
#[derive(Debug, Clone)]
pub struct CookieJar {
    current: Key,
    previous: Option<Key>,
    lifetime: Duration,
}

impl CookieJar {
    /// A jar with one random secret, issuing cookies valid for `lifetime`.
    pub fn new(secret: [u8; 16], lifetime: Duration) -> Self {
        Self {
            current: Key {
                generation: 0,
                bytes: secret,
            },
            previous: None,
            lifetime,
        }
    }

    /// Starts a new generation with a fresh random secret; the previous generation's cookies stay
    /// valid until they expire, older ones stop working at once.
    pub fn rotate(&mut self, secret: [u8; 16]) {
        let next = Key {
            generation: self.current.generation.wrapping_add(1),
            bytes: secret,
        };
        self.previous = Some(core::mem::replace(&mut self.current, next));
    }

    fn mac(key: &Key, issued: u64, addr: SocketAddr, nonce: u64) -> u64 {
        let mut h = SipHasher24::new_with_key(&key.bytes);
        h.write_u8(key.generation);
        h.write_u64(issued);
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        h.write(&ip);
        h.write_u16(addr.port());
        h.write_u64(nonce);
        h.finish()
    }

    /// A cookie for a Hello with `nonce` from `addr`, issued at `now`.
    pub fn issue(&self, now: Instant, addr: SocketAddr, nonce: u64) -> [u8; COOKIE_LEN] {
        let issued = now.as_micros();
        let mut out = [0u8; COOKIE_LEN];
        out[0] = self.current.generation;
        out[1..9].copy_from_slice(&issued.to_be_bytes());
        out[9..].copy_from_slice(&Self::mac(&self.current, issued, addr, nonce).to_be_bytes());
        out
    }

    /// Checks a cookie echoed by `addr` with `nonce`; returns when it was issued.
    ///
    /// # Errors
    /// See [`CookieError`].
    pub fn verify(
        &self,
        now: Instant,
        addr: SocketAddr,
        nonce: u64,
        cookie: &[u8],
    ) -> Result<Instant, CookieError> {
        let cookie: &[u8; COOKIE_LEN] = cookie.try_into().map_err(|_| CookieError::Malformed)?;
        let generation = cookie[0];
        let key = if generation == self.current.generation {
            &self.current
        } else {
            match &self.previous {
                Some(k) if k.generation == generation => k,
                _ => return Err(CookieError::UnknownGeneration),
            }
        };
        let mut issued_bytes = [0u8; 8];
        issued_bytes.copy_from_slice(&cookie[1..9]);
        let issued = u64::from_be_bytes(issued_bytes);
        let issued_at = Instant::from_micros(issued);
        if issued_at > now || issued_at + self.lifetime <= now {
            return Err(CookieError::Expired);
        }
        let mut mac_bytes = [0u8; 8];
        mac_bytes.copy_from_slice(&cookie[9..]);
        // Not a constant-time compare: the MAC covers a timestamp the attacker cannot choose
        // freely, and a cookie only proves reachability, it grants no authority.
        if u64::from_be_bytes(mac_bytes) != Self::mac(key, issued, addr, nonce) {
            return Err(CookieError::Forged);
        }
        Ok(issued_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const LIFE: Duration = Duration::from_secs(10);

    #[test]
    fn a_cookie_verifies_for_its_address_and_nonce_only() {
        let jar = CookieJar::new([7; 16], LIFE);
        let t = Instant::from_millis(1000);
        let c = jar.issue(t, addr("10.0.0.1:5000"), 42);
        assert_eq!(jar.verify(t, addr("10.0.0.1:5000"), 42, &c), Ok(t));
        assert_eq!(
            jar.verify(t, addr("10.0.0.2:5000"), 42, &c),
            Err(CookieError::Forged)
        );
        assert_eq!(
            jar.verify(t, addr("10.0.0.1:5001"), 42, &c),
            Err(CookieError::Forged)
        );
        assert_eq!(
            jar.verify(t, addr("10.0.0.1:5000"), 43, &c),
            Err(CookieError::Forged)
        );
        let mut tampered = c;
        tampered[16] ^= 1;
        assert_eq!(
            jar.verify(t, addr("10.0.0.1:5000"), 42, &tampered),
            Err(CookieError::Forged)
        );
        assert_eq!(
            jar.verify(t, addr("10.0.0.1:5000"), 42, &c[..5]),
            Err(CookieError::Malformed)
        );
    }

    #[test]
    fn cookies_expire_at_their_lifetime() {
        let jar = CookieJar::new([7; 16], LIFE);
        let t = Instant::from_millis(1000);
        let a = addr("[::1]:9");
        let c = jar.issue(t, a, 1);
        assert!(
            jar.verify(t + LIFE - Duration::from_micros(1), a, 1, &c)
                .is_ok()
        );
        assert_eq!(jar.verify(t + LIFE, a, 1, &c), Err(CookieError::Expired));
        assert_eq!(
            jar.verify(t - Duration::from_micros(1), a, 1, &c),
            Err(CookieError::Expired)
        );
    }

    #[test]
    fn rotation_keeps_one_previous_generation() {
        let mut jar = CookieJar::new([1; 16], LIFE);
        let t = Instant::from_millis(5);
        let a = addr("10.0.0.1:1");
        let old = jar.issue(t, a, 9);
        jar.rotate([2; 16]);
        assert!(
            jar.verify(t, a, 9, &old).is_ok(),
            "previous generation still accepted"
        );
        jar.rotate([3; 16]);
        assert_eq!(
            jar.verify(t, a, 9, &old),
            Err(CookieError::UnknownGeneration)
        );
    }
}
