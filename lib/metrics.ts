import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Registry, type Metric } from 'prom-client'
import type { Identity } from './identity.js'
import type { ResolvedMetricsOptions } from './options.js'
import { isPrimaryMessage, sendToPrimary, type MetricJSON } from './protocol.js'

/** The `route` label of requests no route matched: one label, whatever the URL. */
const NOT_FOUND_ROUTE = 'not_found'

const kArrivedAt = Symbol('fastify-cluster-kit.arrivedAt')
type Stamped = IncomingMessage & { [kArrivedAt]?: number }

/**
 * One worker's Prometheus metrics: the registry, the request-duration histogram, and the answer
 * to the primary's scrape requests over IPC.
 */
export class WorkerMetrics {
  readonly registry: Registry
  readonly #duration: RequestDurations
  readonly #storeErrors: Counter<'store'>

  constructor (options: ResolvedMetricsOptions, private readonly identity: Identity) {
    this.registry = options.registry ?? new Registry()
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry })
    this.#duration = new RequestDurations(options.buckets)
    this.registry.registerMetric(this.#duration as unknown as Metric)
    this.#storeErrors = new Counter({
      name: 'shared_state_errors_total',
      help: 'Rate-limit and session store operations that failed (Redis or the primary unreachable)',
      labelNames: ['store'],
      registers: [this.registry]
    })
  }

  /** Stamps a request's arrival (from the server's 'request' event, before Fastify sees it). */
  start (request: IncomingMessage): void {
    (request as Stamped)[kArrivedAt] = performance.now()
  }

  /**
   * Observes a request from arrival to the plugin's onSend hook, under its route pattern, never
   * its raw URL, unless the route says `config: { metrics: false }`. Not onResponse: an onResponse
   * hook makes Fastify add 'finish' and 'error' listeners to every response, which a logger-less
   * app otherwise skips (fastify/lib/route.js). The time to write the body out is left out, which
   * for all but huge bodies is noise. Hijacked replies are not counted.
   */
  observe (request: FastifyRequest, reply: FastifyReply): void {
    const { url, config } = request.routeOptions
    if (config.metrics === false) return
    // Undefined when the server did not emit 'request' (a serverFactory routing by hand): counted, with no duration.
    const arrivedAt = (request.raw as Stamped)[kArrivedAt]
    this.#duration.observe(url ?? NOT_FOUND_ROUTE, request.method, reply.statusCode, arrivedAt === undefined ? 0 : (performance.now() - arrivedAt) / 1000)
  }

  countStoreError (store: string): void {
    this.#storeErrors.inc({ store })
  }

  /** Answers the primary's `fck:metrics-request` messages (install once listening). */
  listen (): void {
    process.on('message', this.#onMessage)
  }

  stop (): void {
    process.removeListener('message', this.#onMessage)
  }

  #onMessage = (message: unknown): void => {
    if (!isPrimaryMessage(message) || message.type !== 'fck:metrics-request') return
    const { id } = message
    this.registry.getMetricsAsJSON().then(
      // prom-client types `type` as a numeric enum; at run time it is the string ('counter', ...).
      (metrics) => sendToPrimary({ type: 'fck:metrics', workerId: this.identity.workerId, pid: process.pid, id, metrics: metrics as unknown as MetricJSON[] }),
      // An answer with nothing in it still tells the primary not to wait for this worker.
      () => sendToPrimary({ type: 'fck:metrics', workerId: this.identity.workerId, pid: process.pid, id, metrics: [] })
    ).catch(() => {})
  }
}

interface DurationSeries {
  labels: { method: string, route: string, status_code: number }
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  counts: number[]
  sum: number
  count: number
}

/**
 * `http_request_duration_seconds`, a histogram prom-client's registry serves like its own (it
 * asks any registered metric for `get()`). It replaces prom-client's Histogram on the hot path:
 * that one validates and hashes the label object on every observation (about 0.4 µs, a few
 * percent of a small route's throughput); here a request costs three Map lookups.
 */
class RequestDurations {
  readonly name = 'http_request_duration_seconds'
  readonly help = 'Duration of HTTP requests in seconds, by route pattern'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  /** route → method → status code → series: lookups on strings whose hashes V8 has cached and a small integer. */
  readonly #routes = new Map<string, Map<string, Map<number, DurationSeries>>>()

  constructor (private readonly bounds: readonly number[]) {}

  observe (route: string, method: string, statusCode: number, seconds: number): void {
    let methods = this.#routes.get(route)
    if (methods === undefined) this.#routes.set(route, methods = new Map())
    let statuses = methods.get(method)
    if (statuses === undefined) methods.set(method, statuses = new Map())
    let series = statuses.get(statusCode)
    if (series === undefined) {
      series = { labels: { method, route, status_code: statusCode }, counts: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0 }
      statuses.set(statusCode, series)
    }
    let bucket = 0
    while (bucket < this.bounds.length && seconds > (this.bounds[bucket] as number)) bucket++
    series.counts[bucket] = (series.counts[bucket] as number) + 1
    series.sum += seconds
    series.count++
  }

  * #allSeries (): Generator<DurationSeries> {
    for (const methods of this.#routes.values()) for (const statuses of methods.values()) yield * statuses.values()
  }

  /** What prom-client's Histogram#get() gives: cumulative buckets, then sum and count, per label set. */
  get (): MetricJSON {
    const values: MetricJSON['values'] = []
    for (const { labels, counts, sum, count } of this.#allSeries()) {
      let cumulative = 0
      for (let i = 0; i < counts.length; i++) {
        cumulative += counts[i] as number
        values.push({ labels: { ...labels, le: i < this.bounds.length ? this.bounds[i] : '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` })
      }
      values.push({ labels, value: sum, metricName: `${this.name}_sum` }, { labels, value: count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#routes.clear()
  }
}
