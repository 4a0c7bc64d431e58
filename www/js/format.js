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

/**
 * An element id for arbitrary text under a fixed `prefix`, distinct for every pair of distinct
 * texts: letters, digits and `-` stay, every other character (`_` included) becomes
 * `_<hex code point>_`. As `_` only ever opens or closes an escape, the text can be read back
 * from the id, so `a.b` (`a_2e_b`) and `a_2eb` (`a_5f_2eb`) cannot meet.
 * @param {string} prefix
 * @param {string} text
 */
export function elementId(prefix, text) {
  let id = prefix;
  for (const char of text) {
    id += /^[a-zA-Z0-9-]$/.test(char) ? char : `_${/** @type {number} */ (char.codePointAt(0)).toString(16)}_`;
  }
  return id;
}

/**
 * Parses the resolve box: `api@^2, @acme/auth@1.0.0, web` into the dependencies to send,
 * keyed by service name (`{api: '^2', 'acme.auth': '1.0.0', web: '*'}`, the keys the
 * registry's answer uses) and what was typed for each (`written`). Ranges may contain spaces
 * (`api@>=1 <3`) and `||`; commas separate dependencies; a name's own leading `@` (an npm
 * scope) is not a separator. Names are checked by `serviceName`, the core's rule (the wasm
 * `serviceName`: returns the service name or throws with the reason), so a typo is reported
 * before any request and whatever the API accepts is accepted; ranges are left for the
 * registry (and the core) to judge.
 * @param {string} text
 * @param {(name: string) => string} serviceName
 * @returns {{dependencies: Record<string, string>, written: Record<string, string>, error: string | null}}
 */
export function parseDependencies(text, serviceName) {
  // No prototype: a service may well be called `constructor` or `__proto__`.
  /** @type {Record<string, string>} */
  const dependencies = Object.create(null);
  /** @type {Record<string, string>} */
  const written = Object.create(null);
  const fail = (error) => ({ dependencies, written, error });
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0) return fail('Type at least one dependency, e.g. api@^2');
  for (const part of parts) {
    const at = part.indexOf('@', 1);
    const name = (at < 0 ? part : part.slice(0, at)).trim();
    const range = at < 0 ? '*' : part.slice(at + 1).trim();
    let service;
    try {
      service = serviceName(name);
    } catch (err) {
      return fail(`"${name || part}" is not a service name: ${err instanceof Error ? err.message : err}`);
    }
    if (!range) return fail(`"${part}" has an empty version range`);
    if (Object.hasOwn(dependencies, service)) {
      const first = written[service];
      return fail(first === name ? `"${name}" is listed twice` : `"${first}" and "${name}" are the same service, "${service}"`);
    }
    dependencies[service] = range;
    written[service] = name;
  }
  return { dependencies, written, error: null };
}

/** "1 instance", "3 instances". */
export function plural(count, word) {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
