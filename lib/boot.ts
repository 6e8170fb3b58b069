import type { SendHandle } from 'node:child_process'
import cluster from 'node:cluster'
import type { FastifyInstance, FastifyListenOptions } from 'fastify'
import { FIRST_FD, servedSockets } from './common/activation.js'
import { listenOrExplain } from './common/address.js'
import { warnLine } from './common/config.js'
import { FCK_FACTORY_LISTENED, FCK_INVALID_FACTORY, FCK_INVALID_OPTION } from './common/errors.js'
import { detectIdentity, workerEnv, type Identity } from './common/identity.js'
import { resolveOptions, type ClusterPluginOptions } from './worker/options.js'
import { kChannel, type WorkerChannel } from './worker/channel.js'
import { clusterPlugin } from './worker/plugin.js'
import { createLogger } from './primary/log.js'
import { portSource, resolveBootOptions, type BootClusterOptions, type ResolvedBootOptions } from './primary/options.js'
import { Supervisor } from './primary/supervision/supervisor.js'
import type { ClusterHandle } from './primary/types.js'
import { sendToPrimary } from './common/protocol.js'

export type AppFactory = () => FastifyInstance | Promise<FastifyInstance>

/**
 * One entry for every role. In the primary (clustering enabled, no PM2) it forks and supervises
 * workers and resolves to a ClusterHandle once all listen. In a worker, in single-process mode
 * and under PM2 it builds the app, registers clusterPlugin if the factory did not, listens on
 * `port`/`host`, and resolves to the FastifyInstance.
 */
export async function bootCluster (factory: AppFactory, options: BootClusterOptions = {}): Promise<ClusterHandle | FastifyInstance> {
  try {
    if (typeof factory !== 'function') {
      throw new FCK_INVALID_OPTION('factory', String(factory), 'a function returning a Fastify instance')
    }
    const identity = detectIdentity(process.env)
    const mayFork = cluster.isPrimary && identity.manager === 'none'
    const resolved = resolveBootOptions(options, process.env, mayFork)
    if (mayFork && resolved.enabled) return await runPrimary(resolved)
    return await runWorker(factory, resolved, identity)
  } catch (error) {
    // A refused setting or a start that failed ends the process with one line, not a stack:
    // the line names what was wrong, and the primary already logged the details.
    const { code, message } = error as { code?: unknown, message?: string }
    if (typeof code !== 'string' || !code.startsWith('FCK_')) throw error
    process.stderr.write(`fastify-cluster-kit: ${message ?? String(error)}\n`)
    process.exit(1)
  }
}

async function runPrimary (options: ResolvedBootOptions): Promise<ClusterHandle> {
  // The plugin options the workers will get, checked here as a worker will read them, so a typo
  // is one line before any fork rather than a failed start of every worker.
  const plugin = resolveOptions(pluginOptions(options), workerEnv(process.env, 0, options))
  const log = createLogger(options.logLevel, { role: 'primary' })
  for (const line of [...options.warnings, ...plugin.warnings]) log.warn(line)
  await options.onPrimary?.()
  const supervisor = new Supervisor(options, log)
  await supervisor.start()
  return supervisor
}

function pluginOptions (options: ResolvedBootOptions): ClusterPluginOptions {
  return { gracefulTimeout: options.gracefulTimeout, ...options.plugin }
}

async function runWorker (factory: AppFactory, options: ResolvedBootOptions, identity: Identity): Promise<FastifyInstance> {
  options.warnings.forEach(warnLine)
  try {
    const app: unknown = await factory()
    if (!isFastify(app)) throw new FCK_INVALID_FACTORY(describe(app))
    if (app.server.listening) throw new FCK_FACTORY_LISTENED()
    if (!app.hasDecorator('cluster')) await app.register(clusterPlugin, pluginOptions(options))
    await listen(app, options, identity)
    return app
  } catch (error) {
    if (identity.manager !== 'bootCluster') throw error
    // Tell the primary why, so the start failure it reports names the cause; then leave. The
    // kit's own errors say all in their message, which the primary prints; others keep their stack here.
    const { code, message } = error as { code?: string, message?: string }
    if (code?.startsWith('FCK_') !== true) console.error(error)
    await sendToPrimary({ type: 'fck:failed', workerId: identity.workerId, pid: process.pid, error: { code, message: message ?? String(error) } })
    process.exit(1)
  }
}

/** How long a worker waits for the primary to answer its listener request (it answers at once). */
const LISTENER_WAIT = 10_000

async function listen (app: FastifyInstance, options: ResolvedBootOptions, identity: Identity): Promise<void> {
  await app.ready()
  const channel = (app as unknown as Record<symbol, WorkerChannel | undefined>)[kChannel]
  if (channel === undefined) throw new Error('clusterPlugin is not registered on this instance')
  // The plugin announces a worker to the primary only when this listen opens it (see plugin.ts).
  channel.bootListens = true
  try {
    await listenOnce(app, options, identity, channel)
  } catch (error) {
    // The factory started listen() without waiting for it (Fastify or Node says so, by timing).
    const { code } = error as { code?: string }
    if (code === 'FST_ERR_INSTANCE_ALREADY_LISTENING' || code === 'ERR_SERVER_ALREADY_LISTEN') throw new FCK_FACTORY_LISTENED()
    throw error
  }
}

async function listenOnce (app: FastifyInstance, { port, host, balancing }: ResolvedBootOptions, identity: Identity, channel: WorkerChannel): Promise<void> {
  // A socket systemd passed (socket activation): fd 3, held by systemd across restarts. In a
  // worker the listen goes through the primary, which holds the same socket (plugin.ts serves any more).
  if (servedSockets(process.env, identity.manager === 'bootCluster') > 0) {
    await app.listen({ fd: FIRST_FD } as FastifyListenOptions)
    return
  }
  const source = portSource()
  if (balancing !== 'reuseport' || identity.manager !== 'bootCluster') {
    return await listenOrExplain(async () => await app.listen({ port, host }), host, port, source)
  }
  // Kernel balancing: this worker's own SO_REUSEPORT socket, or the one its slot's last worker
  // opened, which the primary kept (see lib/primary/supervision/balancing.ts).
  const held = await channel.heldListener(identity.workerId, LISTENER_WAIT)
  if (held !== undefined) {
    // Node takes a listening handle in place of an address; Fastify passes its options through.
    await app.listen({ handle: held, host } as unknown as FastifyListenOptions)
    return
  }
  await listenOrExplain(async () => await app.listen({ port, host, reusePort: true } as FastifyListenOptions), host, port, source)
  await sendToPrimary({ type: 'fck:listener-bound', workerId: identity.workerId, pid: process.pid }, (app.server as unknown as { _handle: SendHandle })._handle)
}

/**
 * Whether what bootCluster resolved to is the primary's ClusterHandle (else it is the app, in a
 * worker, in one process or under PM2): `if (isClusterHandle(result)) result.on('worker:exit', ...)`.
 */
export function isClusterHandle (result: ClusterHandle | FastifyInstance): result is ClusterHandle {
  const candidate = result as Partial<ClusterHandle>
  return typeof candidate.stats === 'function' && typeof candidate.reload === 'function' && typeof candidate.shutdown === 'function'
}

function isFastify (value: unknown): value is FastifyInstance {
  const candidate = value as Partial<FastifyInstance> | null
  return typeof candidate?.listen === 'function' && typeof candidate.register === 'function' &&
    typeof candidate.hasDecorator === 'function' && typeof candidate.inject === 'function'
}

function describe (value: unknown): string {
  if (value === undefined) return 'undefined (does the factory return the app?)'
  if (value === null) return 'null'
  if (typeof value === 'function') return 'a function (the factory returns the app itself, not a function that makes it)'
  if (typeof value === 'object') return `an object with keys [${Object.keys(value).slice(0, 5).join(', ')}]`
  return `${typeof value} ${JSON.stringify(value)}`
}
