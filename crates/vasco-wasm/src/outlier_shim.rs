//! Stand-in for `vasco_core::outlier` until the core's module lands (same contract).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use vasco_core::Millis;

#[derive(Debug, Clone)]
pub struct OutlierConfig {
    pub consecutive_failures: u32,
    pub base_ejection_ms: u64,
    pub max_ejection_percent: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_ms: 30_000,
            max_ejection_percent: 10,
        }
    }
}

#[derive(Debug)]
pub struct OutlierDetector {
    config: OutlierConfig,
    streaks: BTreeMap<String, u32>,
    until: BTreeMap<String, Millis>,
}

impl OutlierDetector {
    pub fn new(config: OutlierConfig) -> Self {
        Self {
            config,
            streaks: BTreeMap::new(),
            until: BTreeMap::new(),
        }
    }
    pub fn report_failure(&mut self, id: &str, now: Millis) -> bool {
        let streak = self.streaks.entry(id.into()).or_default();
        *streak += 1;
        if *streak >= self.config.consecutive_failures && !self.is_ejected(id, now) {
            self.until
                .insert(id.into(), now + self.config.base_ejection_ms);
            self.streaks.insert(id.into(), 0);
            return true;
        }
        false
    }
    pub fn report_success(&mut self, id: &str) {
        self.streaks.remove(id);
    }
    pub fn is_ejected(&self, id: &str, now: Millis) -> bool {
        self.until.get(id).is_some_and(|&until| now < until)
    }
}
