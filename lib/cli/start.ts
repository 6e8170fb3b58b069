// `fastify-cluster start <entry>`: an app clustered with no code of the user's. This process is
// the primary and, forked by node:cluster with the same command line, each worker: each builds
// the app from the entry, with clusterPlugin registered first where the kit builds the instance.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { FastifyInstance, FastifyPluginAsync, FastifyServerOptions } from 'fastify'
import { bootCluster } from '../boot.js'
import { read, type Setting } from '../common/config.js'
import { FCK_ENTRY_FAILED, FCK_INVALID_OPTION } from '../common/errors.js'
import { BOOT_SETTINGS } from '../primary/settings.js'
import { clusterPlugin } from '../worker/plugin.js'

export const START_USAGE = `Usage: fastify-cluster start [flags] <entry>

Runs the app of <entry> clustered: one worker per core with NODE_ENV=production, else at most 2.
<entry> is a module (ESM, CommonJS, or TypeScript where Node strips types: 22.18 and later) whose
default export is one of:
  a Fastify plugin, async function (fastify, opts), as \`fastify generate\` writes app.js; its
    \`options\` export is the Fastify constructor's options with -o, as with fastify start
  a factory, () => app (no argument), returning a Fastify instance that does not listen
  a Fastify instance that does not listen

Flags (as fastify start's):
  -p, --port PORT          port to listen on (else PORT, else 3000)
  -a, --address HOST       address to listen on (else HOST, else 0.0.0.0)
  -l, --log-level LEVEL    the app's and the primary's log level (else LOG_LEVEL, else info)
  -o, --options            use the entry's \`options\` export for the Fastify instance
  -P, --pretty-logs        pretty logs (needs pino-pretty)
  -w, --workers N          number of workers (else CLUSTER_WORKERS)
  --single                 one process, no workers (ENABLE_CLUSTERING=false)

Every other setting comes from the environment (GRACEFUL_SHUTDOWN_TIMEOUT, CLUSTER_MONITORING_PORT, ...).`

interface StartFlags {
  port?: string
  address?: string
  'log-level'?: string
  options?: boolean
  'pretty-logs'?: boolean
  workers?: string
  single?: boolean
  help?: boolean
}

export const START_OPTIONS = {
  port: { type: 'string', short: 'p' },
  address: { type: 'string', short: 'a' },
  'log-level': { type: 'string', short: 'l' },
  options: { type: 'boolean', short: 'o' },
  'pretty-logs': { type: 'boolean', short: 'P' },
  workers: { type: 'string', short: 'w' },
  single: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const

/** Runs the start command; resolves once the cluster (or the one process) serves. */
export async function start (argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: START_OPTIONS }) as { positionals: string[], values: StartFlags }
  if (values.help === true) {
    console.log(START_USAGE)
    return
  }
  const [entry, ...extra] = positionals
  if (entry === undefined) throw new FCK_INVALID_OPTION('<entry>', 'nothing', 'the path of the app\'s module, e.g. fastify-cluster start app.js')
  if (extra.length > 0) throw new FCK_INVALID_OPTION('start', JSON.stringify(extra[0]), 'one entry; flags go before it or after it, as -p 3000')
  const path = resolve(entry)
  if (!existsSync(path)) throw new FCK_ENTRY_FAILED(entry, 'no such file')
  // The log level is a variable the workers inherit (and the primary reads); the rest are bootCluster's options.
  if (values['log-level'] !== undefined) process.env.LOG_LEVEL = read({ ...BOOT_SETTINGS.logLevel, option: '--log-level' }, values['log-level'], {})
  const flag = <T>(name: keyof typeof BOOT_SETTINGS, given: string | undefined, as: string): T | undefined =>
    given === undefined ? undefined : read({ ...BOOT_SETTINGS[name], option: as } as Setting<T>, given, {})
  await bootCluster(async () => await buildApp(entry, path, values), {
    port: flag<number>('port', values.port, '--port'),
    host: flag<string>('host', values.address, '--address'),
    workers: flag<number>('workers', values.workers, '--workers'),
    ...(values.single === true ? { enabled: false } : {})
  })
}

/** The app of the entry, as its default export says; one FCK_ENTRY_FAILED line for anything else. */
async function buildApp (entry: string, path: string, flags: StartFlags): Promise<FastifyInstance> {
  let module: Record<string, unknown>
  try {
    module = await import(pathToFileURL(path).href) as Record<string, unknown>
  } catch (error) {
    throw new FCK_ENTRY_FAILED(entry, `it threw while loading: ${where(error)}`)
  }
  // CommonJS: module.exports is the default export.
  const exported = module.default ?? module
  if (isFastify(exported)) return exported
  if (typeof exported !== 'function') throw new FCK_ENTRY_FAILED(entry, `it exports nothing usable: found ${found(module)}; expected a default export that is a Fastify plugin (fastify, opts), a factory () => app or a Fastify instance`)
  if (exported.length === 0) {
    const app: unknown = await (exported as () => unknown)()
    if (!isFastify(app)) throw new FCK_ENTRY_FAILED(entry, `its default export is a factory (no argument), but it returned ${found(app)}, not a Fastify instance`)
    return app
  }
  const { default: Fastify } = await import('fastify')
  const options = (flags.options === true ? module.options ?? {} : {}) as FastifyServerOptions
  const level = process.env.LOG_LEVEL ?? 'info'
  const logger = { level, ...(flags['pretty-logs'] === true ? { transport: { target: 'pino-pretty' } } : {}) }
  const app = Fastify({ logger, ...options })
  await app.register(clusterPlugin)
  try {
    await app.register(exported as FastifyPluginAsync, flags.options === true ? { ...options } : {})
  } catch (error) {
    throw new FCK_ENTRY_FAILED(entry, `its plugin failed to register: ${where(error)}`)
  }
  return app
}

function isFastify (value: unknown): value is FastifyInstance {
  const candidate = value as Partial<FastifyInstance> | null
  return typeof candidate?.listen === 'function' && typeof candidate.register === 'function' && typeof candidate.inject === 'function'
}

/** What a module or value holds, in a few words. */
function found (value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value !== 'object') return `${typeof value} ${JSON.stringify(value)}`
  const keys = Object.keys(value)
  return keys.length === 0 ? 'no exports' : `exports [${keys.slice(0, 6).join(', ')}]`
}

/** An error's message and the first frame of the user's code it came from. */
function where (error: unknown): string {
  const { message, stack } = error as { message?: string, stack?: string }
  const frame = /\(?((?:file:\/\/)?\/[^()\s]+:\d+:\d+)\)?/.exec(stack?.split('\n').find((line) => line.trimStart().startsWith('at ') && !line.includes('node:')) ?? '')
  return `${message ?? String(error)}${frame === null ? '' : ` (at ${frame[1] as string})`}`
}
