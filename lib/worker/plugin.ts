import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Registry } from 'prom-client'
import fp from 'fastify-plugin'
import { Checks, registerHealthRoutes, type ReadinessCheck } from './health.js'
import { describeAddress } from '../common/address.js'
import { detectIdentity, type Manager } from '../common/identity.js'
import { resolveOptions, type ClusterPluginOptions } from './options.js'
import { sendToPrimary } from '../common/protocol.js'
import { tapResponses } from './response-head.js'
import { Sampler } from './sampler.js'
import type { SharedStateBackend } from '../shared-state/options.js'
import { chooseBackend, registerSharedState } from '../shared-state/register.js'
import { Shutdown } from './shutdown.js'
import { Traffic } from './traffic.js'
import { WorkerChannel } from './channel.js'

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

const clusterPluginAsync: FastifyPluginAsync<ClusterPluginOptions> = async (fastify: FastifyInstance, opts) => {
  const options = resolveOptions(opts, process.env)
  const identity = detectIdentity(process.env)
  const headers: Array<[string, string]> = []
  if (options.workerIdHeader !== false) headers.push([options.workerIdHeader.toLowerCase(), identity.workerId])
  if (options.workerPidHeader !== false) headers.push([options.workerPidHeader.toLowerCase(), String(process.pid)])

  const traffic = new Traffic(fastify.server, options.drainIdleGrace)
  const sampler = new Sampler(traffic)
  const checks = new Checks(options.checkTimeout)
  const shutdown = new Shutdown(fastify, traffic, options, identity)
  const channel = new WorkerChannel()
  // Imported here, not at the top: the primary loads this module too (through index.ts) and must
  // not pay for prom-client, which only workers use.
  const metrics = options.metrics === false ? undefined : new (await import('./metrics.js')).WorkerMetrics(options.metrics, identity)

  if (metrics !== undefined) {
    // Each route added from now on (ours included) stamps its requests from its handler.
    fastify.addHook('onRoute', (route) => metrics.watchRoute(route))
    // Routes already there (bootCluster registers the plugin after the factory's routes) are learnt
    // per request, by a hook: "(empty tree)" is find-my-way's rendering of a router without routes.
    if (fastify.printRoutes() !== '(empty tree)') {
      fastify.addHook('onSend', (request, _reply, payload, done) => {
        metrics.stampRoute(request)
        done(null, payload)
      })
    }
  }

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

  // Probes and /metrics: no store of the session or rate-limit plugins is asked for them (see
  // registerSharedState), so a store outage never fails a liveness probe.
  const probes = new Set<string>()
  if (options.healthPrefix !== false) {
    registerHealthRoutes(fastify, {
      prefix: options.healthPrefix,
      identity,
      checks,
      sampler,
      counters: traffic,
      sharedState: backend,
      isDraining: () => traffic.draining
    }).forEach((path) => probes.add(path))
  }
  const reportsToPrimary = identity.manager === 'bootCluster'
  if (metrics !== undefined && options.metrics !== false && options.metrics.endpoint !== false && !reportsToPrimary) {
    probes.add(options.metrics.endpoint)
    fastify.get(options.metrics.endpoint, { logLevel: 'warn', config: { metrics: false, rateLimit: false } }, async (_request, reply) => {
      reply.type(metrics.registry.contentType)
      return await metrics.registry.metrics()
    })
  }

  const lastWarned = new Map<string, number>()
  await registerSharedState(fastify, options.shared, backend, {
    identity,
    checks,
    channel,
    probes,
    onStoreError: (store, error) => {
      metrics?.countStoreError(store)
      // One line per store every 5 s, not one per request, while a store is away.
      if (Date.now() - (lastWarned.get(store) ?? 0) < STORE_WARNING_INTERVAL) return
      lastWarned.set(store, Date.now())
      fastify.log.warn({ err: error, store, backend, onStoreError: options.shared.onStoreError }, `clusterPlugin: ${store} store failed: ${error.message}`)
    }
  })

  const untap = tapResponses(fastify.server, {
    onRequest: (request, response) => {
      metrics?.start(request)
      traffic.onRequest(response)
    },
    headers,
    onHead: metrics === undefined ? undefined : (request, statusCode) => metrics.observe(request, statusCode)
  })

  decorateInjected(fastify, headers)

  sampler.start(options.heartbeatInterval, (sample) => {
    if (reportsToPrimary) sendToPrimary({ type: 'fck:heartbeat', workerId: identity.workerId, pid: process.pid, sample })
  })

  fastify.addHook('onListen', async () => {
    shutdown.install(channel)
    if (reportsToPrimary) {
      metrics?.listen(channel)
      sendToPrimary({ type: 'fck:ready', workerId: identity.workerId, pid: process.pid, address: describeAddress(fastify.server.address()) })
    } else if (identity.manager === 'pm2' && process.send !== undefined) {
      // PM2's `wait_ready` waits for exactly this message.
      process.send('ready')
    }
  })

  fastify.addHook('onClose', async () => {
    untap()
    shutdown.uninstall()
    channel.close()
    sampler.stop()
    traffic.stop()
  })
}

type Injected = { headers: Record<string, unknown> }

/**
 * `fastify.inject()` — how most Fastify apps are tested — never reaches the HTTP server, so the
 * server-level tap (response-head.ts) does not see it: its responses get the worker headers here,
 * by wrapping `inject` itself, which costs real traffic nothing.
 */
function decorateInjected (fastify: FastifyInstance, headers: ReadonlyArray<readonly [string, string]>): void {
  if (headers.length === 0) return
  const inject = fastify.inject.bind(fastify) as (...args: unknown[]) => any
  const tag = <T>(response: T): T => {
    if (response !== undefined && response !== null) for (const [name, value] of headers) (response as unknown as Injected).headers[name] ??= value
    return response
  }
  const tagged = (callback: (error: unknown, response?: unknown) => void) => (error: unknown, response?: unknown) => callback(error, tag(response))
  fastify.inject = function (options?: unknown, callback?: (error: unknown, response?: unknown) => void) {
    if (options === undefined) {
      // The chained form: fastify.inject().get('/').end()
      const chain = inject()
      const end = chain.end.bind(chain)
      chain.end = (done?: (error: unknown, response?: unknown) => void) => done === undefined ? end().then(tag) : end(tagged(done))
      return chain
    }
    return callback === undefined ? inject(options).then(tag) : inject(options, tagged(callback))
  } as FastifyInstance['inject']
}

/** The worker half of the kit; see ClusterPluginOptions. */
export const clusterPlugin = fp(clusterPluginAsync, { fastify: '5.x', name: 'fastify-cluster-kit' })
export default clusterPlugin
