// Small pure helpers shared by the views (no DOM, so Node tests import them too).

/**
 * A remaining lease as text: tenths of a second under 10 s, whole seconds under 2 min,
 * then minutes and seconds. Never negative: a lapsed lease reads "expired".
 * @param {number} ms
 */
export function formatRemaining(ms) {
  if (!(ms > 0)) return 'expired';
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * Time since something, coarsely: "0.4 s", "12 s", "3 min".
 * @param {number} ms
 */
export function formatAge(ms) {
  const safe = Math.max(0, ms);
  if (safe < 10_000) return `${(Math.floor(safe / 100) / 10).toFixed(1)} s`;
  if (safe < 120_000) return `${Math.floor(safe / 1000)} s`;
  return `${Math.floor(safe / 60_000)} min`;
}

const NAME = /^[a-z0-9._-]{1,63}$/;

/**
 * Parses the resolve box: `api@^2, auth@1.0.0, web` into `{api: '^2', auth: '1.0.0', web: '*'}`.
 * Ranges may contain spaces (`api@>=1 <3`) and `||`; commas separate dependencies. Names are
 * checked the way the registry checks them, so a typo is reported before any request; ranges
 * are left for the registry (and the core) to judge.
 * @param {string} text
 * @returns {{dependencies: Record<string, string>, error: string | null}}
 */
export function parseDependencies(text) {
  /** @type {Record<string, string>} */
  // No prototype: a service may well be called `constructor` or `__proto__`.
  const dependencies = Object.create(null);
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0) return { dependencies, error: 'Type at least one dependency, e.g. api@^2' };
  for (const part of parts) {
    const at = part.indexOf('@');
    const name = (at < 0 ? part : part.slice(0, at)).trim();
    const range = at < 0 ? '*' : part.slice(at + 1).trim();
    if (!NAME.test(name)) {
      return {
        dependencies,
        error: `"${name || part}" is not a service name (1-63 of a-z, 0-9, "-", "_", ".")`,
      };
    }
    if (!range) return { dependencies, error: `"${part}" has an empty version range` };
    if (Object.hasOwn(dependencies, name)) {
      return { dependencies, error: `"${name}" is listed twice` };
    }
    dependencies[name] = range;
  }
  return { dependencies, error: null };
}

/**
 * Delay before retry number `attempt` (0-based): 1 s doubling to at most 30 s, with up to 20 %
 * taken off at random so that many open pages do not retry in lockstep.
 * @param {number} attempt
 * @param {() => number} [random]
 */
export function backoffMs(attempt, random = Math.random) {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));
  return Math.round(base * (1 - 0.2 * random()));
}

/** "1 instance", "3 instances". */
export function plural(count, word) {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
