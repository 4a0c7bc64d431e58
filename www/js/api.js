// The registry's HTTP API, as the page uses it: reads only (every live instance, one service,
// resolve).
// Same origin: the Worker serves this page and the API.

/** An error from the registry or the network, with what the page needs to show it. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, unreachable?: boolean}} [info]
   */
  constructor(message, info = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = info.status ?? 0;
    this.code = info.code ?? (info.unreachable ? 'unreachable' : 'error');
    this.unreachable = Boolean(info.unreachable);
  }
}

const TIMEOUT_MS = 5000;

/**
 * A JSON request with a timeout. Resolves to `{body, date, now, index, sentAt, receivedAt}`:
 * the server's `Date` and `x-vasco-now` headers and the local times around the exchange feed
 * the server clock estimate; `index` is the `x-vasco-index` header (the data's change index).
 *
 * @param {string} path
 * @param {{method?: string, body?: unknown, token?: string, signal?: AbortSignal}} [options]
 */
export async function request(path, options = {}) {
  const headers = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: 'no-store',
      signal,
    });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const reason = timeout.aborted ? `no answer within ${TIMEOUT_MS / 1000} s` : 'network error';
    throw new ApiError(`Registry unreachable (${reason})`, { unreachable: true });
  }
  const receivedAt = Date.now();
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError(`Registry answered ${response.status} with a body that is not JSON`, {
        status: response.status,
        unreachable: !response.ok,
      });
    }
  }
  if (!response.ok) {
    const error = body && typeof body === 'object' ? body.error : null;
    const message = error?.message ?? `HTTP ${response.status}`;
    throw new ApiError(message, {
      status: response.status,
      code: error?.code,
      // A gateway or KV outage is as good as unreachable: retry with backoff.
      unreachable: response.status >= 500,
    });
  }
  return {
    body,
    date: response.headers.get('date'),
    now: response.headers.get('x-vasco-now'),
    index: response.headers.get('x-vasco-index'),
    sentAt,
    receivedAt,
  };
}

/**
 * `GET /v1/instances`: `{instances: [...]}`, every live instance (whatever its health status),
 * by service, newest version first.
 */
export function instances(options) {
  return request('/v1/instances', options);
}

/**
 * `GET /v1/services/{name}`: `{service, instances}`, the service's live instances, newest
 * version first, then by id. With `consistent`, from the service's object (current, with its
 * index; no KV operation); with `all`, every leased instance, critical and maintenance ones
 * included (by default the registry lists passing and warning ones).
 * @param {string} name
 * @param {{token?: string, signal?: AbortSignal, consistent?: boolean, all?: boolean}} [options]
 */
export function service(name, options = {}) {
  const flags = [options.consistent && 'consistent', options.all && 'all'].filter(Boolean);
  return request(`/v1/services/${encodeURIComponent(name)}${flags.length ? `?${flags.join('&')}` : ''}`, options);
}

/** `POST /v1/resolve` with `{dependencies: {name: range}}`. */
export function resolve(dependencies, options = {}) {
  return request('/v1/resolve', { ...options, method: 'POST', body: { dependencies } });
}
