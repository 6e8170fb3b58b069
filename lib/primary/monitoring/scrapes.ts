import type { Worker } from 'node:cluster'
import { Correlator } from '../../common/correlator.js'
import { sendToWorker, type MetricJSON, type WorkerMessage } from '../../common/protocol.js'
import type { StoreSize } from '../../shared-state/primary-store.js'
import { aggregate, render, type Series } from './aggregate.js'
import { MetricsLedger } from './metrics-ledger.js'
import type { ResolvedMonitoringOptions } from '../options.js'
import { MONITORING_SETTINGS } from '../settings.js'
import type { ClusterHandle, ClusterStats } from '../types.js'

/** What a scrape needs of the supervisor. */
export interface Scraped extends ClusterHandle {
  /** The workers that serve now, by slot id. */
  servingWorkers: () => Array<{ id: string, worker: Worker }>
  /** What the primary's shared store holds and may hold. */
  storeSize: () => StoreSize
}

/**
 * The cluster's Prometheus text: asks every serving worker for its metrics, sums what the ledger
 * holds (a worker that did not answer in time counts by its last report rather than dropping out
 * of the totals), and adds the cluster's own series. Serves the monitoring server's `/metrics`
 * and the workers' `metrics.endpoint`.
 *
 * Scrapes that arrive while the workers are being asked share that round's answer (the cluster's
 * own series are still read per scrape): a pair of Prometheus replicas, or several one-port
 * scrapers, then cost the workers and the primary's heap one round, not one each.
 */
export class Scrapes {
  readonly #failures = new Map<string, number>()
  readonly #ledger = new MetricsLedger()
  readonly #requests = new Correlator<MetricJSON[]>()
  readonly #reloads = { ok: 0, failed: 0 }
  /** The workers' part of the text, while a round of asking them runs. */
  #round: Promise<string> | undefined

  /** How long each worker has to answer a scrape. */
  private readonly timeout: number

  constructor (private readonly cluster: Scraped, monitoring: ResolvedMonitoringOptions | false) {
    this.timeout = monitoring === false ? MONITORING_SETTINGS.scrapeTimeout.default : monitoring.scrapeTimeout
    cluster.on('reload:done', () => { this.#reloads.ok++ })
    cluster.on('reload:failed', () => { this.#reloads.failed++ })
  }

  async scrape (extra: Series[] = []): Promise<string> {
    this.#round ??= this.#askWorkers().finally(() => { this.#round = undefined })
    return await this.#round + render([...this.#clusterSeries(this.cluster.stats()), ...extra])
  }

  /** A worker's metrics: the answer to a scrape's request, or the last a closing worker sends. */
  received ({ type, pid, metrics, ...rest }: Extract<WorkerMessage, { type: 'fck:metrics' | 'fck:metrics-final' }>, slot: string): void {
    this.#ledger.record(pid, slot, metrics)
    if (type === 'fck:metrics' && 'id' in rest) this.#requests.settle(rest.id, metrics)
  }

  /** A worker's channel closed: no more of its metrics can come (see metrics-ledger.ts). */
  gone (worker: Worker): void {
    this.#requests.cancel(new Error('the worker exited'), worker)
    if (worker.process.pid !== undefined) this.#ledger.retire(worker.process.pid)
  }

  async #askWorkers (): Promise<string> {
    const workers = this.cluster.servingWorkers()
    await Promise.all(workers.map(async ({ id, worker }) => await this.#requests.request((request) => sendToWorker(worker, { type: 'fck:metrics-request', id: request }),
      this.timeout, () => new Error(`no metrics within ${this.timeout} ms`), worker).catch(() => {
      this.#failures.set(id, (this.#failures.get(id) ?? 0) + 1)
    })))
    const serving = new Set(workers.flatMap(({ worker }) => worker.process.pid ?? []))
    return aggregate(this.#ledger.sources(serving))
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
      { name: 'cluster_worker_restarts_total', help: 'Workers started in a slot after its worker exited (crash, exit, kill); reload and recycle replacements are not counted', type: 'counter', values: perWorker((worker) => worker.restarts) },
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
      help: 'The primary store\'s limits (primaryStore option): session entries, session entries per client, session bytes, counter entries',
      type: 'gauge',
      values: [
        { labels: { limit: 'sessions' }, value: size.limits.maxSessions },
        { labels: { limit: 'sessions_per_client' }, value: size.limits.maxSessionsPerClient },
        { labels: { limit: 'session_bytes' }, value: size.limits.maxSessionBytes },
        { labels: { limit: 'counters' }, value: size.limits.maxCounters }
      ]
    },
    {
      name: 'cluster_primary_store_evictions_total',
      help: 'Entries dropped to stay within the primary store\'s limits, by kind and reason (client_limit: a client over maxSessionsPerClient lost its own; store_full)',
      type: 'counter',
      values: Object.entries(size.evictions).flatMap(([kind, reasons]) =>
        Object.entries(reasons).map(([reason, value]) => ({ labels: { kind, reason }, value })))
    }
  ]
}
