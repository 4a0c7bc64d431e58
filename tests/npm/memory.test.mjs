// The npm package suite against the in-process registry (VASCO_URL=memory:), no server.
import { defineSuite } from './suite.mjs';
import { loadVasco } from './helpers.mjs';

let view;

defineSuite({
  name: 'memory',
  async setup() {
    process.env.VASCO_URL = 'memory:';
    delete process.env.VASCO_TOKEN;
    const vasco = await loadVasco();
    view = vasco.connect({ url: 'memory:', handleSignals: false });
  },
  async teardown() {
    await view?.close();
  },
  options: () => ({ url: 'memory:' }),
  // The memory client's cache follows the registry's changes and leases: always current.
  ids: async (name) => (await view.instances(name)).map((i) => i.id),
});
