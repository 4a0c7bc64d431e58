// The wasm core for the page (`www/pkg`, built by scripts/build-wasm.sh from vasco-wasm with
// `wasm-bindgen --target web`). Every decision shown on the page (version matching, leases,
// expiry, resolution, which instance a strategy picks, where consistent-hash keys go) is made
// by this module's wasm; the JavaScript here only adapts arguments and results.

/**
 * The ways the page shows picks: the core's six strategies, plus zone preference (the core's
 * `localZone` option on the weighted strategy).
 * @type {{id: string, strategy: string, label: string, key?: boolean, zone?: boolean, inFlight?: boolean}[]}
 */
export const PICK_MODES = [
  { id: 'random', strategy: 'random', label: 'Random' },
  { id: 'round-robin', strategy: 'round-robin', label: 'Round robin' },
  { id: 'weighted', strategy: 'weighted', label: 'Weighted (smooth)' },
  { id: 'least-request', strategy: 'least-request', label: 'Least request (P2C)', inFlight: true },
  { id: 'maglev', strategy: 'maglev', label: 'Consistent hash (Maglev)', key: true },
  { id: 'ring', strategy: 'ring', label: 'Consistent hash (ring)', key: true },
  { id: 'zone', strategy: 'weighted', label: 'Zone preference (weighted)', zone: true },
];

/** A fresh random seed (the page's only source of randomness; the core takes seeds). */
function randomSeed() {
  const words = crypto.getRandomValues(new Uint32Array(2));
  // The core reads the seed as a JS number: keep it within 2^53.
  return (words[0] & 0x1fffff) * 2 ** 32 + words[1];
}

/**
 * Candidates for the core's selector, from instances as the registry returns them: the
 * instances themselves, which the core turns into candidates by its one rule
 * (`Candidate::from_instance`), the same as the npm client's.
 */
export function candidatesOf(instances) {
  return instances;
}

export class Core {
  /** @param {any} wasm the wasm-bindgen module, initialised */
  constructor(wasm) {
    this.wasm = wasm;
    /** @type {string[]} */
    this.strategies = wasm.strategies();
  }

  /** A new in-memory registry (the core's), driven by the caller's clock. */
  registry() {
    return new this.wasm.Registry();
  }

  /**
   * A selector for one pick mode.
   * @param {typeof PICK_MODES[number]} mode
   * @param {any[]} instances
   * @param {{zone?: string, seed?: number}} [options]
   */
  selector(mode, instances, options = {}) {
    const settings = { seed: options.seed ?? randomSeed() };
    if (mode.zone && options.zone) settings.localZone = options.zone;
    return new this.wasm.Selector(mode.strategy, candidatesOf(instances), settings);
  }

  /**
   * The index (into `instances`) the mode would pick for one request, or null.
   * @param {typeof PICK_MODES[number]} mode
   * @param {any[]} instances
   * @param {{key?: string, zone?: string, seed?: number}} [options]
   */
  pickOnce(mode, instances, options = {}) {
    const selector = this.selector(mode, instances, options);
    try {
      const index = selector.pick(mode.key ? (options.key ?? '') : undefined);
      return index < 0 ? null : index;
    } finally {
      selector.free();
    }
  }

  /**
   * Fires `n` picks and counts them per instance. Consistent hashing hashes the keys
   * `key-0` … `key-(n-1)`; least request keeps every pick in flight, so it spreads load by
   * in-flight requests per unit of weight.
   * @param {typeof PICK_MODES[number]} mode
   * @param {any[]} instances
   * @param {number} n
   * @param {{zone?: string, seed?: number}} [options]
   * @returns {number[]}
   */
  pickCounts(mode, instances, n, options = {}) {
    const selector = this.selector(mode, instances, options);
    try {
      if (mode.key) {
        const keys = Array.from({ length: n }, (_, i) => `key-${i}`);
        const counts = new Array(instances.length).fill(0);
        for (const index of selector.pickKeys(keys)) if (index >= 0) counts[index] += 1;
        return counts;
      }
      return Array.from(selector.pickMany(n, Boolean(mode.inFlight)));
    } finally {
      selector.free();
    }
  }

  /**
   * Where keys go when `instances[removed]` leaves: `{total, moved, fromRemoved, elsewhere,
   * fraction}` for the consistent-hash `strategy`.
   */
  keyMovement(strategy, instances, removed, keys) {
    return this.wasm.keyMovement(strategy, candidatesOf(instances), removed, keys);
  }

  /** The exact share of the key space `instances[index]` owns under a consistent hash. */
  keyShare(strategy, instances, index) {
    const selector = new this.wasm.Selector(strategy, candidatesOf(instances), { seed: 0 });
    try {
      const shares = selector.keyShares();
      return shares ? shares[index] : null;
    } finally {
      selector.free();
    }
  }

  /**
   * The service name the registry uses for `name` (`@scope/pkg` is `scope.pkg`); throws with
   * the core's reason when the API would refuse it.
   * @param {string} name
   */
  serviceName(name) {
    return this.wasm.serviceName(name);
  }

  /** The health statuses, best first (the core's names). */
  statuses() {
    return this.wasm.statuses();
  }

  /**
   * Whether selection may ever pick an instance in `status` (the core's rule: passing and
   * warning yes, critical and maintenance never); false for an unknown status.
   * @param {string} status
   */
  selectable(status) {
    try {
      return this.wasm.statusSelectable(status);
    } catch {
      return false;
    }
  }

  /**
   * The instances a pick over `instances` (any statuses) chooses among, the core's rule: those
   * of the newest version with a passing or warning instance, every status of it included.
   * @param {any[]} instances
   */
  pickPool(instances) {
    return this.wasm.pickPool(instances);
  }

  /** How often a client renews a lease of `ttlMs`: less left than this means a beat is late. */
  heartbeatPeriod(ttlMs) {
    return this.wasm.heartbeatPeriod(ttlMs);
  }

  /**
   * The core's retry backoff (full jitter under a doubling ceiling): `.delay(attempt)` in ms.
   * @param {{baseMs?: number, maxMs?: number, seed?: number}} [options]
   */
  backoff(options) {
    return new this.wasm.Backoff(options);
  }
}

/**
 * Hands the core to `use` once `loading` has loaded it. A core that fails to load is never
 * handed over and raises nothing here: the views then work without it (app.js tells why).
 * @param {Promise<Core>} loading
 * @param {(core: Core) => void} use
 */
export function whenLoaded(loading, use) {
  loading.then(use, () => {});
}

/** Loads and initialises the wasm once. */
export async function loadCore() {
  const wasm = await import('../pkg/vasco_wasm.js');
  await wasm.default({ module_or_path: new URL('../pkg/vasco_wasm_bg.wasm', import.meta.url) });
  return new Core(wasm);
}
