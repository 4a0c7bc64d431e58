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
  services: { name: string; versions: { version: string; instances: number }[] }[];
}

/** The body of a registration: only `url` is required; `ttl` in seconds (default 10, 1..=3600). */
export interface InstanceSpec {
  url: string;
  ttl?: number;
  tags?: string[];
  meta?: Record<string, string>;
  weight?: number;
  zone?: string;
}

/** A change to a Registry's instances, oldest first (see Registry.takeChanges). */
export type Change =
  | { type: "insert"; instance: Instance }
  | { type: "remove"; service: string; version: string; id: string };

/** A candidate for a Selector: an id; an id with a weight (default 1), zone and health (default healthy); or a registry instance, which the core turns into a candidate by its one rule (its id, weight and zone). */
export type Candidate = string | { id: string; weight?: number; zone?: string; healthy?: boolean } | (Instance & { healthy?: boolean });

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
