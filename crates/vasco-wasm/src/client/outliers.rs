//! Outlier ejection per service, over the core's detector.

use super::*;

/// The core's outlier detection, one detector per service (the denominator of its ejection
/// cap is that service's instances), keyed by instance url. A counter moves whenever an
/// instance is newly ejected, so cached pickers know to look again.
#[derive(Debug)]
pub struct Outliers {
    config: OutlierConfig,
    detectors: BTreeMap<String, OutlierDetector>,
    pub(super) epoch: u64,
}

impl Outliers {
    /// Detectors with `config`.
    pub fn new(config: OutlierConfig) -> Self {
        Self {
            config,
            detectors: BTreeMap::new(),
            epoch: 0,
        }
    }

    fn detector(&mut self, service: &str) -> &mut OutlierDetector {
        if !self.detectors.contains_key(service) {
            let detector = OutlierDetector::new(self.config.clone());
            self.detectors.insert(service.into(), detector);
        }
        self.detectors.get_mut(service).expect("inserted above")
    }

    /// A failed call to `url` of `service`; true when this ejected it.
    pub fn report_failure(&mut self, service: &str, url: &str, now: Millis) -> bool {
        let ejected = self.detector(service).report_failure(url, now);
        if ejected {
            self.epoch += 1;
        }
        ejected
    }

    /// A successful call: the failure streak of `url` ends.
    pub fn report_success(&mut self, service: &str, url: &str) {
        self.detector(service).report_success(url);
    }

    /// The instances of `service` the client knows of now (for the ejection cap).
    pub(super) fn set_hosts<'a>(&mut self, service: &str, urls: impl IntoIterator<Item = &'a str>) {
        self.detector(service).set_hosts(urls);
    }

    /// Keeps the detectors of the services `asked` says yes to, and of those with an instance
    /// ejected at `now`; forgets the rest (failure streaks only).
    pub(super) fn retain(&mut self, now: Millis, asked: impl Fn(&str) -> bool) {
        self.detectors
            .retain(|service, detector| asked(service) || detector.ejected_count(now) > 0);
    }

    /// Forgets `service`'s detector unless it has an instance ejected at `now` (a service the
    /// cache does not ask about).
    pub(super) fn retain_one(&mut self, service: &str, now: Millis) {
        if self
            .detectors
            .get(service)
            .is_some_and(|d| d.ejected_count(now) == 0)
        {
            self.detectors.remove(service);
        }
    }

    /// How many services it keeps state for.
    #[cfg(test)]
    pub(super) fn services(&self) -> usize {
        self.detectors.len()
    }

    /// When the ejection of `instance` ends, if it is ejected at `now`.
    pub(super) fn ejected_until(&self, instance: &Instance, now: Millis) -> Option<Millis> {
        self.detectors
            .get(instance.service.as_str())?
            .ejected_until(&instance.url, now)
    }
}
