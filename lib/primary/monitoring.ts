import { createHash, timingSafeEqual } from 'node:crypto'
import type { Worker } from 'node:cluster'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { describeAddress, listenOrExplain } from '../common/address.js'
import type { MetricJSON } from '../common/protocol.js'
import { aggregate, type Series } from './aggregate.js'
import type { PrimaryLogger } from './log.js'
import type { ResolvedMonitoringOptions } from './options.js'
import type { StoreSize } from '../shared-state/primary-store.js'
import { healthSchema, reloadAcceptedSchema, reloadResultSchema, statsSchema } from './schemas.js'
import type { ClusterHandle, ClusterStats, ReloadResult } from './types.js'

/** What the monitoring server needs of the supervisor. */
export interface Monitored extends ClusterHandle {
  /** Starts a rolling reload; throws at once (not later) when one runs or the cluster stops. */
  beginReload: () => Promise<ReloadResult>
  /** The workers that serve now, by slot id. */
  servingWorkers: () => Array<{ id: string, worker: Worker }>
  /** One worker's metrics; rejects when it does not answer within `timeout` ms. */
  workerMetrics: (worker: Worker, timeout: number) => Promise<MetricJSON[]>
  /** What the primary's shared store holds and may hold. */
  storeSize: () => StoreSize
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8'
/** Nothing posted here needs a body; anything bigger than this is refused with 413. */
const BODY_LIMIT = 1024

/**
 * The primary's monitoring server: a small Fastify instance of its own. Fastify is imported here,
 * when monitoring is on, so a primary without it does not load Fastify at all.
 */
export async function startMonitoring (cluster: Monitored, options: ResolvedMonitoringOptions, log: PrimaryLogger): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, return503OnClosing: false })
  const scrapes = new Scrapes(cluster, options.scrapeTimeout)

  app.get('/cluster/health', { schema: { response: { 200: healthSchema, 503: healthSchema } } }, async (_request, reply) => {
    const health = cluster.health()
    return await reply.code(health.healthy ? 200 : 503).send(health)
  })

  app.get('/cluster/stats', { schema: { response: { 200: statsSchema } } }, async () => cluster.stats())

  app.get('/metrics', async (_request, reply) => await reply.type(PROMETHEUS_TEXT).send(await scrapes.scrape()))

  app.post<{ Querystring: { wait?: boolean } }>('/cluster/restart', {
    onRequest: bearer(options.token),
    schema: {
      querystring: { type: 'object', properties: { wait: { type: 'boolean', default: false } }, additionalProperties: false },
      response: { 200: reloadResultSchema, 202: reloadAcceptedSchema, 500: reloadResultSchema }
    }
  }, async (request, reply) => {
    const running = cluster.beginReload()
    log.info({ wait: request.query.wait }, 'rolling reload requested over the monitoring API')
    if (request.query.wait) {
      const result = await running
      return await reply.code(result.ok ? 200 : 500).send(result)
    }
    running.catch(() => {}) // its outcome is logged and emitted by the supervisor
    return await reply.code(202).send({ status: 'reloading', workers: cluster.stats().expected })
  })

  try {
    await listenOrExplain(async () => await app.listen({ port: options.port, host: options.host }), options.host, options.port,
      'monitoring.port / CLUSTER_MONITORING_PORT (false disables the monitoring server)')
  } catch (error) {
    await app.close()
    throw error
  }
  log.info({ monitoring: describeAddress(app.server.address()) }, 'monitoring server listening')
  return app
}

/** An onRequest hook: 401 without a bearer token, 403 with the wrong one; open when none is set. */
function bearer (token: string | undefined): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const expected = token === undefined ? undefined : digest(token)
  return async (request, reply) => {
    if (expected === undefined) return
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')
    if (match === null) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ statusCode: 401, error: 'Unauthorized', message: 'Authorization: Bearer <CLUSTER_MONITORING_TOKEN> required' })
    } else if (!timingSafeEqual(digest(match[1] as string), expected)) {
      await reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'wrong monitoring token' })
    }
  }
}

/** Hashing first makes the comparison constant-time whatever the lengths. */
function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Collects every serving worker's metrics for one scrape and renders them with the cluster's own series. */
class Scrapes {
  readonly #failures = new Map<string, number>()
  readonly #reloads = { ok: 0, failed: 0 }

  constructor (private readonly cluster: Monitored, private readonly timeout: number) {
    cluster.on('reload:done', () => { this.#reloads.ok++ })
    cluster.on('reload:failed', () => { this.#reloads.failed++ })
  }

  async scrape (): Promise<string> {
    const workers = this.cluster.servingWorkers()
    const answers = await Promise.all(workers.map(async ({ id, worker }) =>
      ({ id, metrics: await this.cluster.workerMetrics(worker, this.timeout).catch(() => undefined) })))
    const answered: Array<{ id: string, metrics: MetricJSON[] }> = []
    for (const { id, metrics } of answers) {
      if (metrics === undefined) this.#failures.set(id, (this.#failures.get(id) ?? 0) + 1)
      else answered.push({ id, metrics })
    }
    return aggregate(answered, this.#clusterSeries(this.cluster.stats()))
  }

  #clusterSeries (stats: ClusterStats): Series[] {
    const perWorker = (value: (worker: ClusterStats['workers'][number]) => number | undefined): Series['values'] =>
      stats.workers.flatMap((worker) => {
        const found = value(worker)
        return found === undefined ? [] : [{ labels: { worker: worker.id }, value: found }]
      })
    return [
      { name: 'cluster_workers_alive', help: 'Workers ready and serving', type: 'gauge', values: [{ value: stats.alive }] },
      { name: 'cluster_workers_expected', help: 'Workers the cluster is configured to run', type: 'gauge', values: [{ value: stats.expected }] },
      { name: 'cluster_worker_restarts_total', help: 'Workers started in a slot after its first', type: 'counter', values: perWorker((worker) => worker.restarts) },
      {
        name: 'cluster_worker_resident_memory_bytes',
        help: 'Resident memory of each worker at its last heartbeat',
        type: 'gauge',
        values: perWorker((worker) => worker.memory?.rss)
      },
      { name: 'cluster_worker_recycles_total', help: 'Workers replaced for using more than maxMemory', type: 'counter', values: perWorker((worker) => worker.recycles) },
      {
        name: 'cluster_worker_recycling_stopped',
        help: '1 while memory recycling is stopped for a slot whose workers start above maxMemory',
        type: 'gauge',
        values: perWorker((worker) => worker.recyclingStopped === null ? 0 : 1)
      },
      ...storeSeries(this.cluster.storeSize()),
      {
        name: 'cluster_reloads_total',
        help: 'Rolling reloads finished, by result',
        type: 'counter',
        values: [{ labels: { result: 'ok' }, value: this.#reloads.ok }, { labels: { result: 'failed' }, value: this.#reloads.failed }]
      },
      {
        name: 'cluster_metrics_scrape_failures_total',
        help: 'Scrapes a worker did not answer within the scrape timeout',
        type: 'counter',
        values: [...this.#failures].map(([worker, value]) => ({ labels: { worker }, value }))
      }
    ]
  }
}

/** The primary store's contents against its limits (the `primary` shared-state backend). */
function storeSeries (size: StoreSize): Series[] {
  return [
    {
      name: 'cluster_primary_store_entries',
      help: 'Entries in the primary store: sessions holding data, sessions holding none, rate-limit counters',
      type: 'gauge',
      values: [
        { labels: { kind: 'session' }, value: size.sessions },
        { labels: { kind: 'empty_session' }, value: size.emptySessions },
        { labels: { kind: 'counter' }, value: size.counters }
      ]
    },
    { name: 'cluster_primary_store_session_bytes', help: 'Bytes of session JSON held in the primary store', type: 'gauge', values: [{ value: size.sessionBytes }] },
    {
      name: 'cluster_primary_store_limit',
      help: 'The primary store\'s limits (primaryStore option): session entries, session bytes, counter entries',
      type: 'gauge',
      values: [
        { labels: { limit: 'sessions' }, value: size.limits.maxSessions },
        { labels: { limit: 'session_bytes' }, value: size.limits.maxSessionBytes },
        { labels: { limit: 'counters' }, value: size.limits.maxCounters }
      ]
    },
    {
      name: 'cluster_primary_store_evictions_total',
      help: 'Entries dropped to stay within the primary store\'s limits, by kind',
      type: 'counter',
      values: Object.entries(size.evictions).map(([kind, value]) => ({ labels: { kind }, value }))
    }
  ]
}
