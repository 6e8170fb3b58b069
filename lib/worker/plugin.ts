import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Registry } from 'prom-client'
import fp from 'fastify-plugin'
import { Checks, registerHealthRoutes, type HealthDeps, type ReadinessCheck } from './health.js'
import type { WorkerMetrics } from './metrics.js'
import { FIRST_FD, servedSockets } from '../common/activation.js'
import { describeAddress } from '../common/address.js'
import { warnLine } from '../common/config.js'
import { detectIdentity, type Manager } from '../common/identity.js'
import { resolveOptions, type ClusterPluginOptions, type ResolvedOptions } from './options.js'
import { FCK_REGISTERED_TWICE } from '../common/errors.js'
import { PROMETHEUS_TEXT, REPORT_DIR, sendToPrimary } from '../common/protocol.js'
import { decorateInjected, kRoute, tapResponses, type Tap, type TappedResponse } from './response-head.js'
import { Sampler } from './sampler.js'
import type { SharedStateBackend } from '../shared-state/options.js'
import { chooseBackend, registerSharedState } from '../shared-state/register.js'
import { Shutdown } from './shutdown.js'
import { runnerWarning } from './runner.js'
import { Traffic } from './traffic.js'
import { AdoptedListeners } from './adopted.js'
import { answerDiagnoses } from './diagnose.js'
import { reportFatal, reportFatalErrors } from './fatal.js'
import { kChannel, WorkerChannel } from './channel.js'

/** `fastify.cluster`: what a route or plugin may ask about the worker it runs in. */
export interface ClusterDecorator {
  /** Slot id under bootCluster (`0..N-1`), `NODE_APP_INSTANCE` under PM2, `single` standalone. */
  readonly workerId: string
  readonly pid: number
  /** Who manages this process. */
  readonly manager: Manager
  readonly sharedState: SharedStateBackend
  /** True from the start of a graceful shutdown on. */
  isDraining: () => boolean
  /**
   * Adds a readiness check to `/health/ready`: throwing, rejecting, resolving `false` or taking
   * longer than `timeout` ms (default: the plugin's `checkTimeout`) makes readiness answer 503.
   */
  addCheck: (name: string, fn: ReadinessCheck, options?: { timeout?: number }) => void
  /** The worker's prom-client registry (undefined with `metrics: false`): add your own metrics here. */
  readonly metrics: Registry | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    cluster: ClusterDecorator
  }
  interface FastifyContextConfig {
    /** `false` keeps this route's requests out of `http_request_duration_seconds`. */
    metrics?: boolean
  }
}

const STORE_WARNING_INTERVAL = 5000
/** The primary waits up to its scrapeTimeout for each worker; this leaves it room to answer. */
const CLUSTER_SCRAPE_WAIT = 10_000

const clusterPluginAsync: FastifyPluginAsync<ClusterPluginOptions> = async (fastify: FastifyInstance, opts) => {
  if (fastify.hasDecorator('cluster')) throw new FCK_REGISTERED_TWICE()
  const options = resolveOptions(opts, process.env)
  const identity = detectIdentity(process.env)
  // Under bootCluster the primary said these once, for every worker.
  if (identity.manager !== 'bootCluster') options.warnings.forEach(warnLine)
  const headers: Array<[string, string]> = []
  if (options.workerIdHeader !== false) headers.push([options.workerIdHeader.toLowerCase(), identity.workerId])
  if (options.workerPidHeader !== false) headers.push([options.workerPidHeader.toLowerCase(), String(process.pid)])

  // Every line the app logs from now on (request loggers are children made per request) names
  // its worker, so the interleaved output of a cluster, or of PM2, can be told apart.
  const logger = fastify.log as FastifyBaseLogger & { setBindings?: (bindings: Record<string, string>) => void }
  if (identity.manager !== 'none') logger.setBindings?.({ workerId: identity.workerId })

  const traffic = new Traffic(fastify.server, options.drainIdleGrace)
  const checks = new Checks(options.checkTimeout)
  const adopted = new AdoptedListeners(fastify.server)
  const shutdown = new Shutdown(fastify, traffic, options, identity, adopted)
  const channel = new WorkerChannel()
  Object.defineProperty(fastify, kChannel, { value: channel })
  // Imported here, not at the top: the primary loads this module too (through index.ts) and must
  // not pay for prom-client, which only workers use.
  const metrics = options.metrics === false ? undefined : new (await import('./metrics.js')).WorkerMetrics(options.metrics, identity)

  const tap = tapResponses(fastify.server, {
    onRequest: (_request, response) => traffic.onRequest(response),
    headers,
    onHead: metrics === undefined ? undefined : (response, statusCode) => metrics.observe(response, statusCode)
  })
  watchRoutes(fastify, metrics, tap, headers)
  const sampler = new Sampler(traffic, metrics === undefined ? undefined : () => metrics.window())

  const backend = chooseBackend(options.shared, identity)
  fastify.decorate('cluster', {
    workerId: identity.workerId,
    pid: process.pid,
    manager: identity.manager,
    sharedState: backend,
    isDraining: () => traffic.draining,
    addCheck: (name: string, fn: ReadinessCheck, checkOptions?: { timeout?: number }) => checks.add(name, fn, checkOptions),
    metrics: metrics?.registry
  } satisfies ClusterDecorator)

  const reportsToPrimary = identity.manager === 'bootCluster'
  const probes = registerProbes(fastify, options, metrics, reportsToPrimary ? channel : undefined, {
    identity,
    checks,
    sampler,
    counters: traffic,
    sharedState: backend,
    isDraining: () => traffic.draining
  })

  await registerSharedState(fastify, options.shared, backend, {
    identity,
    checks,
    channel,
    probes,
    onStoreError: storeErrorReporter(fastify, backend, options.shared.onStoreError, metrics)
  })

  decorateInjected(fastify, headers)

  const unreport = reportsToPrimary ? reportFatal(identity.workerId) : undefined
  if (reportsToPrimary) reportFatalErrors(process.env[REPORT_DIR])

  sampler.start(options.heartbeatInterval, (sample) => {
    if (reportsToPrimary) sendToPrimary({ type: 'fck:heartbeat', workerId: identity.workerId, pid: process.pid, sample })
  })

  fastify.addHook('onListen', async () => {
    shutdown.install(channel)
    const warning = options.handleSignals ? runnerWarning(options.gracefulTimeout) : undefined
    if (warning !== undefined) warnLine(warning)
    // Sockets systemd passed past the first, which the app's own listen took (see boot.ts).
    for (let fd = FIRST_FD + 1; fd < FIRST_FD + servedSockets(process.env, reportsToPrimary); fd++) adopted.adopt(`fd ${fd}`, { fd })
    if (reportsToPrimary && channel.bootListens) {
      metrics?.listen(channel)
      channel.on('fck:adopt', ({ slot }, handle) => adopted.adopt(slot, handle))
      channel.on('fck:release', ({ slot }) => adopted.release(slot))
      channel.on('fck:spread', ({ every }) => traffic.spread(every))
      answerDiagnoses(channel)
      sendToPrimary({ type: 'fck:ready', workerId: identity.workerId, pid: process.pid, address: describeAddress(fastify.server.address()) })
    } else if (identity.manager === 'pm2' && process.send !== undefined) {
      // PM2's `wait_ready` waits for exactly this message.
      process.send('ready')
    }
  })

  fastify.addHook('onClose', async () => {
    if (reportsToPrimary) await metrics?.sendFinal()
    tap.untap()
    unreport?.()
    adopted.closeAll()
    shutdown.uninstall()
    channel.close()
    sampler.stop()
    traffic.stop()
  })
}

/**
 * Metrics of every route: the ones added from now on (ours included) stamp their responses from
 * their handler (no per-request hook, no `request.routeOptions` getter).
 */
function watchRoutes (fastify: FastifyInstance, metrics: WorkerMetrics | undefined, tap: Tap, headers: ReadonlyArray<readonly [string, string]>): void {
  if (metrics === undefined) return
  fastify.addHook('onRoute', (route) => {
    const series = metrics.watchRoute(route)
    const handler = route.handler
    route.handler = function (request, reply) {
      (reply.raw as TappedResponse)[kRoute] = series
      return handler.call(this, request, reply)
    }
  })
  // Routes already there (bootCluster registers the plugin after the factory's routes, or the app
  // did not await register()) are learnt per request, by a hook: "(empty tree)" is find-my-way's
  // rendering of a router without routes. It also gives the worker headers to an inject() that
  // began before the plugin loaded, which decorateInjected cannot reach.
  if (fastify.printRoutes() !== '(empty tree)') {
    fastify.addHook('onSend', (request, reply, payload, done) => {
      metrics.stampRoute(request, reply)
      if (!tap.sees(reply.raw)) for (const [name, value] of headers) reply.header(name, value)
      done(null, payload)
    })
  }
}

/**
 * The health routes and `metrics.endpoint` (the cluster's metrics from the primary when `channel`
 * leads to one, else this process's); returns their paths, which
 * the session plugin's hooks skip (see registerSharedState): a store outage never fails a probe.
 */
function registerProbes (
  fastify: FastifyInstance, options: ResolvedOptions, metrics: WorkerMetrics | undefined, channel: WorkerChannel | undefined, health: Omit<HealthDeps, 'prefix'>
): Set<string> {
  const probes = new Set<string>()
  if (options.healthPrefix !== false) registerHealthRoutes(fastify, { ...health, prefix: options.healthPrefix }).forEach((path) => probes.add(path))
  if (metrics !== undefined && options.metrics !== false && options.metrics.endpoint !== false) {
    probes.add(options.metrics.endpoint)
    fastify.get(options.metrics.endpoint, { logLevel: 'warn', config: { metrics: false, rateLimit: false } }, async (_request, reply) => {
      if (channel === undefined) return await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
      const text = await channel.scrape(CLUSTER_SCRAPE_WAIT).catch(() => undefined)
      if (text === undefined) return await reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'the primary did not answer with the cluster\'s metrics' })
      return await reply.type(PROMETHEUS_TEXT).send(text)
    })
  }
  return probes
}

/** Counts every store failure, and logs one line per store every 5 s, not one per request, while a store is away. */
function storeErrorReporter (
  fastify: FastifyInstance, backend: SharedStateBackend, onStoreError: string, metrics: WorkerMetrics | undefined
): (store: string, error: Error) => void {
  const lastWarned = new Map<string, number>()
  return (store, error) => {
    metrics?.countStoreError(store)
    if (Date.now() - (lastWarned.get(store) ?? 0) < STORE_WARNING_INTERVAL) return
    lastWarned.set(store, Date.now())
    fastify.log.warn({ err: error, store, backend, onStoreError }, `clusterPlugin: ${store} store failed: ${error.message}`)
  }
}

/** The worker half of the kit; see ClusterPluginOptions. */
export const clusterPlugin = fp(clusterPluginAsync, { fastify: '5.x', name: 'fastify-cluster-kit' })
export default clusterPlugin
