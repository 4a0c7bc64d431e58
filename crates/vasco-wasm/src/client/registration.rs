//! One instance registration: who, where, with which lease and health, what it depends on.

use super::*;

/// One instance registration: who, where, with which lease, and what it depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// `name@version/id`.
    pub key: InstanceKey,
    /// url, ttl, tags, meta, weight, zone.
    pub spec: InstanceSpec,
    /// What the service needs (`vasco.dependencies`).
    pub dependencies: Dependencies,
    /// Fixed urls for some of them (`vasco.mocks`).
    pub mocks: Mocks,
    /// How long a shutdown drain lasts for this registration (`drainMs`, ms), when it says.
    pub drain_ms: Option<u64>,
    /// The last status this registration set (`setStatus`, a drain), kept so that an
    /// instance registered again (its lease lost and taken anew) gets it back.
    pub desired: Option<HealthUpdate>,
    /// The `registered_at` of the instance [`Registration::desired`] was last applied to.
    applied_to: Option<Millis>,
}

impl Registration {
    /// The original API: `register(url, pkg)` with `pkg.vasco = {dependencies, mocks,
    /// aliveDuration}`. Also accepted in `pkg.vasco`: `tags`, `meta`, `weight`, `zone`, `id`
    /// (and `handleSignals`, read by the JavaScript layer). Any other key in `pkg.vasco` is
    /// refused, so that a typo (`dependecies`) is not silently ignored.
    pub fn from_package(url: &Value, pkg: &Value) -> Result<Self> {
        let url = match url {
            Value::String(url) if !url.trim().is_empty() => url.trim(),
            _ => return Err(Error::NeedUrl),
        };
        let invalid = |reason: String| Error::InvalidPackage { reason };
        let needs =
            "register(url, pkg) needs the package.json object, with \"name\" and \"version\"";
        let pkg = match pkg {
            Value::Object(pkg) => pkg,
            Value::Null => return Err(invalid(format!("no package given; {needs}"))),
            other => {
                return Err(invalid(format!(
                    "got {}, not an object; {needs}",
                    json_type(other)
                )))
            }
        };
        let field = |key: &str| {
            non_empty_str(pkg.get(key)).ok_or_else(|| {
                let problem = match pkg.get(key) {
                    None | Some(Value::Null) => "is missing",
                    Some(Value::String(_)) => "is empty",
                    Some(_) => "must be a string",
                };
                invalid(format!("\"{key}\" {problem}; {needs}"))
            })
        };
        let name = field("name")?;
        let version = field("version")?;
        let empty = Map::new();
        let vasco = match pkg.get("vasco") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(vasco)) => vasco,
            Some(other) => {
                return Err(invalid(format!(
                    "\"vasco\" must be an object, not {}",
                    json_type(other)
                )))
            }
        };
        if let Some(message) = unknown_key(vasco, PACKAGE_KEYS, " in \"vasco\"") {
            return Err(invalid(message));
        }
        let ttl = alive_duration(vasco.get("aliveDuration"))?;
        Self::build(
            name,
            version,
            url,
            vasco.get("id"),
            ttl,
            vasco,
            vasco.get("dependencies"),
            vasco.get("mocks"),
        )
    }

    /// The modern API: `client.register({name, version, url, id?, ttl?, tags?, meta?,
    /// weight?, zone?, dependencies?, mocks?})`, `ttl` in seconds.
    pub fn from_options(options: &Value) -> Result<Self> {
        let options = options
            .as_object()
            .ok_or_else(|| Error::argument("options", "must be an object"))?;
        if let Some(message) = unknown_key(options, OPTION_KEYS, "") {
            return Err(Error::argument("options", message));
        }
        let url = match options.get("url") {
            Some(Value::String(url)) if !url.trim().is_empty() => url.trim(),
            _ => return Err(Error::NeedUrl),
        };
        let name = non_empty_str(options.get("name"))
            .ok_or_else(|| vasco_core::Error::invalid("name", "is required"))?;
        let version = non_empty_str(options.get("version"))
            .ok_or_else(|| vasco_core::Error::invalid("version", "is required"))?;
        let ttl = match options.get("ttl") {
            None | Some(Value::Null) => Value::Null,
            Some(ttl) => ttl.clone(),
        };
        Self::build(
            name,
            version,
            url,
            options.get("id"),
            ttl,
            options,
            options.get("dependencies"),
            options.get("mocks"),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        name: &str,
        version: &str,
        url: &str,
        id: Option<&Value>,
        ttl: Value,
        extras: &Map<String, Value>,
        dependencies: Option<&Value>,
        mocks: Option<&Value>,
    ) -> Result<Self> {
        let service = ServiceName::from_package_name(name)?;
        let version = Version::parse(version)?;
        let id = match id {
            None | Some(Value::Null) => InstanceId::from_url(url),
            Some(Value::String(id)) => InstanceId::parse(id)?,
            Some(_) => return Err(vasco_core::Error::invalid("id", "must be a string").into()),
        };
        let mut body = Map::new();
        body.insert("url".into(), Value::String(url.into()));
        body.insert("ttl".into(), ttl);
        for field in ["tags", "meta", "weight", "zone"] {
            if let Some(value) = extras.get(field) {
                body.insert(field.into(), value.clone());
            }
        }
        let spec = InstanceSpec::from_json_value(&Value::Object(body))?;
        let dependencies = Dependencies::from_json_value(dependencies.unwrap_or(&Value::Null))?;
        let mocks = Mocks::from_json_value(mocks.unwrap_or(&Value::Null))?;
        let drain_ms = drain_ms(extras.get("drainMs").unwrap_or(&Value::Null))?;
        Ok(Self {
            key: InstanceKey {
                service,
                version,
                id,
            },
            spec,
            dependencies,
            mocks,
            drain_ms,
            desired: None,
            applied_to: None,
        })
    }

    /// Records a status set (`status` with an optional `reason` and `by`) as this
    /// registration's wish, and answers the update to send (validated as the registry
    /// validates it). While the wish is maintenance, every registration body carries it (a
    /// lease registered again stays out of rotation from its first moment); any other status
    /// is sent once, and again only to an instance registered anew (see
    /// [`Registration::follow_up`]), so that renewals never undo a status someone else set.
    /// Errors: `invalid_status`, `invalid_reason`, `invalid_by`.
    pub fn set_status(
        &mut self,
        status: &str,
        reason: Option<String>,
        by: Option<String>,
    ) -> Result<HealthUpdate> {
        let mut body = Map::new();
        body.insert("status".into(), Value::String(status.into()));
        if let Some(reason) = reason {
            body.insert("reason".into(), Value::String(reason));
        }
        if let Some(by) = by {
            body.insert("by".into(), Value::String(by));
        }
        let update = HealthUpdate::from_value(&Value::Object(body))?;
        self.spec.health.set =
            (update.status() == Some(Status::Maintenance)).then(|| update.clone());
        self.desired = Some(update.clone());
        self.applied_to = None;
        Ok(update)
    }

    /// Records the result of this registration's health check (see [`check_outcome`]); it
    /// goes with every registration and HTTP renewal from now on, and on a WebSocket lease as
    /// a status message when the registry's check status differs (see
    /// [`Registration::follow_up`]). Returns the result.
    pub fn report_check(&mut self, outcome: &Value, thrown: bool) -> HealthUpdate {
        let (status, note) = check_outcome(outcome, thrown);
        let check = HealthUpdate::check(status, note);
        self.spec.health.check = Some(check.clone());
        check
    }

    /// What to send after a beat answered `instance`, if anything: this registration's status
    /// set, when the instance does not show it and it was not applied to this instance yet
    /// (a lease registered anew starts passing); else its latest check result, when the
    /// instance's check status differs from it (or the instance damps its checks, where each
    /// result counts). At most one update per beat.
    pub fn follow_up(&mut self, instance: &Instance) -> Option<HealthUpdate> {
        if let Some(set) = &self.desired {
            if self.applied_to != Some(instance.registered_at) {
                if shows(set, instance) {
                    self.applied_to = Some(instance.registered_at);
                } else {
                    return Some(set.clone());
                }
            }
        }
        match &self.spec.health.check {
            Some(check @ HealthUpdate::Check { status, .. })
                if instance.health.check.status != *status
                    || instance.health.check.damping != Damping::default() =>
            {
                Some(check.clone())
            }
            _ => None,
        }
    }

    /// A status update of this registration reached `instance` (the registry's answer).
    pub fn applied(&mut self, instance: &Instance) {
        if self.desired.is_some() {
            self.applied_to = Some(instance.registered_at);
        }
    }
}

/// Whether `instance` shows the status set `set` (maintenance on for a maintenance set; else
/// that status as its check status, maintenance off).
fn shows(set: &HealthUpdate, instance: &Instance) -> bool {
    let health = &instance.health;
    match set.status() {
        Some(Status::Maintenance) => health.maintenance.is_some(),
        Some(status) => health.maintenance.is_none() && health.check.status == status,
        None => health.maintenance.is_none(),
    }
}
