// ESM entry of `vasco`: the same module instance as require('vasco') (Node loads index.cjs once
// for both), so registrations, the default client and the in-process `memory:` registry are
// shared by both module systems. The named exports are index.cjs's `module.exports` names.
export * from './index.cjs'
export { default } from './index.cjs'
