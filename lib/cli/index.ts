#!/usr/bin/env node
// `fastify-cluster`: the command line onto a running cluster's monitoring server.
import { parseArgs } from 'node:util'
import { formatAddress } from '../common/address.js'
import { port, read } from '../common/config.js'
import { MONITORING_SETTINGS } from '../primary/settings.js'
import { frameText } from '../primary/supervision/stack-capture.js'
import type { ClusterHealth, ClusterStats, Incident, ReloadResult, RolloutProgress, WorkerStats } from '../primary/types.js'

const USAGE = `Usage: fastify-cluster <command> [--host H] [--port P] [--token T]

Commands:
  start <entry>       run an app clustered (fastify-cluster start --help for its flags)
  status [--watch S]  the workers as a table (with --watch: live, redrawn at most every S seconds
                      and at each event, the latest events below it)
  stats [--json]      the cluster's stats (--json: one line of JSON)
  health              the cluster's health; exit 0 when healthy, 1 when not
  restart             a rolling reload; waits for it and reports the result
  metrics             the Prometheus metrics of every worker and of the cluster
  profile <worker> [--seconds N] [-o FILE]
                      a CPU profile of that worker while it serves (default 10 s), written to
                      FILE (default worker-<id>-<time>.cpuprofile; Chrome DevTools, speedscope)
  heap <worker> [-o FILE]
                      a heap snapshot of that worker, written to FILE (default
                      worker-<id>-<time>.heapsnapshot; Chrome DevTools' Memory tab)

--host, --port and --token default to CLUSTER_MONITORING_HOST, CLUSTER_MONITORING_PORT and
CLUSTER_MONITORING_TOKEN, else 127.0.0.1 and 3003. Exit code 2: nothing answered there, the token
was refused, or the command line was wrong; start exits 1 when the app cannot start.`

/** A failure to reach or use the monitoring server: one line, exit code 2. */
class CliError extends Error {}

interface Target { base: string, token: string | undefined }

async function main (argv: string[]): Promise<number> {
  if (argv[0] === 'start') {
    // Loaded only for this command: the others talk to a running cluster and need none of it.
    await (await import('./start.js')).start(argv.slice(1)).catch((error: Error) => {
      process.stderr.write(`fastify-cluster: ${isKnown(error) ? error.message : error.stack ?? String(error)}\n`)
      process.exit(1)
    })
    return 0
  }
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      watch: { type: 'string' },
      seconds: { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  const [command, ...extra] = positionals
  if (values.help || command === undefined) {
    console.log(USAGE)
    return values.help ? 0 : 2
  }
  const [worker] = command === 'profile' || command === 'heap' ? extra.splice(0, 1) : []
  if (extra.length > 0) throw new CliError(`unexpected argument ${JSON.stringify(extra[0])}; see fastify-cluster --help`)
  const target = resolveTarget(values)
  switch (command) {
    case 'profile':
    case 'heap': return await diagnose(target, command, worker, values.seconds, values.output)
    case 'status': return await status(target, values.watch)
    case 'stats': {
      const stats = await call<ClusterStats>(target, 'GET', '/cluster/stats')
      console.log(values.json ? JSON.stringify(stats) : JSON.stringify(stats, null, 2))
      return 0
    }
    case 'health': {
      const health = await call<ClusterHealth>(target, 'GET', '/cluster/health', [200, 503])
      console.log(`${health.status}: ${health.alive}/${health.expected} workers alive`)
      for (const warning of health.warnings) console.log(`warning: ${warning}`)
      return health.healthy ? 0 : 1
    }
    case 'restart': return await restart(target)
    case 'metrics':
      process.stdout.write(await call<string>(target, 'GET', '/metrics'))
      return 0
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}; commands: status, stats, health, restart, metrics, profile, heap`)
  }
}

/** The monitoring server's own settings, read the same way; the flags stand where the options would. */
function resolveTarget (flags: { host?: string, port?: string, token?: string }, env = process.env): Target {
  const { host, port: portSetting, token } = MONITORING_SETTINGS
  const portNumber = read({ ...portSetting, option: '--port', kind: port(1) }, flags.port, env)
  let address = read({ ...host, option: '--host' }, flags.host, env)
  // A server bound to every interface is reached through loopback.
  if (address === '0.0.0.0') address = '127.0.0.1'
  if (address === '::') address = '::1'
  return { base: `http://${formatAddress(address, portNumber)}`, token: read({ ...token, option: '--token' }, flags.token, env) }
}

/** A request to the monitoring server whose status is one of `accept`; one line (CliError) otherwise. */
async function open (target: Target, method: string, path: string, accept = [200], signal?: AbortSignal): Promise<Response> {
  let response: Response
  try {
    response = await fetch(target.base + path, {
      method,
      signal,
      headers: target.token === undefined ? {} : { authorization: `Bearer ${target.token}` }
    })
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message
    throw new CliError(`nothing answers at ${target.base} (${cause}): is the cluster running, with monitoring on? see --host/--port`)
  }
  if (response.status === 401 || response.status === 403) {
    throw new CliError(`${target.base} refused the token (${response.status}): set --token or CLUSTER_MONITORING_TOKEN`)
  }
  if (!accept.includes(response.status)) {
    const text = await response.text()
    let message = text
    try { message = JSON.parse(text).message ?? text } catch {}
    throw new CliError(`${method} ${path} answered ${response.status}: ${message}`)
  }
  return response
}

/** A worker's CPU profile or heap snapshot into a file, with the bytes received shown on a terminal. */
async function diagnose (target: Target, what: 'profile' | 'heap', worker: string | undefined, seconds: string | undefined, output: string | undefined): Promise<number> {
  if (worker === undefined || !/^\d+$/.test(worker)) throw new CliError(`${what}: got ${JSON.stringify(worker)}, expected a worker id (0, 1, ...; see fastify-cluster status)`)
  if (what === 'heap' && seconds !== undefined) throw new CliError('heap: --seconds is for profile')
  if (seconds !== undefined && !/^\d+$/.test(seconds)) throw new CliError(`--seconds: got ${JSON.stringify(seconds)}, expected a whole number of seconds`)
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const file = output ?? `worker-${worker}-${stamp}.${what === 'profile' ? 'cpuprofile' : 'heapsnapshot'}`
  const path = what === 'profile' ? `/cluster/workers/${worker}/profile${seconds === undefined ? '' : `?seconds=${seconds}`}` : `/cluster/workers/${worker}/heap-snapshot`
  const tty = process.stderr.isTTY
  if (tty) process.stderr.write(what === 'profile' ? `profiling worker ${worker} for ${seconds ?? 10} s…` : `taking a heap snapshot of worker ${worker}…`)
  const response = await open(target, 'POST', path)
  const { createWriteStream } = await import('node:fs')
  const out = createWriteStream(file)
  let bytes = 0
  for await (const chunk of response.body ?? []) {
    bytes += (chunk as Uint8Array).length
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
    if (tty) process.stderr.write(`\r${what === 'profile' ? 'profile' : 'heap snapshot'} of worker ${worker}: ${(bytes / MB).toFixed(1)} MB received`)
  }
  await new Promise((resolve, reject) => out.end((error?: Error | null) => error == null ? resolve(undefined) : reject(error)))
  if (tty) process.stderr.write('\n')
  console.log(`${file}: ${what === 'profile' ? 'CPU profile' : 'heap snapshot'} of worker ${worker}, ${(bytes / MB).toFixed(1)} MB`)
  return 0
}

async function call<T> (target: Target, method: string, path: string, accept = [200]): Promise<T> {
  const response = await open(target, method, path, accept)
  const text = await response.text()
  return ((response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text) as T
}

async function status (target: Target, watch: string | undefined): Promise<number> {
  const seconds = watch === undefined ? 0 : Number(watch)
  if (!(seconds >= 0)) throw new CliError(`--watch: got ${JSON.stringify(watch)}, expected seconds`)
  if (seconds === 0) {
    console.log(formatStatus(await call<ClusterStats>(target, 'GET', '/cluster/stats')))
    return 0
  }
  // Live from /cluster/events: the table at most every S seconds, and at once when an event comes.
  const response = await open(target, 'GET', '/cluster/events')
  const events: string[] = []
  let stats: ClusterStats | undefined
  let shown = 0
  try {
    for await (const { event, data } of serverSentEvents(response)) {
      if (event === 'stats') stats = JSON.parse(data)
      else events.splice(0, Math.max(0, events.length - 9), `${new Date().toISOString()}  ${event} ${data}`)
      if (stats === undefined || (event === 'stats' && Date.now() - shown < seconds * 1000)) continue
      shown = Date.now()
      process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}  ${target.base}\n${formatStatus(stats)}\n\n${events.join('\n')}\n`)
    }
  } catch {} // a connection cut (the server closing it) ends the stream like its end does
  throw new CliError(`the event stream from ${target.base} ended: did the cluster stop?`)
}

/** The events of a `text/event-stream` response, as they arrive. */
async function * serverSentEvents (response: Response): AsyncGenerator<{ event: string, data: string }> {
  let buffer = ''
  for await (const chunk of response.body?.pipeThrough(new TextDecoderStream()) ?? []) {
    buffer += chunk
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const frame = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: (.*)$/m.exec(frame)?.[1]
      const data = /^data: (.*)$/m.exec(frame)?.[1]
      if (event !== undefined && data !== undefined) yield { event, data }
    }
  }
}

async function restart (target: Target): Promise<number> {
  // A canary rollout's phases as they happen: the stream is open before the reload starts, so none is missed.
  const stream = new AbortController()
  const events = await open(target, 'GET', '/cluster/events', [200], stream.signal)
  const printing = printPhases(events)
  console.log('rolling reload: started; waiting for every worker to be replaced...')
  let result: ReloadResult
  try {
    result = await call<ReloadResult>(target, 'POST', '/cluster/restart?wait=true', [200, 500])
  } finally {
    stream.abort()
    await printing
  }
  if (!result.ok) {
    console.log(`rolling reload FAILED after ${result.durationMs} ms: ${result.reason}`)
    return 1
  }
  console.log(`rolling reload done in ${result.durationMs} ms: ${result.workers.map((worker) => `worker ${worker.id} pid ${worker.pid}`).join(', ')}`)
  return 0
}

/** Prints each `reload:phase` event of the stream, one line each, until the stream is cut. */
async function printPhases (events: Response): Promise<void> {
  try {
    for await (const { event, data } of serverSentEvents(events)) {
      if (event !== 'reload:phase') continue
      const { phase, message } = JSON.parse(data) as RolloutProgress
      console.log(`${phase}: ${message}`)
    }
  } catch {} // cut by the abort once the reload's result is in
}

const MB = 2 ** 20

/** A table like `pm2 list`. */
function formatStatus (stats: ClusterStats): string {
  const header = ['id', 'pid', 'state', 'uptime', 'restarts', 'memory', 'cpu', 'loop p99']
  const rows = stats.workers.map((worker: WorkerStats) => [
    worker.id,
    worker.pid === null ? '-' : String(worker.pid),
    worker.state,
    formatUptime(worker.uptime),
    String(worker.restarts),
    worker.memory === null ? '-' : `${(worker.memory.rss / MB).toFixed(1)} MB`,
    worker.cpu === null ? '-' : `${worker.cpu.toFixed(1)}%`,
    worker.eventLoop === null ? '-' : `${worker.eventLoop.p99.toFixed(1)} ms`
  ])
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)))
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()
  return [
    `cluster: ${stats.healthy ? 'healthy' : 'DEGRADED'}, ${stats.alive}/${stats.expected} workers alive; primary pid ${stats.primary.pid}, ` +
      `uptime ${formatUptime(stats.primary.uptime)}, rss ${(stats.primary.memory.rss / MB).toFixed(1)} MB`,
    line(header),
    ...rows.map(line),
    ...stats.warnings.map((warning) => `warning: ${warning}`),
    ...stats.workers.flatMap((worker) => worker.incidents === null ? [] : [formatIncident(worker.incidents.last)])
  ].join('\n')
}

/** The latest worker a slot lost: when, why, and the top frames. */
function formatIncident ({ at, id, pid, kind, reason, frames }: Incident): string {
  return [`last incident of worker ${id}: ${at} pid ${pid} ${kind}: ${reason}`, ...frames.slice(0, 5).map((frame) => `    at ${frameText(frame)}`)].join('\n')
}

function formatUptime (seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`
  return `${Math.floor(seconds / 86400)}d`
}

/** An error the user can act on from its message alone (the command line, the kit's own), rather than a bug. */
function isKnown (error: Error): boolean {
  const { code } = error as { code?: string }
  return error instanceof CliError || code?.startsWith('ERR_PARSE_ARGS') === true || code?.startsWith('FCK_') === true
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (error: Error) => {
  console.error(`fastify-cluster: ${isKnown(error) ? error.message : error.stack ?? String(error)}`)
  process.exitCode = 2
})
