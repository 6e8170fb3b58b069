import type { SendHandle } from 'node:child_process'
import type { WorkerSample } from './sample.js'

// The typed IPC messages the worker and the primary exchange. Nothing else crosses the
// channel: every send goes through `sendToPrimary`, every receive through a type guard.

/** One metric as prom-client's `registry.getMetricsAsJSON()` gives it. */
export interface MetricJSON {
  name: string
  help: string
  type: string
  /** How the primary combines the workers' values: sum (default), first, min, max, average, omit. */
  aggregator?: string
  /** `metricName` names a histogram's `_bucket`, `_sum` and `_count` samples. */
  values: Array<{ value: number, labels: Record<string, string | number | undefined>, metricName?: string }>
}

/**
 * How a rate-limit window grows once a client is over the limit, from @fastify/rate-limit's two
 * settings: `continue` (continueExceeding) restarts it on every hit over, `backoff`
 * (exponentialBackoff) doubles it per hit over, `fixed` leaves it.
 */
export type WindowMode = 'fixed' | 'continue' | 'backoff'

/** What a worker asks of the primary's shared state (the `primary` backend of rate limits and sessions). */
export type StateRequest =
  /** `hits` hits on one key, answered with a Tally (see rate-limit-store.ts). */
  | { op: 'incr', key: string, hits: number, timeWindow: number, max: number, mode: WindowMode }
  | { op: 'read', key: string }
  | { op: 'session:get', key: string }
  /**
   * `data`: the session as JSON; `empty`: it holds nothing but its cookie (evicted first);
   * `client`: the address of the request that saved it (a new session is counted against it).
   */
  | { op: 'session:set', key: string, data: string, ttl: number, empty: boolean, client: string }
  | { op: 'session:destroy', key: string }

/** The variable naming where a worker's fatal-error report goes (a directory of the primary's; see lib/primary/supervision/incidents.ts). */
export const REPORT_DIR = 'CLUSTER_REPORT_DIR'

export type WorkerMessage =
  | { type: 'fck:ready', workerId: string, pid: number, address: string }
  /** Sent by the uncaught-exception monitor, just before Node ends the worker: what is ending it. */
  | { type: 'fck:fatal', workerId: string, pid: number, origin: string, error: { name: string, message: string, stack: string } }
  | { type: 'fck:heartbeat', workerId: string, pid: number, sample: WorkerSample }
  | { type: 'fck:draining', workerId: string, pid: number, reason: string }
  /** Sent just before a worker exits because it could not start (the factory threw, the port is taken). */
  | { type: 'fck:failed', workerId: string, pid: number, error: { code?: string, message: string } }
  /** The answer to `fck:metrics-request` with the same id. */
  | { type: 'fck:metrics', workerId: string, pid: number, id: number, metrics: MetricJSON[] }
  /** A closing worker's last metrics, sent once its requests are done (see lib/primary/monitoring/metrics-ledger.ts). */
  | { type: 'fck:metrics-final', workerId: string, pid: number, metrics: MetricJSON[] }
  /** Asks for the cluster's metrics as Prometheus text (`metrics.endpoint` on the app's port); answered by `fck:scrape-result`. */
  | { type: 'fck:scrape', id: number }
  /** reuseport balancing: asks for the slot's socket before listening; answered by `fck:listener`. */
  | { type: 'fck:listener-request', workerId: string, pid: number }
  /** reuseport balancing: sent with the socket the worker opened, for the primary to hold (see lib/primary/supervision/balancing.ts). */
  | { type: 'fck:listener-bound', workerId: string, pid: number }
  /** Answered by `fck:state-result` with the same id: the requests a worker made in one turn of its event loop. */
  | { type: 'fck:state', id: number, requests: StateRequest[] }
  /** A piece of the answer to `fck:diagnose` with this id (a profile comes whole, a heap snapshot in many). */
  | { type: 'fck:diagnosis-chunk', id: number, chunk: string }
  /** The answer to `fck:diagnose` is complete, or failed with `error`. */
  | { type: 'fck:diagnosis-end', id: number, error?: string }

export type PrimaryMessage =
  | { type: 'fck:shutdown', reason: string }
  /** Asks for the worker's metrics for one scrape; the worker answers `fck:metrics` with this id. */
  | { type: 'fck:metrics-request', id: number }
  /** Sent with the slot's held socket as its handle when `held`; otherwise the worker opens one. */
  | { type: 'fck:listener', held: boolean }
  /** reuseport balancing: sent with the socket of `slot`, whose worker died, to accept on until `fck:release`. */
  | { type: 'fck:adopt', slot: string }
  | { type: 'fck:release', slot: string }
  /** During a canary's bake: answer one response in `every` with `Connection: close` (0: stop), so held connections are dealt again. */
  | { type: 'fck:spread', every: number }
  /** `text` is undefined when the scrape failed. */
  | { type: 'fck:scrape-result', id: number, text: string | undefined }
  /** The answers, in the requests' order (a Tally for incr, `{ current, ttl }` for read, the session's JSON or null for get). */
  | { type: 'fck:state-result', id: number, values: unknown[] }
  /** Asks for a CPU profile of the next `seconds`, or a heap snapshot; answered by `fck:diagnosis-chunk` and `fck:diagnosis-end`. */
  | { type: 'fck:diagnose', id: number, what: 'profile' | 'heap', seconds: number }

/** The content type of the Prometheus text a scrape (`fck:scrape-result`) answers with. */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8'

/** PM2 sends this plain string when `shutdown_with_message` is set (and on Windows). */
export const PM2_SHUTDOWN_MESSAGE = 'shutdown'

function hasType (message: unknown): message is { type: unknown } {
  return typeof message === 'object' && message !== null && 'type' in message
}

export function isPrimaryMessage (message: unknown): message is PrimaryMessage {
  return hasType(message) && ['fck:shutdown', 'fck:metrics-request', 'fck:listener', 'fck:adopt', 'fck:release', 'fck:spread', 'fck:scrape-result', 'fck:state-result', 'fck:diagnose'].includes(message.type as string)
}

export function isWorkerMessage (message: unknown): message is WorkerMessage {
  return hasType(message) &&
    ['fck:ready', 'fck:fatal', 'fck:heartbeat', 'fck:draining', 'fck:failed', 'fck:metrics', 'fck:metrics-final', 'fck:scrape', 'fck:listener-request', 'fck:listener-bound', 'fck:state', 'fck:diagnosis-chunk', 'fck:diagnosis-end'].includes(message.type as string)
}

/**
 * Sends when an IPC channel is open; a closed channel is not an error (the primary may be gone).
 * Resolves once the message is handed to the channel, so a worker can send and then exit.
 * `handle`: a socket or server to pass along (see Node's `subprocess.send()`).
 */
export async function sendToPrimary (message: WorkerMessage, handle?: SendHandle): Promise<void> {
  if (process.send === undefined || !process.connected) return
  await new Promise<void>((resolve) => process.send?.(message, handle, {}, () => resolve()))
}

/** What a primary sends a worker; typed so nothing untyped crosses the channel. */
export function sendToWorker (
  child: { send: (message: PrimaryMessage, handle?: SendHandle) => unknown, isConnected: () => boolean }, message: PrimaryMessage, handle?: SendHandle
): void {
  if (child.isConnected()) child.send(message, handle)
}
