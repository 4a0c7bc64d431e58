// Types of the npm package `vasco`. The data shapes (Instance, Resolution, Catalog, ...) and
// the core classes (Registry, Selector) are generated from the Rust sources by wasm-bindgen
// (wasm/vasco_wasm.d.ts); the JavaScript layer's API is declared here.

import { EventEmitter } from "node:events";
import type {
  Instance,
  Resolved,
  Resolution,
  Catalog,
  InstanceSpec,
  Change,
  Candidate,
  Strategy,
  KeyMovement,
  Status,
  StatusUpdate,
  QueryOptions,
} from "./wasm/vasco_wasm.js";

export type { Instance, Resolved, Resolution, Catalog, InstanceSpec, Change, Candidate, Strategy, KeyMovement, Status, StatusUpdate, QueryOptions };
export { Registry, Selector, versionMatches, normalizeVersion, keyMovement, strategies } from "./wasm/vasco_wasm.js";

/**
 * What a registration's `healthCheck` gives (or resolves to): `true` or nothing for passing,
 * `false` for critical, or a check result `{status, note}` (passing, warning or critical).
 * Throwing (or rejecting) is critical with the error's message as the note.
 */
export type HealthCheckResult = boolean | void | undefined | null | { status: "passing" | "warning" | "critical"; note?: string };

/**
 * Every error of the package is an `Error` with `name` `"VascoError"` and a stable `code`:
 *
 * - `need_url`: `Need url of service` (register without a url)
 * - `invalid_package`: `Invalid package: <what>` (no package, name or version, an unknown key in `vasco`)
 * - `no_url`: `No url for: <names> (wanted <name> <range>: live versions ...)` (dependencies without a
 *   live instance; see `missing`)
 * - `invalid_<field>`: a field failed validation (`invalid_name`, `invalid_version`, `invalid_url`,
 *   `invalid_ttl`, `invalid_dependencies`, `invalid_mocks`, `invalid_strategy`, ...; see `field`)
 * - `invalid_registry_url`: VASCO_URL / `url` is not http(s), host:port or memory: (e.g. redis://)
 * - `invalid_argument`: an argument of the wrong shape
 * - `unavailable`: the registry could not be reached (or answered 5xx/429: see `status` and
 *   `registryCode`, e.g. 503 `not_configured`) and nothing usable was cached
 * - a registry error code for 4xx answers (`unauthorized`, `invalid_url`, `not_found`, ...; see `status`)
 * - `bad_response`: the registry answered something unreadable
 * - `closed`: the client was closed
 */
export interface VascoError extends Error {
  name: "VascoError";
  code: string;
  /** For `no_url`: the dependencies without an instance. */
  missing?: string[];
  /** For `no_url` from findDependencies/register: the dependencies that did resolve. */
  dependencies?: Record<string, string>;
  /** For validation errors: the field. */
  field?: string;
  /** For registry errors, and `unavailable` when the registry answered: the HTTP status. */
  status?: number;
  /** For `unavailable` when the registry answered 5xx/429: its error code (`not_configured`, ...). */
  registryCode?: string;
  /** For `invalid_package`: what is wrong with the package. */
  reason?: string;
  /** For errors of register(): the registration, which keeps running (heartbeats, resolution). */
  registration?: Registration;
}

/** `{name: version or semver range}`, as in package.json's `vasco.dependencies`. */
export type Dependencies = Record<string, string>;
/** `{name: url}`: fixed urls for dependencies, as in `vasco.mocks`. */
export type Mocks = Record<string, string>;
/** `{name: url}`: one url per dependency. */
export type DependencyUrls = Record<string, string>;

/** The `vasco` section of package.json. */
export interface VascoPackageConfig {
  dependencies?: Dependencies;
  mocks?: Mocks;
  /** Seconds an instance stays alive without a heartbeat; default 10 (0 also means 10). */
  aliveDuration?: number | string;
  tags?: string[];
  meta?: Record<string, string>;
  weight?: number;
  zone?: string;
  /** The instance id; default derived from the url. */
  id?: string;
  /** Deregister on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
  /** On SIGINT/SIGTERM, stay registered in maintenance this long first (ms; default VASCO_DRAIN_MS, else 3000; 0: none). */
  drainMs?: number;
  /** Run before each heartbeat; its result is reported as the instance's check result. */
  healthCheck?: () => HealthCheckResult | Promise<HealthCheckResult>;
}

/** The parts of package.json that register() reads. */
export interface PackageJson {
  name: string;
  version: string;
  vasco?: VascoPackageConfig;
  [key: string]: unknown;
}

export type Callback<T> = (error: VascoError | null, value?: T) => void;

/**
 * A running registration: the instance's lease is renewed every ttl/3 (with jitter), and its
 * missing dependencies are retried in the background. A registration of the original
 * `register()` keeps the process alive until it is stopped or deregistered (as the original's
 * heartbeat did); one of `connect().register()` does not (its timers are unref'd).
 *
 * Events: `'heartbeat'` (instance), `'dependencies'` (urls, once all resolved), `'deregistered'`,
 * `'status'` (instance, when its health status moved), `'draining'` (ms, once maintenance is set
 * by a drain), `'error'` (registry errors of background heartbeats and retries; never thrown:
 * without a listener, each kind of failure is emitted once as a process warning instead).
 */
export declare class Registration extends EventEmitter {
  private constructor();
  readonly name: string;
  readonly version: string;
  readonly id: string;
  readonly url: string;
  /** The lease in seconds. */
  readonly ttl: number;
  /** The instance as last stored by the registry. */
  readonly instance: Instance | null;
  /** `{name: url}` of the dependencies resolved so far. */
  readonly dependencies: DependencyUrls;
  /** Dependencies without an instance yet. */
  readonly missing: string[];
  /** Whether heartbeats are running. */
  readonly active: boolean;
  /**
   * Whether the lease is held on a WebSocket right now (the default over HTTP; false with
   * `lease: 'http'`, in `memory:` mode, or while renewals fall back to HTTP PUTs).
   */
  readonly socket: boolean;
  /** Its health status as the registry last answered (`passing` until registered). */
  readonly status: Status;
  /** How long a SIGINT/SIGTERM drain keeps it registered in maintenance, in ms (0: none). */
  readonly drainMs: number;
  /** Stops heartbeats and removes the instance from the registry. Idempotent. */
  deregister(): Promise<void>;
  /**
   * Stops heartbeats without deregistering: the lease lapses after its TTL (a lease socket is
   * left open, unreferenced, until the registry closes it at the lapse).
   */
  stop(): void;
  /**
   * Sets the instance's health status at once (over the lease socket, else `PUT .../status`);
   * resolves to the stored instance. `maintenance` takes it out of every consumer's picks until
   * another status is set (its health check never ends it); `critical` too, until a check or a
   * set says otherwise; `warning` is picked only when no passing instance is left. Rejects
   * `invalid_status` / `invalid_reason` for bad input, `closed` after deregister().
   */
  setStatus(status: Status, reason?: string, options?: { by?: string }): Promise<Instance>;
  /**
   * Sets maintenance (`reason`, default `"drain"`), keeps renewing the lease for `timeout` ms
   * (default `drainMs`) while requests in flight finish, then deregisters; health checks stop.
   * Resolves once deregistered. Idempotent.
   */
  drain(options?: { timeout?: number; reason?: string }): Promise<void>;

  on(event: "heartbeat", listener: (instance: Instance) => void): this;
  on(event: "dependencies", listener: (urls: DependencyUrls) => void): this;
  on(event: "deregistered", listener: () => void): this;
  on(event: "status", listener: (instance: Instance) => void): this;
  on(event: "draining", listener: (ms: number) => void): this;
  on(event: "error", listener: (error: VascoError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: "heartbeat", listener: (instance: Instance) => void): this;
  once(event: "dependencies", listener: (urls: DependencyUrls) => void): this;
  once(event: "deregistered", listener: () => void): this;
  once(event: "status", listener: (instance: Instance) => void): this;
  once(event: "draining", listener: (ms: number) => void): this;
  once(event: "error", listener: (error: VascoError) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Options of connect(). */
export interface ConnectOptions {
  /**
   * The registry: an http(s) URL, a bare `host:port` (http), or `memory:` for the in-process
   * registry. Default: VASCO_URL, else `http://127.0.0.1:8787` (a local `wrangler dev`).
   */
  url?: string;
  /** Bearer token for writes (and reads when the registry requires it). Default: VASCO_TOKEN. */
  token?: string;
  /** Per-request timeout in ms (default 5000). */
  timeout?: number;
  /** How long a fetched answer is served from the cache, in ms (default 5000). */
  cacheTtl?: number;
  /**
   * How many distinct questions (name, range, tag, zone, statuses; or a resolution's name and
   * range) the answer cache keeps, least recently used out (default 1024; 1 to 16384).
   * Watched questions and those being fetched stay beyond it.
   */
  cacheSize?: number;
  /** How long past `cacheTtl` an answer may be served while the registry is unreachable (ms; default about 5 minutes; Infinity for no limit). */
  staleIfError?: number;
  /** This client's zone: zone-aware picks prefer instances in it. */
  zone?: string;
  /** Below this fraction of non-ejected instances, picks ignore ejections (0 = off, the default). */
  protectionThreshold?: number;
  /**
   * Outlier ejection (the core's, per service): `consecutiveFailures` (5) in a row eject an
   * instance for `baseEjectionMs` (30000) times its ejection count, at most `maxEjectionMs`
   * (300000); at most `maxEjectionPercent` (10) of a service's instances are ejected at once,
   * but with `alwaysEjectOne` (true in this client) one may always be.
   */
  outlier?: {
    consecutiveFailures?: number;
    baseEjectionMs?: number;
    maxEjectionMs?: number;
    maxEjectionPercent?: number;
    alwaysEjectOne?: boolean;
  };
  /** Deregister this client's registrations on SIGINT/SIGTERM (default true). */
  handleSignals?: boolean;
  /**
   * On SIGINT/SIGTERM, registrations first stay registered in maintenance this long (ms), still
   * renewing, so consumers stop picking them before they leave (default: VASCO_DRAIN_MS, else
   * 3000; 0 deregisters at once).
   */
  drainMs?: number;
  /**
   * How registrations hold their lease over HTTP: `'websocket'` (the default: one socket per
   * registration; closing it, even by a crash, deregisters at once; HTTP PUT renewals when the
   * socket cannot be opened) or `'http'` (PUT renewals only).
   */
  lease?: "websocket" | "http";
  /**
   * Keep cached answers about each service in use current from its change feed, a WebSocket
   * (default true; false: the cache refreshes over HTTP by its lifetime).
   */
  feeds?: boolean;
  /** Seed for picks and jitter (reproducible tests); default from crypto. */
  seed?: number;
}

/** Options of client.register(). */
export interface RegisterOptions {
  name: string;
  version: string;
  url: string;
  /** Default: derived from the url. */
  id?: string;
  /** Lease in seconds (default 10, 1..=3600). */
  ttl?: number;
  tags?: string[];
  meta?: Record<string, string>;
  weight?: number;
  zone?: string;
  dependencies?: Dependencies;
  mocks?: Mocks;
  /** Default: the client's handleSignals. */
  handleSignals?: boolean;
  /** Default: the client's drainMs. */
  drainMs?: number;
  /**
   * Run before each heartbeat (at most a heartbeat period); its result is the instance's check
   * result: `true`/nothing passing, `false` or a throw critical (the message as note), or
   * `{status, note}`. Sent with the renewal, or as a status message on a lease socket when it
   * differs from the registry's. Stops while draining.
   */
  healthCheck?: () => HealthCheckResult | Promise<HealthCheckResult>;
}

/** Options of pick(). */
export interface PickOptions extends QueryOptions {
  /** Default `weighted`. */
  strategy?: Strategy;
  /** The key consistent-hash strategies (`maglev`, `ring`) stick to. */
  key?: string | number;
}

/** A registry client with a cache (fresh, refreshed ahead, stale-if-error) and outlier ejection. */
export declare class VascoClient {
  constructor(options?: ConnectOptions);
  /** The registry: normalized http(s) base URL, or `memory:`. */
  readonly url: string;
  /** How many distinct questions the answer cache holds now (at most `cacheSize`, but for watched ones and those being fetched). */
  readonly cachedQuestions: number;
  /** Registrations of this client that are still running. */
  readonly registrations: Registration[];
  /**
   * Live instances of `name` matching `range` (default any), newest version first: passing and
   * warning ones, unless `{status, passing, all}` ask for others.
   */
  instances(name: string, range?: string, options?: QueryOptions): Promise<Instance[]>;
  instances(name: string, options: QueryOptions): Promise<Instance[]>;
  /**
   * One instance of `name`, by the core's selector: never a critical or maintenance one, a
   * warning one only when no passing one is left; rejects `No url for: <name>` (code `no_url`)
   * when there is none.
   */
  pick(name: string, range?: string, options?: PickOptions): Promise<Instance>;
  pick(name: string, options: PickOptions): Promise<Instance>;
  /** Resolves every dependency in at most one round trip; never rejects for missing names. */
  resolve(dependencies: Dependencies, mocks?: Mocks): Promise<Resolution>;
  /** `{name: url}`; rejects `No url for: ...` with `missing` and the partial `dependencies`. */
  findDependencies(dependencies: Dependencies, mocks?: Mocks): Promise<DependencyUrls>;
  /** Registers an instance and keeps it alive. Missing dependencies do not reject: see `missing`. */
  register(options: RegisterOptions): Promise<Registration>;
  /**
   * Calls `listener(instances)` with the live instances of `name` matching `range` (and the
   * filters) once known and again whenever they change, from the service's change feed
   * (polled every 250 ms in `memory:` mode or with `feeds: false`). Returns the unsubscribe
   * function.
   */
  watch(name: string, range: string | undefined, listener: (instances: Instance[]) => void): () => void;
  watch(name: string, range: string | undefined, options: QueryOptions, listener: (instances: Instance[]) => void): () => void;
  watch(name: string, options: QueryOptions, listener: (instances: Instance[]) => void): () => void;
  watch(name: string, listener: (instances: Instance[]) => void): () => void;
  /** A call to `url` of `name` failed; 5 in a row eject it from picks for a while. Returns whether this ejected it. */
  reportFailure(name: string, url: string): boolean;
  /** A call to `url` of `name` succeeded (ends a failure streak and a least-request pick). */
  reportSuccess(name: string, url: string): void;
  /** Every live service with its versions and instance counts. */
  catalog(): Promise<Catalog>;
  /** Deregisters (or with `{deregister: false}` only stops) every registration, then closes. */
  close(options?: { deregister?: boolean }): Promise<void>;
}

/** A client; `url` and `token` default to VASCO_URL and VASCO_TOKEN. */
export declare function connect(options?: ConnectOptions): VascoClient;

/**
 * The original API: resolves `pkg.vasco.dependencies`, registers `pkg.name@pkg.version` at `url`,
 * starts heartbeats and calls `done(err, depUrls)`. Missing dependencies: the instance is
 * registered anyway, `err` is `No url for: <names>` and resolution is retried in the background.
 * While registered, the process stays alive (call `deregister()` or `registration.stop()` to let
 * it exit). A registration the registry refuses (e.g. no `VASCO_TOKEN`) is not retried.
 * Returns the Registration (with `done`), or a Promise of the urls with a `registration` property.
 */
export declare function register(url: string, pkg: PackageJson, done: Callback<DependencyUrls>): Registration | null;
export declare function register(url: string, pkg: PackageJson): Promise<DependencyUrls> & { readonly registration?: Registration };

/** The original API: `{name: url}` per dependency, mocks win; `done(err, depUrls)` or a Promise. */
export declare function findDependencies(dependencies: Dependencies, mocks: Mocks | undefined, done: Callback<DependencyUrls>): void;
export declare function findDependencies(dependencies: Dependencies, done: Callback<DependencyUrls>): void;
export declare function findDependencies(dependencies: Dependencies, mocks?: Mocks): Promise<DependencyUrls>;

/** Deregisters every instance registered with register(). */
export declare function deregister(): Promise<void>;

// @esm-only: the lines below go into index.d.mts only (CommonJS has no default export).
declare const vasco: {
  register: typeof register;
  findDependencies: typeof findDependencies;
  deregister: typeof deregister;
  connect: typeof connect;
  VascoClient: typeof VascoClient;
  Registration: typeof Registration;
  Registry: typeof import("./wasm/vasco_wasm.js").Registry;
  Selector: typeof import("./wasm/vasco_wasm.js").Selector;
  versionMatches: typeof import("./wasm/vasco_wasm.js").versionMatches;
  normalizeVersion: typeof import("./wasm/vasco_wasm.js").normalizeVersion;
  keyMovement: typeof import("./wasm/vasco_wasm.js").keyMovement;
  strategies: typeof import("./wasm/vasco_wasm.js").strategies;
};
export default vasco;
