// ESM entry of `vasco`: the same module instance as require('vasco'), so registrations, the
// default client and the in-process `memory:` registry are shared by both module systems.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const vasco = require('./index.cjs')

export const {
  register,
  findDependencies,
  deregister,
  connect,
  VascoClient,
  Registration,
  Registry,
  Selector,
  versionMatches,
  normalizeVersion,
  keyMovement,
  strategies,
} = vasco

export default vasco
