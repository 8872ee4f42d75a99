//! The per-IP cap on concurrent unfinished client connections (`max-connections-per-ip`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one "refused" warning per this interval, so a flood cannot flood the log too.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Open connections per peer IP. Every connection is counted, even with the cap off, so a
/// reload that turns the cap on sees the true numbers.
#[derive(Default)]
pub struct PerIpLimiter {
    open: Mutex<HashMap<IpAddr, u32>>,
    warnings: Mutex<RefusalLog>,
}

#[derive(Default)]
struct RefusalLog {
    last_warned: Option<Instant>,
    refused_since: u64,
}

/// One counted connection; dropping it (the connection ended) frees the place.
pub struct ConnectionSlot {
    limiter: Arc<PerIpLimiter>,
    ip: IpAddr,
}

impl PerIpLimiter {
    /// A place for one more connection from `ip`, or `None` when it already holds `max`
    /// (0 = no cap). A refusal is logged, at most once per [`WARN_EVERY`].
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<ConnectionSlot> {
        // An IPv4 client reaching a dual-stack socket shows up as ::ffff:a.b.c.d; count it once.
        let ip = ip.to_canonical();
        {
            let mut open = self.open.lock().expect("per-ip lock");
            let count = open.entry(ip).or_insert(0);
            if max == 0 || *count < max {
                *count += 1;
                return Some(ConnectionSlot { limiter: self.clone(), ip });
            }
        }
        self.note_refusal(ip, max);
        None
    }

    /// Connections `ip` holds now.
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        self.open.lock().expect("per-ip lock").get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    fn note_refusal(&self, ip: IpAddr, max: u32) {
        let now = Instant::now();
        let mut log = self.warnings.lock().expect("refusal log lock");
        log.refused_since += 1;
        if log.last_warned.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            return;
        }
        tracing::warn!(
            %ip,
            max_connections_per_ip = max,
            refused = log.refused_since,
            "refusing client connections: the IP already holds max-connections-per-ip unfinished connections \
             (count covers every refusal since the last such line)"
        );
        log.last_warned = Some(now);
        log.refused_since = 0;
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().expect("per-ip lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_frees_on_drop() {
        let limiter = Arc::new(PerIpLimiter::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limiter.try_acquire(a, 2).unwrap();
        let _second = limiter.try_acquire(a, 2).unwrap();
        assert!(limiter.try_acquire(a, 2).is_none());
        // Another IP has its own budget.
        let _other = limiter.try_acquire(b, 2).unwrap();
        drop(first);
        assert_eq!(limiter.open_from(a), 1);
        assert!(limiter.try_acquire(a, 2).is_some());
    }

    #[test]
    fn mapped_v4_counts_as_v4_and_zero_means_no_cap() {
        let limiter = Arc::new(PerIpLimiter::default());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _one = limiter.try_acquire(v4, 1).unwrap();
        assert!(limiter.try_acquire(mapped, 1).is_none());
        let many: Vec<_> = (0..50).map(|_| limiter.try_acquire(v4, 0).unwrap()).collect();
        assert_eq!(limiter.open_from(mapped), 51);
        drop(many);
        assert_eq!(limiter.open_from(v4), 1);
    }
}
