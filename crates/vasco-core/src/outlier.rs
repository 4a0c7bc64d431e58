//! Outlier ejection: stop sending traffic to an instance that keeps failing, for a while.
//!
//! Registry health (leases) only notices an instance that stops heartbeating. An instance that
//! heartbeats but answers with errors is caught here, by its callers: after
//! `consecutive_failures` failures in a row it is ejected for `base_ejection_ms` times the
//! number of times it has been ejected, capped at `max_ejection_ms`, so a flapping instance is
//! kept out longer each time. The defaults are Envoy's (5 failures, 30 s, 300 s, 10%).
//!
//! **The ejection cap** follows current Envoy: an ejection happens only if afterwards at most
//! `max_ejection_percent` of the known hosts are ejected. With the default 10% that means
//! nothing is ejected among fewer than 10 hosts; set `always_eject_one` (Envoy's
//! `always_eject_one_host`) to allow one ejection regardless, or raise the percentage. The cap
//! exists because failures across many hosts at once usually mean the caller or the network is
//! at fault, and ejecting most of a service would pile its load onto the rest.
//!
//! Other choices, each the simpler of Envoy's options:
//! * Failures reported while a host is ejected are ignored (they come from requests sent
//!   before the ejection), and the count restarts from zero when it returns.
//! * A host that reaches the threshold but cannot be ejected because of the cap is retried on
//!   each further failure, so it goes once room frees up.
//! * The multiplier decays: each `base_ejection_ms` a host spends back in service forgives one
//!   past ejection (Envoy decrements it per 10 s sweep instead).
//!
//! Time is passed in (`now`, in ms); nothing here reads a clock.

use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::Millis;

/// Outlier detection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Failures in a row that eject a host (`0` disables ejection).
    pub consecutive_failures: u32,
    /// How long the first ejection lasts; the n-th lasts n times as long.
    pub base_ejection_ms: u64,
    /// The longest an ejection lasts.
    pub max_ejection_ms: u64,
    /// At most this percentage of hosts is ejected at once (values above 100 mean 100).
    pub max_ejection_percent: u32,
    /// Allow one ejection even when the percentage allows none (few hosts).
    pub always_eject_one: bool,
}

impl Default for OutlierConfig {
    /// Envoy's defaults: 5 failures, 30 s base, 300 s max, 10%, no forced ejection.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_ms: 30_000,
            max_ejection_ms: 300_000,
            max_ejection_percent: 10,
            always_eject_one: false,
        }
    }
}

/// What is known about one host.
#[derive(Debug, Clone, Default)]
struct Host {
    /// Failures in a row since the last success or ejection.
    failures: u32,
    /// Past ejections still counting toward the backoff multiplier.
    ejections: u32,
    /// End of the current (or last) ejection.
    ejected_until: Option<Millis>,
}

impl Host {
    fn is_ejected(&self, now: Millis) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }
}

/// Tracks consecutive failures per host id and ejects outliers.
#[derive(Debug, Clone, Default)]
pub struct OutlierDetector {
    config: OutlierConfig,
    hosts: BTreeMap<String, Host>,
}

impl OutlierDetector {
    /// A detector with no known hosts.
    pub fn new(config: OutlierConfig) -> Self {
        Self {
            config,
            hosts: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &OutlierConfig {
        &self.config
    }

    /// Replaces the set of known hosts (the denominator of `max_ejection_percent`). Hosts that
    /// stay keep their state; hosts not listed are forgotten. Hosts are also added by the
    /// first report about them.
    pub fn set_hosts<I, S>(&mut self, ids: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut previous = core::mem::take(&mut self.hosts);
        for id in ids {
            let id = id.as_ref();
            let host = previous.remove(id).unwrap_or_default();
            self.hosts.insert(String::from(id), host);
        }
    }

    /// Records a failed request to `id` at `now`; returns whether this failure ejected it.
    pub fn report_failure(&mut self, id: &str, now: Millis) -> bool {
        let threshold = self.config.consecutive_failures;
        let host = self.host_mut(id);
        if host.is_ejected(now) {
            return false;
        }
        host.failures = host.failures.saturating_add(1);
        if threshold == 0 || host.failures < threshold {
            return false;
        }
        if !self.room_to_eject(now) {
            return false;
        }

        let config = &self.config;
        let host = self.hosts.get_mut(id).expect("added by host_mut");
        if let Some(returned) = host.ejected_until {
            // Each base period back in service forgives one past ejection.
            let forgiven = match config.base_ejection_ms {
                0 => u64::MAX,
                base => now.saturating_sub(returned) / base,
            };
            let forgiven = u32::try_from(forgiven).unwrap_or(u32::MAX);
            host.ejections = host.ejections.saturating_sub(forgiven);
        }
        host.ejections = host.ejections.saturating_add(1);
        let duration = config
            .base_ejection_ms
            .saturating_mul(u64::from(host.ejections))
            .min(config.max_ejection_ms);
        host.ejected_until = Some(now.saturating_add(duration));
        host.failures = 0;
        true
    }

    /// Records a successful request to `id`: the failure streak ends.
    pub fn report_success(&mut self, id: &str) {
        self.host_mut(id).failures = 0;
    }

    /// Whether `id` is ejected at `now` (unknown hosts are not).
    pub fn is_ejected(&self, id: &str, now: Millis) -> bool {
        self.hosts.get(id).is_some_and(|host| host.is_ejected(now))
    }

    /// When the current ejection of `id` ends, if it is ejected at `now`.
    pub fn ejected_until(&self, id: &str, now: Millis) -> Option<Millis> {
        let host = self.hosts.get(id)?;
        host.ejected_until.filter(|_| host.is_ejected(now))
    }

    /// Hosts ejected at `now`.
    pub fn ejected_count(&self, now: Millis) -> usize {
        self.hosts.values().filter(|h| h.is_ejected(now)).count()
    }

    /// Known hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    fn host_mut(&mut self, id: &str) -> &mut Host {
        if !self.hosts.contains_key(id) {
            self.hosts.insert(String::from(id), Host::default());
        }
        self.hosts.get_mut(id).expect("inserted above")
    }

    /// Whether one more ejection keeps the ejected share within the cap.
    fn room_to_eject(&self, now: Millis) -> bool {
        let ejected = self.ejected_count(now) as u64;
        let total = self.hosts.len() as u64;
        let percent = u64::from(self.config.max_ejection_percent.min(100));
        (ejected + 1) * 100 <= percent * total || (self.config.always_eject_one && ejected == 0)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    const T0: Millis = 1_700_000_000_000;

    /// A detector over `n` hosts `h0..`, where the cap is not in the way (100%).
    fn detector(n: usize, percent: u32) -> OutlierDetector {
        let mut detector = OutlierDetector::new(OutlierConfig {
            max_ejection_percent: percent,
            ..OutlierConfig::default()
        });
        detector.set_hosts((0..n).map(|i| format!("h{i}")));
        detector
    }

    /// Reports `count` failures of `id` at `now`; whether the last one ejected it.
    fn fail(detector: &mut OutlierDetector, id: &str, count: u32, now: Millis) -> bool {
        (0..count)
            .map(|_| detector.report_failure(id, now))
            .last()
            .unwrap_or(false)
    }

    #[test]
    fn envoy_defaults() {
        let config = OutlierConfig::default();
        assert_eq!(config.consecutive_failures, 5);
        assert_eq!(config.base_ejection_ms, 30_000);
        assert_eq!(config.max_ejection_ms, 300_000);
        assert_eq!(config.max_ejection_percent, 10);
        assert!(!config.always_eject_one);
    }

    #[test]
    fn fifth_consecutive_failure_ejects_for_exactly_30_s() {
        let mut d = detector(10, 10);
        for i in 0..4 {
            assert!(!d.report_failure("h3", T0 + i), "failure {i}");
            assert!(!d.is_ejected("h3", T0 + i));
        }
        assert!(d.report_failure("h3", T0 + 10));
        assert!(d.is_ejected("h3", T0 + 10));
        assert!(d.is_ejected("h3", T0 + 10 + 29_999));
        assert!(
            !d.is_ejected("h3", T0 + 10 + 30_000),
            "back exactly at the end"
        );
        assert_eq!(d.ejected_until("h3", T0 + 10), Some(T0 + 30_010));
        assert_eq!(d.ejected_until("h3", T0 + 30_010), None);
        assert!(!d.is_ejected("h2", T0 + 10), "only the failing host");
    }

    #[test]
    fn success_resets_the_streak() {
        let mut d = detector(10, 10);
        assert!(!fail(&mut d, "h1", 4, T0));
        d.report_success("h1");
        assert!(!fail(&mut d, "h1", 4, T0));
        assert!(!d.is_ejected("h1", T0));
        assert!(d.report_failure("h1", T0));
    }

    #[test]
    fn failures_while_ejected_are_ignored_and_the_streak_restarts() {
        let mut d = detector(10, 10);
        assert!(fail(&mut d, "h0", 5, T0));
        assert!(!fail(&mut d, "h0", 20, T0 + 1_000), "stale reports");
        let back = T0 + 30_000;
        assert!(!fail(&mut d, "h0", 4, back), "counting from zero again");
        assert!(d.report_failure("h0", back));
    }

    #[test]
    fn backoff_grows_with_each_ejection_and_is_capped() {
        let mut d = detector(10, 10);
        let mut now = T0;
        let mut durations = Vec::new();
        for _ in 0..12 {
            assert!(fail(&mut d, "h5", 5, now));
            let until = d.ejected_until("h5", now).unwrap();
            durations.push((until - now) / 1_000);
            now = until; // fails again the moment it returns
        }
        assert_eq!(
            durations,
            [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]
        );
    }

    #[test]
    fn time_back_in_service_forgives_past_ejections() {
        let mut d = detector(10, 10);
        assert!(fail(&mut d, "h5", 5, T0));
        assert!(fail(&mut d, "h5", 5, T0 + 30_000)); // 60 s
        assert!(fail(&mut d, "h5", 5, T0 + 90_000)); // 90 s, back at T0 + 180 s
                                                     // 59.999 s healthy forgives one ejection: the next is the third again (90 s) ...
        let now = T0 + 180_000 + 59_999;
        assert!(fail(&mut d, "h5", 5, now));
        assert_eq!(d.ejected_until("h5", now), Some(now + 90_000));
        // ... and 60 s forgives two: the next is the second (60 s).
        let now = now + 90_000 + 60_000;
        assert!(fail(&mut d, "h5", 5, now));
        assert_eq!(d.ejected_until("h5", now), Some(now + 60_000));
        // A long healthy spell starts over at 30 s.
        let now = now + 60_000 + 3_600_000;
        assert!(fail(&mut d, "h5", 5, now));
        assert_eq!(d.ejected_until("h5", now), Some(now + 30_000));
    }

    #[test]
    fn at_most_ten_percent_ejected() {
        let mut d = detector(20, 10);
        assert!(fail(&mut d, "h0", 5, T0));
        assert!(fail(&mut d, "h1", 5, T0 + 10_000), "2 of 20 is 10%");
        assert!(!fail(&mut d, "h2", 5, T0 + 10_000), "3 of 20 is over");
        assert_eq!(d.ejected_count(T0 + 10_000), 2);
        // h2 still failing when h0 returns: its next failure takes the freed room.
        let later = T0 + 30_000;
        assert!(!d.is_ejected("h0", later));
        assert!(d.report_failure("h2", later));
        assert!(!fail(&mut d, "h0", 5, later), "h1 and h2 are out");
        assert_eq!(d.ejected_count(later), 2);
    }

    #[test]
    fn fewer_than_ten_hosts_eject_none_by_default() {
        let mut d = detector(9, 10);
        assert!(!fail(&mut d, "h0", 50, T0));
        assert_eq!(d.ejected_count(T0), 0);
        let mut d = detector(10, 10);
        assert!(fail(&mut d, "h0", 5, T0), "1 of 10 is exactly 10%");
    }

    #[test]
    fn always_eject_one_allows_a_single_ejection() {
        let mut d = OutlierDetector::new(OutlierConfig {
            always_eject_one: true,
            ..OutlierConfig::default()
        });
        d.set_hosts(["a", "b", "c"]);
        assert!(fail(&mut d, "a", 5, T0));
        assert!(!fail(&mut d, "b", 5, T0), "only one");
        assert_eq!(d.ejected_count(T0), 1);
    }

    #[test]
    fn percent_above_100_and_zero_threshold() {
        let mut d = detector(2, 250);
        assert!(fail(&mut d, "h0", 5, T0));
        assert!(fail(&mut d, "h1", 5, T0), "100% may be ejected");
        let mut d = OutlierDetector::new(OutlierConfig {
            consecutive_failures: 0,
            max_ejection_percent: 100,
            ..OutlierConfig::default()
        });
        assert!(!fail(&mut d, "x", 1_000, T0), "0 disables ejection");
    }

    #[test]
    fn hosts_come_from_set_hosts_and_reports() {
        let mut d = detector(3, 100);
        assert_eq!(d.host_count(), 3);
        d.report_success("new");
        assert_eq!(d.host_count(), 4);
        assert!(fail(&mut d, "h1", 5, T0));
        // Keeps h1's ejection, forgets h0 and h2 and "new".
        d.set_hosts(["h1", "h9"]);
        assert_eq!(d.host_count(), 2);
        assert!(d.is_ejected("h1", T0));
        assert!(!d.is_ejected("h9", T0));
        assert!(!d.is_ejected("unknown", T0));
        assert_eq!(d.ejected_until("unknown", T0), None);
    }

    #[test]
    fn zero_base_ejection_ends_at_once() {
        let mut d = OutlierDetector::new(OutlierConfig {
            base_ejection_ms: 0,
            max_ejection_percent: 100,
            ..OutlierConfig::default()
        });
        assert!(fail(&mut d, "x", 5, T0));
        assert!(!d.is_ejected("x", T0));
    }

    #[test]
    fn no_overflow_near_the_end_of_time() {
        let mut d = detector(1, 100);
        assert!(fail(&mut d, "h0", 5, Millis::MAX - 1));
        assert!(d.is_ejected("h0", Millis::MAX - 1));
        assert_eq!(d.ejected_until("h0", Millis::MAX - 1), Some(Millis::MAX));
    }
}
