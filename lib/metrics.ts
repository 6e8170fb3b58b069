import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Registry, type Metric } from 'prom-client'
import type { Identity } from './identity.js'
import type { ResolvedMetricsOptions } from './options.js'
import { isPrimaryMessage, sendToPrimary, type MetricJSON } from './protocol.js'

/** The `route` label of requests no route matched: one label, whatever the URL. */
const NOT_FOUND_ROUTE = 'not_found'

const kStartedAt = Symbol('fastify-cluster-kit.startedAt')
type Timed = FastifyRequest & { [kStartedAt]: number }

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

  /**
   * Times requests from the plugin's onRequest hook (`start`) to onSend. Not onResponse: an
   * onResponse hook makes Fastify add 'finish' and 'error' listeners to every response, which a
   * logger-less app otherwise skips (fastify/lib/route.js); onSend adds no listener. The time to
   * write the body out is left out, which for all but huge bodies is noise. Hijacked replies are
   * not counted.
   */
  install (fastify: FastifyInstance): void {
    fastify.decorateRequest(kStartedAt as unknown as string, 0)
    fastify.addHook('onSend', this.#onSend)
  }

  start (request: FastifyRequest): void {
    (request as Timed)[kStartedAt] = performance.now()
  }

  /** Observes the request under its route pattern, never its raw URL, unless the route says `config: { metrics: false }`. */
  #onSend = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void): void => {
    const { url, config } = request.routeOptions
    if (config.metrics !== false) {
      // 0: another plugin's onRequest hook answered before ours ran; counted, with no duration.
      const startedAt = (request as Timed)[kStartedAt]
      this.#duration.observe(request.method, url ?? NOT_FOUND_ROUTE, reply.statusCode, startedAt === 0 ? 0 : (performance.now() - startedAt) / 1000)
    }
    done(null, payload)
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
 * percent of a small route's throughput); here a request costs one string key and a Map lookup.
 */
class RequestDurations {
  readonly name = 'http_request_duration_seconds'
  readonly help = 'Duration of HTTP requests in seconds, by route pattern'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #series = new Map<string, DurationSeries>()

  constructor (private readonly bounds: readonly number[]) {}

  observe (method: string, route: string, statusCode: number, seconds: number): void {
    const key = `${method} ${statusCode} ${route}`
    let series = this.#series.get(key)
    if (series === undefined) {
      series = { labels: { method, route, status_code: statusCode }, counts: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0 }
      this.#series.set(key, series)
    }
    let bucket = 0
    while (bucket < this.bounds.length && seconds > (this.bounds[bucket] as number)) bucket++
    series.counts[bucket] = (series.counts[bucket] as number) + 1
    series.sum += seconds
    series.count++
  }

  /** What prom-client's Histogram#get() gives: cumulative buckets, then sum and count, per label set. */
  get (): MetricJSON {
    const values: MetricJSON['values'] = []
    for (const { labels, counts, sum, count } of this.#series.values()) {
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
    this.#series.clear()
  }
}
