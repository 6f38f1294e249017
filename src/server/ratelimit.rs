//! Per-client-IP rate limits, answering 429 with `Retry-After`: on the install/uninstall
//! callbacks (governor's keyed GCRA limiter) and on *refused* sign-ins ([`RefusalLimiter`]).

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request},
    http::{HeaderMap, HeaderValue},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use super::config::RateLimit;

/// One keyed limiter.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiter")
    }
}

impl Limiter {
    /// `limit.count` requests per `limit.per`, as a burst that refills evenly.
    pub fn new(limit: RateLimit) -> Self {
        let count = NonZeroU32::new(limit.count).unwrap_or(NonZeroU32::MIN);
        let period = (limit.per / count.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period).expect("a non-zero period").allow_burst(count);
        Self { inner: Arc::new(RateLimiter::keyed(quota)) }
    }

    /// `Ok` when `ip` may go on; otherwise how long until it may. IPv6 clients are keyed by
    /// their /64, which one subscriber can rotate through freely.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.inner.check_key(&client_key(ip)).map_err(|not_until| not_until.wait_time_from(self.inner.clock().now()))
    }

    /// Forgets idle clients (bounded memory).
    pub fn shrink(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// The client key of an address: IPv6 clients by their /64, which one subscriber can rotate
/// through freely; an IPv4 client seen as `::ffff:a.b.c.d` (a dual-stack listener, a proxy's
/// header) by its IPv4 address, not by the /64 all of them share.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Sign-ins Commerce7 refused, per client IP, in fixed windows of `per`: every verification
/// takes a slot of its address's allowance *before* Commerce7 is asked ([`check`](Self::check)),
/// and a verification that was not refused gives it back ([`Slot::give_back`]). After
/// `count` refusals in a window — or `count` verifications in flight at once, so that a burst of
/// junk tokens cannot all reach Commerce7 before the first is refused — every further sign-in
/// from that address is answered 429 until the window ends. Verifications still in flight when a
/// window ends hold their slots in the next. Successful opens give their slot back: a busy
/// tasting room behind one address opens Libero as often as it likes (every open from Commerce7
/// carries a fresh token and is verified). (governor's limiters cannot give a slot back.)
#[derive(Clone)]
pub struct RefusalLimiter {
    count: u32,
    per: Duration,
    windows: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, Window>>>,
}

/// An address's window: when it began, the slots taken in it (its refusals, and the
/// verifications in flight, carried into the next window until they end), and those in flight.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: std::time::Instant,
    taken: u32,
    in_flight: u32,
}

impl std::fmt::Debug for RefusalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalLimiter").field("count", &self.count).field("per", &self.per).finish_non_exhaustive()
    }
}

impl RefusalLimiter {
    /// At most `limit.count` refusals per `limit.per`.
    pub fn new(limit: RateLimit) -> Self {
        Self { count: limit.count.max(1), per: limit.per, windows: Arc::default() }
    }

    /// Takes a slot for a verification from `ip`: the [`Slot`] when it may go on; otherwise how
    /// long until it may.
    pub fn check(&self, ip: IpAddr) -> Result<Slot, Duration> {
        self.check_at(ip, std::time::Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: std::time::Instant) -> Result<Slot, Duration> {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = windows.entry(client_key(ip)).or_insert(Window { start: now, taken: 0, in_flight: 0 });
        if now.duration_since(window.start) >= self.per {
            *window = Window { start: now, taken: window.in_flight, ..*window };
        }
        if window.taken >= self.count {
            return Err(self.per - now.duration_since(window.start));
        }
        window.taken += 1;
        window.in_flight += 1;
        Ok(Slot { limiter: self.clone(), key: client_key(ip), given_back: false })
    }

    /// Forgets the windows that have ended with nothing in flight (bounded memory).
    pub fn shrink(&self) {
        let now = std::time::Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.retain(|_, window| window.in_flight > 0 || now.duration_since(window.start) < self.per);
        windows.shrink_to_fit();
    }
}

/// A slot of an address's allowance, taken for one verification. Dropped, it stays taken until
/// its window ends — a refusal, and a verification given up half-way too, so that closing the
/// connection before Commerce7 answers is no way round the limit — unless
/// [`give_back`](Self::give_back) returned it.
#[derive(Debug)]
pub struct Slot {
    limiter: RefusalLimiter,
    key: IpAddr,
    given_back: bool,
}

impl Slot {
    /// The verification was not refused: the slot is free again.
    pub fn give_back(mut self) {
        self.given_back = true;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut windows = self.limiter.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(window) = windows.get_mut(&self.key) {
            window.in_flight = window.in_flight.saturating_sub(1);
            window.taken = window.taken.saturating_sub(u32::from(self.given_back));
        }
    }
}

/// The app's limiters; `None` where disabled.
#[derive(Clone, Debug, Default)]
pub struct RateLimiters {
    /// Sign-ins Commerce7 refused.
    pub sign_in: Option<RefusalLimiter>,
    /// Install/uninstall callbacks.
    pub callbacks: Option<Limiter>,
}

impl RateLimiters {
    /// From the settings.
    pub fn new(sign_in: Option<RateLimit>, callbacks: Option<RateLimit>) -> Self {
        Self { sign_in: sign_in.map(RefusalLimiter::new), callbacks: callbacks.map(Limiter::new) }
    }

    /// Forgets idle clients of every limiter.
    pub fn shrink(&self) {
        self.sign_in.iter().for_each(RefusalLimiter::shrink);
        self.callbacks.iter().for_each(Limiter::shrink);
    }
}

/// The client's address: the TCP peer, or — behind `hops` trusted proxies that append to
/// `X-Forwarded-For` — the entry the outermost trusted proxy added. Anything a client wrote into
/// the header itself is never trusted.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, hops: usize) -> Option<IpAddr> {
    let peer = peer.map(|addr| addr.ip());
    if hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    entries.len().checked_sub(hops).and_then(|i| entries.get(i)).and_then(|s| parse_forwarded_ip(s)).or(peer)
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| entry.trim_start_matches('[').trim_end_matches(']').parse().ok())
}

/// The client IP of a request, trusting `trusted_proxy_hops` proxies (`TRUSTED_PROXY_HOPS`).
pub fn request_ip(req: &Request, trusted_proxy_hops: usize) -> Option<IpAddr> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr);
    client_ip(req.headers(), peer, trusted_proxy_hops)
}

/// Whole seconds to wait, rounded up, at least 1.
pub fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// `Retry-After` for `wait`, in [`whole_seconds`].
pub fn retry_after(wait: Duration) -> HeaderValue {
    HeaderValue::from(whole_seconds(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    const PEER: &str = "10.0.0.9:5000";

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let peer: SocketAddr = PEER.parse().unwrap();
        assert_eq!(client_ip(&xff("1.2.3.4"), Some(peer), 0), Some(peer.ip()));
    }

    #[test]
    fn behind_one_proxy_the_last_entry_is_the_client() {
        let peer: SocketAddr = PEER.parse().unwrap();
        // A client forged "6.6.6.6"; the proxy appended the real address.
        assert_eq!(client_ip(&xff("6.6.6.6, 203.0.113.7"), Some(peer), 1), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            client_ip(&xff("6.6.6.6, 203.0.113.7, 10.0.0.2"), Some(peer), 2),
            Some("203.0.113.7".parse().unwrap())
        );
    }

    #[test]
    fn forwarded_entries_with_ports_or_brackets_are_understood() {
        let peer: SocketAddr = PEER.parse().unwrap();
        assert_eq!(client_ip(&xff("203.0.113.7:4711"), Some(peer), 1), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(client_ip(&xff("[2001:db8::1]:4711"), Some(peer), 1), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(client_ip(&xff("[2001:db8::1]"), Some(peer), 1), Some("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn refusals_are_limited_and_successes_are_not_counted() {
        let limiter = RefusalLimiter::new(RateLimit { count: 3, per: Duration::from_secs(60) });
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let start = std::time::Instant::now();
        for _ in 0..100 {
            limiter.check_at(ip, start).expect("successful opens give their slot back").give_back();
        }
        for _ in 0..3 {
            let _refused = limiter.check_at(ip, start).expect("refused: the slot is kept");
        }
        let wait = limiter.check_at(ip, start + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(40), "until the window ends");
        assert!(limiter.check_at("203.0.113.8".parse().unwrap(), start).is_ok(), "another address is not affected");
        assert!(limiter.check_at(ip, start + Duration::from_secs(60)).is_ok(), "a new window");
    }

    #[test]
    fn verifications_in_flight_at_once_are_limited_too() {
        let limiter = RefusalLimiter::new(RateLimit { count: 3, per: Duration::from_secs(60) });
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let now = std::time::Instant::now();
        // A burst of junk tokens sent at once: none answered yet, so none released or counted.
        let in_flight: Vec<Slot> = (0..10).filter_map(|_| limiter.check_at(ip, now).ok()).collect();
        assert_eq!(in_flight.len(), 3, "only three reach Commerce7");
        drop(in_flight); // Given up half-way (the connections closed): the slots stay taken.
        assert!(limiter.check_at(ip, now).is_err(), "closing the connection is no way round the limit");
    }

    #[test]
    fn a_verification_in_flight_when_its_window_ends_holds_its_slot_in_the_next() {
        let limiter = RefusalLimiter::new(RateLimit { count: 1, per: Duration::from_secs(60) });
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let start = std::time::Instant::now();
        let slow = limiter.check_at(ip, start).unwrap();
        assert!(limiter.check_at(ip, start + Duration::from_secs(61)).is_err(), "still in flight: the cap holds");
        slow.give_back();
        let refused = limiter.check_at(ip, start + Duration::from_secs(62)).expect("given back in the new window");
        drop(refused);
        assert!(limiter.check_at(ip, start + Duration::from_secs(63)).is_err(), "the new window's refusal stands");
        assert!(limiter.check_at(ip, start + Duration::from_secs(122)).is_ok(), "and ends with its window");
    }

    #[test]
    fn ipv6_clients_share_one_allowance_per_slash_64() {
        let limiter = Limiter::new(RateLimit { count: 1, per: Duration::from_secs(60) });
        assert!(limiter.check("2001:db8:1:2::1".parse().unwrap()).is_ok());
        assert!(limiter.check("2001:db8:1:2::ffff".parse().unwrap()).is_err(), "same /64");
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64");
    }

    #[test]
    fn ipv4_clients_seen_as_ipv6_are_keyed_by_their_ipv4_address() {
        let limiter = Limiter::new(RateLimit { count: 1, per: Duration::from_secs(60) });
        assert!(limiter.check("::ffff:192.0.2.1".parse().unwrap()).is_ok());
        assert!(limiter.check("192.0.2.1".parse().unwrap()).is_err(), "the same client");
        assert!(limiter.check("::ffff:192.0.2.2".parse().unwrap()).is_ok(), "another client");
    }

    #[test]
    fn a_missing_or_short_header_falls_back_to_the_peer() {
        let peer: SocketAddr = PEER.parse().unwrap();
        assert_eq!(client_ip(&HeaderMap::new(), Some(peer), 1), Some(peer.ip()));
        assert_eq!(client_ip(&xff("203.0.113.7"), Some(peer), 2), Some(peer.ip()));
        assert_eq!(client_ip(&xff("not-an-ip"), Some(peer), 1), Some(peer.ip()));
    }

    #[test]
    fn the_limiter_allows_the_burst_then_refuses_with_a_wait() {
        let limiter = Limiter::new(RateLimit { count: 2, per: Duration::from_secs(60) });
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert!(limiter.check(ip).is_ok());
        assert!(limiter.check(ip).is_ok());
        let wait = limiter.check(ip).unwrap_err();
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(30), "{wait:?}");
        assert!(limiter.check("203.0.113.8".parse().unwrap()).is_ok(), "other clients are unaffected");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after(Duration::from_millis(1500)), HeaderValue::from(2u64));
        assert_eq!(retry_after(Duration::from_millis(10)), HeaderValue::from(1u64));
        assert_eq!(retry_after(Duration::ZERO), HeaderValue::from(1u64));
    }
}
