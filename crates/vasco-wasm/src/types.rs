//! TypeScript declarations of the plain data the wasm API returns, emitted into the generated
//! `vasco_wasm.d.ts` (and re-exported by the package's `index.d.ts`). They mirror the JSON the
//! core serializes, which is also what the registry's HTTP API speaks.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** One registered instance, exactly as the registry stores and returns it. */
export interface Instance {
  /** The service name. */
  service: string;
  /** Its version, normalized (`2.1.0`). */
  version: string;
  /** Its id within `service@version`. */
  id: string;
  /** Where to reach it: `host:port` or an http(s) URL, as registered. */
  url: string;
  /** Labels to filter on. */
  tags: string[];
  /** Free-form data. */
  meta: Record<string, string>;
  /** Relative share of traffic, 1..=1000. */
  weight: number;
  /** Failure domain, if any. */
  zone: string | null;
  /** When it was first registered (ms since the epoch; kept across heartbeats). */
  registered_at: number;
  /** When its lease lapses unless renewed (ms since the epoch). */
  expires_at: number;
  /** The lease length a heartbeat renews, in ms. */
  ttl_ms: number;
  /**
   * Its health status: `passing` and `warning` are listed by default and picked (warning only
   * when no passing instance is left); `critical` and `maintenance` are listed only when asked
   * for (`all`, `status`) and never picked.
   */
  status: Status;
  /** Why: the maintenance reason, or the note of the check result that set the status. */
  reason?: string;
  /** Who set the status. */
  by?: string;
  /** Present while in maintenance mode: its reason (possibly empty). */
  maintenance?: string;
  /** The health check's state under maintenance mode, when not the default. */
  check?: {
    status?: Status;
    note?: string;
    successes?: number;
    failures?: number;
    success_before_passing?: number;
    failures_before_warning?: number;
    failures_before_critical?: number;
  };
}

/** An instance's health status, best first. */
export type Status = "passing" | "warning" | "critical" | "maintenance";

/**
 * A status set (`{status, reason?, by?}`: at once; `maintenance` takes the instance out of
 * rotation, any other status ends maintenance) or a check result (`{check: {status, note?}}`:
 * passing, warning or critical, damped by the instance's check thresholds; never ends
 * maintenance), as `PUT .../status` takes it.
 */
export type StatusUpdate =
  | { status: Status; reason?: string; by?: string }
  | { check: { status: "passing" | "warning" | "critical"; note?: string }; by?: string };

/**
 * Filters of lookups. `tag` (every tag of a comma-separated list must match), `zone`, and which
 * health statuses are listed: `status` (`"passing,critical"` or an array), `passing: true`
 * (passing only) or `all: true` (every leased instance), at most one of the three; passing and
 * warning by default.
 */
export interface QueryOptions {
  tag?: string;
  zone?: string;
  status?: Status | string | Status[];
  passing?: boolean;
  all?: boolean;
}

/** What one dependency resolved to. */
export interface Resolved {
  /** The newest version with live instances matching the requirement (absent for a mock). */
  version?: string;
  /** The live instances of that version (empty for a mock). */
  instances: Instance[];
  /** The mock url that replaced the lookup. */
  mock?: string;
}

/** The outcome of resolving several dependencies at once. */
export interface Resolution {
  /** Each dependency that has a mock or a live instance. */
  resolved: Record<string, Resolved>;
  /** Each dependency with neither, sorted. */
  missing: string[];
  /** Only from a client: whether some answer was served past its freshness because the registry was unreachable. */
  stale?: boolean;
}

/** Every live service with its versions and instance counts. */
export interface Catalog {
  services: {
    name: string;
    versions: {
      version: string;
      instances: number;
      statuses?: { passing: number; warning: number; critical: number; maintenance: number };
    }[];
  }[];
}

/** The body of a registration: only `url` is required; `ttl` in seconds (default 10, 1..=3600). */
export interface InstanceSpec {
  url: string;
  ttl?: number;
  tags?: string[];
  meta?: Record<string, string>;
  weight?: number;
  zone?: string;
  /** A status set with the registration: `reason` and `by` go with it. */
  status?: Status;
  reason?: string;
  by?: string;
  /** A first check result and the check's damping thresholds. */
  check?: {
    status?: "passing" | "warning" | "critical";
    note?: string;
    success_before_passing?: number;
    failures_before_warning?: number;
    failures_before_critical?: number;
  };
}

/** A change to a Registry's instances, oldest first (see Registry.takeChanges). */
export type Change =
  | { type: "insert"; instance: Instance }
  | { type: "remove"; service: string; version: string; id: string };

/** A candidate for a Selector: an id; an id with a weight (default 1), zone, health (default healthy: not ejected) and registry status (default passing); or a registry instance, which the core turns into a candidate by its one rule (its id, weight, zone and status). Critical and maintenance candidates are never picked. */
export type Candidate = string | { id: string; weight?: number; zone?: string; healthy?: boolean; status?: Status } | (Instance & { healthy?: boolean });

/** Selection strategies of the core. `consistent-hash` is an alias of `maglev`. */
export type Strategy = "random" | "round-robin" | "weighted" | "least-request" | "maglev" | "consistent-hash" | "ring";

/** The outcome of keyMovement(). */
export interface KeyMovement {
  /** Sample keys. */
  total: number;
  /** Keys whose candidate changed. */
  moved: number;
  /** Of those, keys that were on the removed candidate (these must move). */
  fromRemoved: number;
  /** Keys that moved between surviving candidates (0 for ideal consistent hashing). */
  elsewhere: number;
  /** moved / total. */
  fraction: number;
}
"#;
