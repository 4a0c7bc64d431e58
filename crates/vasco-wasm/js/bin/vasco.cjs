#!/usr/bin/env node
'use strict'
// The `vasco` command of the npm package. One subcommand: `vasco agent` (see agent/index.cjs).

const USAGE = `Usage: vasco <command> [options]

Commands:
  agent    run a local sidecar: Consul's agent HTTP API and DNS, health checks, leases
           (vasco agent --help for its options)
`

const [command, ...rest] = process.argv.slice(2)
if (command === 'agent') {
  require('../agent/index.cjs').main(rest)
} else if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
  process.stdout.write(USAGE)
} else {
  process.stderr.write(`vasco: unknown command ${JSON.stringify(command)}\n\n${USAGE}`)
  process.exitCode = 2
}
