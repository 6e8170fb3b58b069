import { createHash, timingSafeEqual } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { describeAddress, listenOrExplain } from '../../common/address.js'
import { PROMETHEUS_TEXT } from '../../common/protocol.js'
import type { PrimaryLogger } from '../log.js'
import { EventStream, MAX_CLIENTS } from './event-stream.js'
import { History } from './history.js'
import { isLoopback, type ResolvedMonitoringOptions } from '../options.js'
import type { Series } from './aggregate.js'
import { MAX_PROFILE_SECONDS } from '../supervision/diagnostics.js'
import { STATUS_PAGE } from './status-page.js'
import { healthSchema, reloadAcceptedSchema, reloadResultSchema, statsSchema } from './schemas.js'
import type { ClusterHandle, ReloadResult } from '../types.js'

/** What the monitoring server needs of the supervisor. */
export interface Monitored extends ClusterHandle {
  /** Starts a rolling reload; throws at once (not later) when one runs or the cluster stops. */
  beginReload: () => Promise<ReloadResult>
  /** The cluster's metrics as Prometheus text (see scrapes.ts), with `extra` series of the caller's. */
  scrape: (extra?: Series[]) => Promise<string>
  /** A worker's CPU profile or heap snapshot (see diagnostics.ts); throws with a status code when it cannot be had. */
  diagnose: (id: string, what: 'profile' | 'heap', seconds?: number) => Readable
}

/** Nothing posted here needs a body; anything bigger than this is refused with 413. */
const BODY_LIMIT = 1024

/**
 * The primary's monitoring server: a small Fastify instance of its own. Fastify is imported here,
 * when monitoring is on, so a primary without it does not load Fastify at all.
 */
export async function startMonitoring (cluster: Monitored, options: ResolvedMonitoringOptions, log: PrimaryLogger): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, return503OnClosing: false })

  const stream = new EventStream(cluster)
  const history = new History(options.sampleInterval)
  // Sampled whether or not anyone watches: a page opened later draws the last minutes at once.
  const sampling = setInterval(() => {
    const stats = cluster.stats()
    const point = history.add(stats)
    stream.broadcast('stats', stats)
    stream.broadcast('history', point)
  }, options.sampleInterval).unref()
  app.addHook('preClose', (done) => {
    clearInterval(sampling)
    stream.close()
    done()
  })
  // Beyond loopback everything but the liveness-style /cluster/health needs the token; the page
  // itself holds no data (it asks for the token and sends it with its own requests).
  const reading = isLoopback(options.host) ? {} : { onRequest: bearer(options.token) }

  app.get('/', async (_request, reply) => await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(STATUS_PAGE))

  app.get('/cluster/health', { schema: { response: { 200: healthSchema, 503: healthSchema } } }, async (_request, reply) => {
    const health = cluster.health()
    return await reply.code(health.healthy ? 200 : 503).send(health)
  })

  app.get('/cluster/stats', { ...reading, schema: { response: { 200: statsSchema } } }, async () => cluster.stats())

  app.get('/cluster/events', reading, async (request, reply) => {
    if (stream.clients >= MAX_CLIENTS) return await reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: `already ${MAX_CLIENTS} event-stream clients` })
    reply.hijack()
    stream.add(reply.raw)
  })

  app.get('/cluster/history', reading, async () => ({ interval: history.interval, capacity: history.capacity, points: history.points() }))

  app.get('/metrics', reading, async (_request, reply) => await reply.type(PROMETHEUS_TEXT).send(await cluster.scrape(streamSeries(stream))))

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

  // A worker's CPU profile and heap snapshot: what they show of the code is the token's to see.
  const worker = { type: 'object', properties: { id: { type: 'string', pattern: '^\\d+$' } }, required: ['id'] }
  app.post<{ Params: { id: string }, Querystring: { seconds: number } }>('/cluster/workers/:id/profile', {
    onRequest: bearer(options.token),
    schema: { params: worker, querystring: { type: 'object', properties: { seconds: { type: 'integer', minimum: 1, maximum: MAX_PROFILE_SECONDS, default: 10 } }, additionalProperties: false } }
  }, async (request, reply) => {
    const { id } = request.params
    log.info({ workerId: id, seconds: request.query.seconds }, `CPU profile of worker ${id} requested over the monitoring API`)
    // Whole before it is sent: a profile that fails answers an error, not a cut file.
    let profile = ''
    try {
      for await (const chunk of cluster.diagnose(id, 'profile', request.query.seconds)) profile += String(chunk)
    } catch (error) {
      throw Object.assign(error as Error, { statusCode: (error as { statusCode?: number }).statusCode ?? 502 })
    }
    return await reply.type('application/json').header('content-disposition', `attachment; filename="worker-${id}.cpuprofile"`).send(profile)
  })
  app.post<{ Params: { id: string } }>('/cluster/workers/:id/heap-snapshot', { onRequest: bearer(options.token), schema: { params: worker } }, async (request, reply) => {
    const { id } = request.params
    log.info({ workerId: id }, `heap snapshot of worker ${id} requested over the monitoring API`)
    const snapshot = cluster.diagnose(id, 'heap')
    return await reply.type('application/json').header('content-disposition', `attachment; filename="worker-${id}.heapsnapshot"`).send(snapshot)
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

function streamSeries (stream: EventStream): Series[] {
  return [
    { name: 'cluster_event_stream_clients', help: 'Clients connected to /cluster/events', type: 'gauge', values: [{ value: stream.clients }] },
    {
      name: 'cluster_event_stream_slow_disconnects_total',
      help: 'Event-stream clients disconnected for leaving too much unread',
      type: 'counter',
      values: [{ value: stream.slowDisconnects }]
    }
  ]
}
