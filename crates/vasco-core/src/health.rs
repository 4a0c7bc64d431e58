//! Health status: whether an instance should receive traffic, beside its lease.
//!
//! A lease says an instance *exists*; its [`Status`] says whether it should be *used*:
//!
//! | status        | lookups (default) | selection                                   |
//! |---------------|-------------------|---------------------------------------------|
//! | `passing`     | listed            | preferred                                   |
//! | `warning`     | listed            | only when no passing one is left, or the passing share is under the panic threshold |
//! | `critical`    | with `?all`       | never                                       |
//! | `maintenance` | with `?all`       | never (taken out of rotation on purpose)     |
//!
//! The model follows Consul, where a service's health is the worst of its checks and
//! maintenance mode is a separate critical check (`_service_maintenance`), and Eureka's
//! `UP` / `DOWN` / `OUT_OF_SERVICE`. Two kinds of input change it ([`HealthUpdate`]):
//!
//! * a **status set** by a person or a program (`{"status": "maintenance", "reason": "deploy"}`):
//!   takes effect at once; `maintenance` enters maintenance mode, any other status leaves it and
//!   becomes the check status;
//! * a **check result** (`{"check": {"status": "critical", "note": "db down"}}`), from a health
//!   check run by the client, an agent or a Consul TTL check: *damped*, so one flapping probe
//!   does not move traffic. It must hold for `success_before_passing` consecutive results to
//!   become passing and `failures_before_warning` / `failures_before_critical` to become
//!   warning / critical (Consul's check options of the same names; all 1 by default: no
//!   damping). A check result never ends maintenance mode: an operator's drain is not undone by
//!   the instance's own probe.
//!
//! Only what readers can see is a change: the status, its reason and who set it. A result that
//! only advances a damping counter, or repeats the current status with a new note, moves no
//! index (the note is kept for the next change), so a check that reports every few seconds
//! does not wake every watcher.
//!
//! ```
//! use vasco_core::health::{Damping, Health, HealthUpdate, Status};
//!
//! let mut health = Health::default(); // passing
//! health.check.damping = Damping { success_before_passing: 2, failures_before_warning: 1, failures_before_critical: 3 };
//!
//! let fail = HealthUpdate::check(Status::Critical, Some("timeout".into()));
//! assert!(health.apply(&fail, 0));        // 1 failure: warning already
//! assert_eq!(health.status, Status::Warning);
//! assert!(!health.apply(&fail, 0));       // 2 failures: still warning, nothing visible changed
//! assert!(health.apply(&fail, 0));        // 3 failures: critical
//! assert_eq!((health.status, health.reason.as_deref()), (Status::Critical, Some("timeout")));
//!
//! // An operator drains it; the probe's next results do not undo that.
//! assert!(health.apply(&HealthUpdate::set(Status::Maintenance, Some("deploy".into())), 0));
//! let ok = HealthUpdate::check(Status::Passing, None);
//! health.apply(&ok, 0);
//! health.apply(&ok, 0);
//! assert_eq!(health.status, Status::Maintenance);
//! assert_eq!(health.check.status, Status::Passing); // recovered underneath
//!
//! // Leaving maintenance shows the check status again.
//! assert!(health.apply(&HealthUpdate::set(Status::Passing, None), 0));
//! assert_eq!(health.status, Status::Passing);
//! ```

use alloc::{borrow::ToOwned, format, string::String};
use core::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::Millis;

/// The longest reason, note or `by` accepted, in characters.
pub const REASON_LEN: usize = 256;

/// The largest damping threshold accepted (consecutive results).
pub const MAX_DAMPING: u32 = 100;

/// The longest TTL check accepted, in seconds.
pub const MAX_CHECK_TTL_S: u32 = 3600;

/// An instance's health status. Wire form: `"passing"`, `"warning"`, `"critical"`,
/// `"maintenance"`. Ordered from best to worst.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy: preferred by selection.
    #[default]
    Passing,
    /// Degraded: listed, picked only when no passing instance is left (or under the panic
    /// threshold).
    Warning,
    /// Failing: leased, but neither listed by default nor picked.
    Critical,
    /// Taken out of rotation on purpose (a drain, a deploy): neither listed by default nor
    /// picked.
    Maintenance,
}

impl Status {
    /// Every status, best first.
    pub const ALL: [Status; 4] = [
        Status::Passing,
        Status::Warning,
        Status::Critical,
        Status::Maintenance,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Maintenance => "maintenance",
        }
    }

    /// Whether selection may ever pick an instance in this status (passing or warning).
    pub const fn is_selectable(self) -> bool {
        matches!(self, Status::Passing | Status::Warning)
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Status {
    type Err = Error;

    /// Accepts the wire names. Errors: `invalid_status` naming the four.
    fn from_str(s: &str) -> Result<Self> {
        Status::ALL
            .into_iter()
            .find(|status| status.name() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "unknown status {s:?}; expected passing, warning, critical or maintenance"
                    ),
                )
            })
    }
}

/// A set of statuses: which instances a lookup lists.
///
/// ```
/// use vasco_core::health::{Status, StatusFilter};
///
/// assert!(StatusFilter::DEFAULT.contains(Status::Warning));
/// assert!(!StatusFilter::DEFAULT.contains(Status::Maintenance));
/// let f = StatusFilter::parse("passing, critical").unwrap();
/// assert!(f.contains(Status::Critical) && !f.contains(Status::Warning));
/// assert_eq!(StatusFilter::parse("sick").unwrap_err().code(), "invalid_status");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusFilter(u8);

impl StatusFilter {
    /// Passing and warning: what a lookup lists unless asked otherwise, and what selection may
    /// pick.
    pub const DEFAULT: StatusFilter = StatusFilter(Status::Passing.bit() | Status::Warning.bit());
    /// Passing only (`?passing`).
    pub const PASSING: StatusFilter = StatusFilter(Status::Passing.bit());
    /// Every status (`?all`): every leased instance.
    pub const ALL: StatusFilter = StatusFilter(0b1111);

    /// Whether `status` is in the set.
    pub const fn contains(self, status: Status) -> bool {
        self.0 & status.bit() != 0
    }

    /// Parses a comma-separated list of status names (`passing,warning`); whitespace around
    /// names is ignored. Errors: `invalid_status` for an unknown or empty list.
    pub fn parse(text: &str) -> Result<Self> {
        let mut bits = 0;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            bits |= name.parse::<Status>()?.bit();
        }
        if bits == 0 {
            return Err(Error::invalid(
                "status",
                "must name at least one of passing, warning, critical, maintenance",
            ));
        }
        Ok(Self(bits))
    }

    /// The statuses in the set, best first.
    pub fn iter(self) -> impl Iterator<Item = Status> {
        Status::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl Default for StatusFilter {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Instances per status, for catalogs and dashboards. Wire shape:
/// `{"passing": 3, "warning": 0, "critical": 1, "maintenance": 0}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Passing instances.
    #[serde(default)]
    pub passing: usize,
    /// Warning instances.
    #[serde(default)]
    pub warning: usize,
    /// Critical instances.
    #[serde(default)]
    pub critical: usize,
    /// Instances in maintenance.
    #[serde(default)]
    pub maintenance: usize,
}

impl StatusCounts {
    /// Counts one more instance in `status`.
    pub fn add(&mut self, status: Status) {
        let slot = match status {
            Status::Passing => &mut self.passing,
            Status::Warning => &mut self.warning,
            Status::Critical => &mut self.critical,
            Status::Maintenance => &mut self.maintenance,
        };
        *slot += 1;
    }

    /// The number in `status`.
    pub fn get(&self, status: Status) -> usize {
        match status {
            Status::Passing => self.passing,
            Status::Warning => self.warning,
            Status::Critical => self.critical,
            Status::Maintenance => self.maintenance,
        }
    }
}

/// How many consecutive check results it takes to change the check status (Consul's
/// `SuccessBeforePassing`, `FailuresBeforeWarning`, `FailuresBeforeCritical`). Each is
/// 1 to [`MAX_DAMPING`]; 1 means at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
// Flattened into `CheckState`, which leaves the defaults out of records: a field that is not
// there is its default (the field-level `default` of a flattened struct is not applied).
#[serde(default)]
pub struct Damping {
    /// Consecutive passing results before the check becomes passing.
    pub success_before_passing: u32,
    /// Consecutive failing (warning or critical) results before it becomes warning.
    pub failures_before_warning: u32,
    /// Consecutive critical results before it becomes critical.
    pub failures_before_critical: u32,
}

impl Default for Damping {
    fn default() -> Self {
        Self {
            success_before_passing: 1,
            failures_before_warning: 1,
            failures_before_critical: 1,
        }
    }
}

impl Damping {
    fn is_default(&self) -> bool {
        *self == Damping::default()
    }
}

/// The state of an instance's health check: the damped check status and the counters that
/// damp it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    /// The check status after damping (passing, warning or critical).
    #[serde(default)]
    pub status: Status,
    /// The note of the result that set [`CheckState::status`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Consecutive passing results so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successes: u32,
    /// Consecutive failing results so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// The damping thresholds (`"damping": {...}`, left out when they are the defaults).
    #[serde(default, skip_serializing_if = "Damping::is_default")]
    pub damping: Damping,
    /// The check's id, when it has one (Consul's `CheckID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The check's name, when it has one (Consul's `Name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A TTL check (ms): each result must come within this long of the last one, or the check
    /// turns critical on its own (Consul's TTL checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// When the TTL check lapses unless a result comes first (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CheckState {
    /// Whether it is the default state (records leave it out).
    pub fn is_default(&self) -> bool {
        *self == CheckState::default()
    }

    /// Applies one check result with Consul's damping rule; returns whether the check status
    /// changed.
    fn report(&mut self, result: Status, note: Option<&String>) -> bool {
        let next = if result == Status::Passing {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            (self.successes >= self.damping.success_before_passing).then_some(Status::Passing)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if result == Status::Critical && self.failures >= self.damping.failures_before_critical
            {
                Some(Status::Critical)
            } else if self.failures >= self.damping.failures_before_warning {
                Some(Status::Warning)
            } else {
                None
            }
        };
        match next {
            Some(status) if status != self.status => {
                self.status = status;
                self.note = note.cloned();
                true
            }
            _ => false,
        }
    }
}

/// One change of health: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthUpdate {
    /// A status set on purpose: at once, undamped.
    Set {
        /// The new status.
        status: Status,
        /// Why (shown beside the status).
        reason: Option<String>,
        /// Who set it (free text: a user, a tool).
        by: Option<String>,
    },
    /// A health-check result: damped; never ends maintenance. `status` is passing, warning
    /// or critical.
    Check {
        /// The result.
        status: Status,
        /// The check's output.
        note: Option<String>,
        /// Which checker reported it.
        by: Option<String>,
    },
    /// Ends maintenance mode and shows the check status again, whatever it is (Consul's
    /// `maintenance?enable=false`). Wire form: `{"maintenance": false}`.
    Resume {
        /// Who ended it.
        by: Option<String>,
    },
}

impl HealthUpdate {
    /// A status set without `by`.
    pub fn set(status: Status, reason: Option<String>) -> Self {
        HealthUpdate::Set {
            status,
            reason,
            by: None,
        }
    }

    /// A check result without `by`.
    pub fn check(status: Status, note: Option<String>) -> Self {
        HealthUpdate::Check {
            status,
            note,
            by: None,
        }
    }

    /// The status this update names (`None` for [`HealthUpdate::Resume`]).
    pub fn status(&self) -> Option<Status> {
        match self {
            HealthUpdate::Set { status, .. } | HealthUpdate::Check { status, .. } => Some(*status),
            HealthUpdate::Resume { .. } => None,
        }
    }
}

/// The health part of a registration: an optional status set (`status`, `reason`, `by` in
/// the body), an optional check result and the check's configuration (`check`); read from
/// and written to the body by [`crate::wire::native::Registration`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSpec {
    /// `status` / `reason` / `by`.
    pub set: Option<HealthUpdate>,
    /// `check.status` / `check.note` (with `by`).
    pub check: Option<HealthUpdate>,
    /// `check.success_before_passing` and the failure thresholds.
    pub damping: Option<Damping>,
    /// `check.ttl` (s, given; ms here): a TTL check.
    pub ttl_ms: Option<u64>,
    /// `check.id`.
    pub id: Option<String>,
    /// `check.name`.
    pub name: Option<String>,
    /// `check.initial`: the status a new instance starts with; ignored for a live one (so a
    /// re-registration keeps its health, as Consul keeps a check's status).
    pub initial: Option<Status>,
}

impl HealthSpec {
    /// Whether the body said nothing about health.
    pub fn is_empty(&self) -> bool {
        *self == HealthSpec::default()
    }
}

/// An instance's health: what readers see ([`Health::status`], [`Health::reason`],
/// [`Health::by`]) and the check state behind it. Serialized inside the instance record:
/// `"status": "maintenance", "reason": "deploy", "by": "alice", "check": {...}` (the last
/// three only when set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// What lookups and selection go by.
    #[serde(default)]
    pub status: Status,
    /// Why: the maintenance reason, or the note of the check result that set the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who set the status (a status set's or a check result's `by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Maintenance mode: on while set, with its reason (possibly empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
    /// The health check's state under maintenance mode.
    #[serde(default, skip_serializing_if = "CheckState::is_default")]
    pub check: CheckState,
}

impl Health {
    /// The health of a new instance registered at `now`: passing, unless `spec` sets a
    /// status or an initial check status (undamped: there is no history to damp), with
    /// `spec`'s damping and TTL check (whose clock starts now).
    pub fn initial(spec: &HealthSpec, now: Millis) -> Health {
        let mut health = Health::default();
        health.configure(spec, now);
        if let Some(initial) = spec.initial {
            health.check.status = initial;
        }
        if let Some(HealthUpdate::Check { status, note, by }) = &spec.check {
            health.check.status = *status;
            health.check.note = note.clone();
            health.by = by.clone();
        }
        if let Some(set) = &spec.set {
            health.apply(set, now);
        }
        health.refresh();
        health
    }

    /// Takes the check configuration of `spec` (damping, id, name, TTL).
    fn configure(&mut self, spec: &HealthSpec, now: Millis) {
        if let Some(damping) = spec.damping {
            self.check.damping = damping;
        }
        if spec.id.is_some() {
            self.check.id = spec.id.clone();
        }
        if spec.name.is_some() {
            self.check.name = spec.name.clone();
        }
        if let Some(ttl) = spec.ttl_ms {
            if self.check.ttl_ms != Some(ttl) || self.check.deadline.is_none() {
                self.check.deadline = Some(now.saturating_add(ttl));
            }
            self.check.ttl_ms = Some(ttl);
        }
    }

    /// Applies a registration's health fields to a live instance's health at `now`; returns
    /// whether anything readers see changed. A re-registration keeps the current status
    /// unless the body sets one (as Consul keeps a check's status across re-registration).
    pub fn update(&mut self, spec: &HealthSpec, now: Millis) -> bool {
        self.configure(spec, now);
        let mut changed = false;
        if let Some(set) = &spec.set {
            changed |= self.apply(set, now);
        }
        if let Some(check) = &spec.check {
            changed |= self.apply(check, now);
        }
        changed
    }

    /// When a TTL check lapses unless a result comes first.
    pub fn deadline(&self) -> Option<Millis> {
        self.check.deadline
    }

    /// Lapses the TTL check if its deadline has passed at `now`: the check turns critical
    /// (note `"TTL expired"`, as Consul writes) and waits for the next result. Returns whether
    /// readers see a change.
    pub fn lapse(&mut self, now: Millis) -> bool {
        match self.check.deadline {
            Some(deadline) if deadline <= now => {
                let before = (self.status, self.reason.clone());
                self.check.deadline = None;
                self.check.successes = 0;
                self.check.failures = 0;
                if self.check.status != Status::Critical {
                    self.check.status = Status::Critical;
                    self.check.note = Some("TTL expired".into());
                }
                self.refresh();
                (self.status, self.reason.clone()) != before
            }
            _ => false,
        }
    }

    /// Applies one update at `now`; returns whether anything readers see (status, reason, by)
    /// changed. Every update but entering maintenance restarts a TTL check's clock.
    pub fn apply(&mut self, update: &HealthUpdate, now: Millis) -> bool {
        if update.status() != Some(Status::Maintenance) {
            if let Some(ttl) = self.check.ttl_ms {
                self.check.deadline = Some(now.saturating_add(ttl));
            }
        }
        let before = (self.status, self.reason.clone(), self.by.clone());
        match update {
            HealthUpdate::Set { status, reason, by } => {
                if *status == Status::Maintenance {
                    self.maintenance = Some(reason.clone().unwrap_or_default());
                } else {
                    self.maintenance = None;
                    self.check.status = *status;
                    self.check.note = reason.clone();
                    self.check.successes = 0;
                    self.check.failures = 0;
                }
                self.by = by.clone();
            }
            HealthUpdate::Check { status, note, by } => {
                if self.check.report(*status, note.as_ref()) && self.maintenance.is_none() {
                    self.by = by.clone();
                }
            }
            HealthUpdate::Resume { by } => {
                if self.maintenance.take().is_some() {
                    self.by = by.clone();
                }
            }
        }
        self.refresh();
        (self.status, self.reason.clone(), self.by.clone()) != before
    }

    /// Recomputes what readers see from maintenance mode and the check state.
    fn refresh(&mut self) {
        match &self.maintenance {
            Some(reason) => {
                self.status = Status::Maintenance;
                self.reason = (!reason.is_empty()).then(|| reason.to_owned());
            }
            None => {
                self.status = self.check.status;
                self.reason = self.check.note.clone();
            }
        }
    }

    /// Whether the health is the default (passing, nothing set): records leave it out.
    pub fn is_default(&self) -> bool {
        *self == Health::default()
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(reason) => write!(f, "{} ({reason})", self.status),
            None => f.write_str(self.status.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn damped(passing: u32, warning: u32, critical: u32) -> Health {
        let mut h = Health::default();
        h.check.damping = Damping {
            success_before_passing: passing,
            failures_before_warning: warning,
            failures_before_critical: critical,
        };
        h
    }

    #[test]
    fn without_damping_each_result_counts_at_once() {
        let mut h = Health::default();
        assert!(h.apply(&HealthUpdate::check(Status::Critical, None), 0));
        assert_eq!(h.status, Status::Critical);
        assert!(h.apply(&HealthUpdate::check(Status::Warning, None), 0));
        assert_eq!(h.status, Status::Warning);
        assert!(h.apply(&HealthUpdate::check(Status::Passing, None), 0));
        assert_eq!(h.status, Status::Passing);
    }

    #[test]
    fn success_before_passing_needs_consecutive_passes() {
        let mut h = damped(3, 1, 1);
        h.apply(&HealthUpdate::check(Status::Critical, None), 0);
        for _ in 0..2 {
            assert!(!h.apply(&HealthUpdate::check(Status::Passing, None), 0));
        }
        // A failure in between starts the count again.
        h.apply(&HealthUpdate::check(Status::Critical, None), 0);
        assert!(!h.apply(&HealthUpdate::check(Status::Passing, None), 0));
        assert!(!h.apply(&HealthUpdate::check(Status::Passing, None), 0));
        assert!(h.apply(&HealthUpdate::check(Status::Passing, None), 0));
        assert_eq!(h.status, Status::Passing);
    }

    #[test]
    fn a_warning_result_never_makes_it_critical() {
        let mut h = damped(1, 1, 2);
        h.apply(&HealthUpdate::check(Status::Warning, None), 0);
        h.apply(&HealthUpdate::check(Status::Warning, None), 0);
        h.apply(&HealthUpdate::check(Status::Warning, None), 0);
        assert_eq!(h.status, Status::Warning);
    }

    #[test]
    fn a_new_note_with_the_same_status_is_not_a_change() {
        let mut h = Health::default();
        h.apply(
            &HealthUpdate::check(Status::Warning, Some("slow".into())),
            0,
        );
        assert!(!h.apply(
            &HealthUpdate::check(Status::Warning, Some("slower".into())),
            0
        ));
        assert_eq!(h.reason.as_deref(), Some("slow"));
    }

    #[test]
    fn maintenance_survives_check_results_and_ends_on_a_set() {
        let mut h = Health::default();
        assert!(h.apply(
            &HealthUpdate::Set {
                status: Status::Maintenance,
                reason: None,
                by: Some("ops".into())
            },
            0
        ));
        assert_eq!(
            (h.status, h.reason.clone(), h.by.as_deref()),
            (Status::Maintenance, None, Some("ops"))
        );
        assert!(!h.apply(&HealthUpdate::check(Status::Critical, Some("x".into())), 0));
        assert_eq!(h.status, Status::Maintenance);
        assert!(h.apply(&HealthUpdate::set(Status::Warning, Some("half".into())), 0));
        assert_eq!(
            (h.status, h.reason.as_deref()),
            (Status::Warning, Some("half"))
        );
    }

    #[test]
    fn bodies_parse_strictly() {
        let set =
            HealthUpdate::from_json(r#"{"status":"maintenance","reason":"deploy","by":"ci"}"#)
                .unwrap();
        assert_eq!(
            set,
            HealthUpdate::Set {
                status: Status::Maintenance,
                reason: Some("deploy".into()),
                by: Some("ci".into())
            }
        );
        let check =
            HealthUpdate::from_json(r#"{"check":{"status":"critical","note":"db"}}"#).unwrap();
        assert_eq!(
            check,
            HealthUpdate::check(Status::Critical, Some("db".into()))
        );
        for (body, code) in [
            (r#"{"status":"sick"}"#, "invalid_status"),
            (r#"{"status":1}"#, "invalid_status"),
            (r#"{}"#, "invalid_status"),
            (r#"{"reason":"x"}"#, "invalid_reason"),
            (r#"{"status":"passing","extra":1}"#, "invalid_body"),
            (r#"{"check":{"status":"maintenance"}}"#, "invalid_check"),
            (
                r#"{"check":{"status":"passing","success_before_passing":0}}"#,
                "invalid_check",
            ),
            (r#"{"check":{"stat":"passing"}}"#, "invalid_check"),
            (
                r#"{"status":"passing","check":{"status":"passing"}}"#,
                "invalid_body",
            ),
            ("[]", "invalid_body"),
        ] {
            assert_eq!(
                HealthUpdate::from_json(body).unwrap_err().code(),
                code,
                "{body}"
            );
        }
        let long = format!(
            r#"{{"status":"warning","reason":"{}"}}"#,
            "x".repeat(REASON_LEN + 1)
        );
        assert_eq!(
            HealthUpdate::from_json(&long).unwrap_err().code(),
            "invalid_reason"
        );
    }

    #[test]
    fn updates_round_trip_through_their_wire_form() {
        for update in [
            HealthUpdate::Set {
                status: Status::Maintenance,
                reason: Some("deploy".into()),
                by: Some("ci".into()),
            },
            HealthUpdate::check(Status::Critical, Some("db".into())),
            HealthUpdate::Resume { by: None },
        ] {
            assert_eq!(
                HealthUpdate::from_value(&update.to_value()).unwrap(),
                update
            );
        }
    }

    #[test]
    fn health_round_trips_and_the_default_is_empty() {
        let json = serde_json::to_string(&Health::default()).unwrap();
        assert_eq!(json, r#"{"status":"passing"}"#);
        let mut h = damped(2, 1, 1);
        h.apply(&HealthUpdate::check(Status::Critical, Some("x".into())), 0);
        h.apply(&HealthUpdate::set(Status::Maintenance, Some("m".into())), 0);
        let back: Health = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        // Default damping is left out of the record and read back as the default.
        let mut ttl = Health::default();
        ttl.check.ttl_ms = Some(10_000);
        ttl.apply(&HealthUpdate::check(Status::Critical, None), 5);
        let json = serde_json::to_string(&ttl).unwrap();
        assert!(!json.contains("success_before_passing"), "{json}");
        assert_eq!(serde_json::from_str::<Health>(&json).unwrap(), ttl);
    }
}
