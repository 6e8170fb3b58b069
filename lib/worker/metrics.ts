import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import FindMyWay from 'find-my-way'
import { collectDefaultMetrics, Counter, Registry, type Metric } from 'prom-client'
import type { Identity } from '../common/identity.js'
import type { ResolvedMetricsOptions } from './options.js'
import { sendToPrimary, type MetricJSON } from '../common/protocol.js'
import type { WorkerChannel } from './channel.js'
import type { HistogramWindow } from './sampler.js'
import { kArrivedAt, kRoute, type TappedResponse } from './response-head.js'

/** The `route` label of requests no route matched: one label, whatever the URL. */
const NOT_FOUND_ROUTE = 'not_found'

/** A response whose route's handler ran carries the route's series (false: not observed). */
type Stamped = TappedResponse & { [kRoute]: RouteDurations | false | null }

const noop = (): void => {}

/**
 * One worker's Prometheus metrics: the registry, the request-duration histogram, and the answer
 * to the primary's scrape requests over IPC.
 */
export class WorkerMetrics {
  readonly registry: Registry
  readonly #duration: RequestDurations
  readonly #storeErrors: Counter<'store'>
  readonly #routes = FindMyWay({ ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, caseSensitive: false, allowUnsafeRegex: true, maxParamLength: Number.MAX_SAFE_INTEGER })

  constructor (options: ResolvedMetricsOptions, private readonly identity: Identity) {
    this.registry = options.registry ?? new Registry()
    if (options.workerLabel) this.registry.setDefaultLabels({ worker: identity.workerId })
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
   * Call from an onRoute hook: returns the route's series, which its handler stamps on its
   * response (see plugin.ts), and adds the route to a router of our own that places the replies
   * sent before a handler ran (a hook's 401, a 429, a 400 for a body that does not parse). Routes
   * registered before the plugin are not seen: see stampRoute().
   */
  watchRoute (route: RouteOptions): RouteDurations | false {
    const series = this.#seriesOf(route.url, route.config)
    for (const method of [route.method].flat()) {
      // Duplicates (the permissive router below merges what Fastify keeps apart) keep the first.
      try { this.#routes.on(method.toUpperCase() as FindMyWay.HTTPMethod, route.url, noop, { series }) } catch {}
    }
    return series
  }

  /** For routes registered before the plugin: stamps a response from an onSend hook, unless its handler did. */
  stampRoute (request: FastifyRequest, reply: FastifyReply): void {
    const raw = reply.raw as Stamped
    if (raw[kRoute] == null) raw[kRoute] = this.#seriesOf(request.routeOptions.url, request.routeOptions.config)
  }

  #seriesOf (url: string | undefined, config: { metrics?: boolean } | undefined): RouteDurations | false {
    return config?.metrics === false ? false : this.#duration.forRoute(url ?? NOT_FOUND_ROUTE)
  }

  /**
   * Observes a request from arrival to its response head, under its route pattern, never its raw
   * URL, unless the route says `config: { metrics: false }`. Hijacked replies are observed too.
   */
  observe (response: TappedResponse, statusCode: number): void {
    const { req } = response
    const series = (response as Stamped)[kRoute] ?? this.#placeUnhandled(req, statusCode)
    if (series === false) return
    series.observe(req.method ?? '', statusCode, (performance.now() - response[kArrivedAt]) / 1000)
  }

  /**
   * A response whose handler never ran: a 404 from the not-found handler, or a reply sent before
   * the handler. Looked up here, off the hot path; permissive (trailing and double slashes, case)
   * because Fastify already decided this request matched, or did not.
   */
  #placeUnhandled (request: IncomingMessage, statusCode: number): RouteDurations | false {
    const found = statusCode === 404 ? null : this.#routes.find(request.method as FindMyWay.HTTPMethod, request.url ?? '/')
    return (found?.store as { series: RouteDurations | false } | undefined)?.series ?? this.#duration.forRoute(NOT_FOUND_ROUTE)
  }

  /** p99 in ms of the requests observed since the last call (the heartbeat window; 0 with none), and the 5xx answered since start. */
  window (): HistogramWindow {
    return { latencyP99: this.#duration.windowQuantile(0.99) * 1000, errors: this.#duration.errors() }
  }

  countStoreError (store: string): void {
    this.#storeErrors.inc({ store })
  }

  /** Answers the primary's scrapes (`fck:metrics-request`) on the worker's channel. */
  listen (channel: WorkerChannel): void {
    channel.on('fck:metrics-request', this.#onScrape)
  }

  /** The values of a closing worker, sent once its requests are done so the cluster totals keep them. */
  async sendFinal (): Promise<void> {
    const metrics = await this.registry.getMetricsAsJSON().catch(() => [])
    await sendToPrimary({ type: 'fck:metrics-final', workerId: this.identity.workerId, pid: process.pid, metrics: metrics as unknown as MetricJSON[] })
  }

  #onScrape = ({ id }: { id: number }): void => {
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
 * that one validates and hashes the label object on every observation, a cost a small route
 * feels (benchmarks/RESULTS.md, overhead); here a request costs two Map lookups in its route's
 * series, which its handler hands over (see WorkerMetrics#watchRoute).
 */
export class RequestDurations {
  readonly name = 'http_request_duration_seconds'
  readonly help = 'Duration of HTTP requests in seconds, by route pattern'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #routes = new Map<string, RouteDurations>()
  /** Observations per bucket over every series at the last windowQuantile() call. */
  #previous: number[] = []

  constructor (private readonly bounds: readonly number[]) {}

  /**
   * The q-quantile (seconds) of the observations since the last call, read from the buckets the
   * way Prometheus' histogram_quantile() reads them: linear within the bucket it falls in.
   */
  windowQuantile (q: number): number {
    const totals = new Array<number>(this.bounds.length + 1).fill(0)
    for (const { counts } of this.#allSeries()) for (let i = 0; i < counts.length; i++) totals[i] = (totals[i] as number) + (counts[i] as number)
    // A reset() in between leaves fewer than before: count from zero again.
    const deltas = totals.map((count, i) => Math.max(0, count - (this.#previous[i] ?? 0)))
    this.#previous = totals
    const observed = deltas.reduce((a, b) => a + b, 0)
    if (observed === 0) return 0
    const rank = q * observed
    let below = 0
    for (let i = 0; i < deltas.length; i++) {
      const inBucket = deltas[i] as number
      if (below + inBucket >= rank && inBucket > 0) {
        const lower = i === 0 ? 0 : this.bounds[i - 1] as number
        // Past the last bound Prometheus answers that bound; so does this.
        if (i === this.bounds.length) return lower
        return lower + ((this.bounds[i] as number) - lower) * (rank - below) / inBucket
      }
      below += inBucket
    }
    return this.bounds[this.bounds.length - 1] as number
  }

  /** Responses with a 5xx status since start (or the last reset). */
  errors (): number {
    let errors = 0
    for (const { labels, count } of this.#allSeries()) if (labels.status_code >= 500) errors += count
    return errors
  }

  forRoute (route: string): RouteDurations {
    let durations = this.#routes.get(route)
    if (durations === undefined) this.#routes.set(route, durations = new RouteDurations(route, this.bounds))
    return durations
  }

  * #allSeries (): Generator<DurationSeries> {
    for (const route of this.#routes.values()) yield * route.allSeries()
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

  /** Keeps each route's object: its handler holds it. */
  reset (): void {
    for (const route of this.#routes.values()) route.reset()
  }
}

/** One route's series: method → status code → series, lookups on a cached string hash and a small integer. */
class RouteDurations {
  readonly #methods = new Map<string, Map<number, DurationSeries>>()

  constructor (private readonly route: string, private readonly bounds: readonly number[]) {}

  observe (method: string, statusCode: number, seconds: number): void {
    let statuses = this.#methods.get(method)
    if (statuses === undefined) this.#methods.set(method, statuses = new Map())
    let series = statuses.get(statusCode)
    if (series === undefined) {
      series = { labels: { method, route: this.route, status_code: statusCode }, counts: new Array(this.bounds.length + 1).fill(0), sum: 0, count: 0 }
      statuses.set(statusCode, series)
    }
    let bucket = 0
    while (bucket < this.bounds.length && seconds > (this.bounds[bucket] as number)) bucket++
    series.counts[bucket] = (series.counts[bucket] as number) + 1
    series.sum += seconds
    series.count++
  }

  * allSeries (): Generator<DurationSeries> {
    for (const statuses of this.#methods.values()) yield * statuses.values()
  }

  reset (): void {
    this.#methods.clear()
  }
}
