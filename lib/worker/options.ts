import type { Registry } from 'prom-client'
import { readBoolean, readMs, readName, rejectUnknown, type Env } from '../common/config.js'
import { FCK_INVALID_OPTION } from '../common/errors.js'
import { detectIdentity } from '../common/identity.js'
import { resolveShared, SHARED_KEYS, type ResolvedSharedState, type SharedStateOptions } from '../shared-state/options.js'

export interface MetricsOptions {
  /**
   * The registry the worker's metrics live in; pass prom-client's global `register` to include
   * metrics your app registers there. `fastify.cluster.metrics` gives it back.
   * @default a new Registry per plugin instance
   */
  registry?: Registry
  /**
   * Collect prom-client's default metrics (process, heap, GC, event loop) in that registry.
   * @default true
   */
  defaultMetrics?: boolean
  /**
   * Upper bounds (seconds) of the `http_request_duration_seconds` buckets.
   * @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
   */
  buckets?: number[]
  /**
   * Path of a `/metrics` route on the app itself, for a process no bootCluster primary scrapes
   * (one process, PM2); `false` adds none. Under bootCluster the primary's monitoring server
   * serves every worker's metrics together and this route is not added.
   * @default false
   */
  endpoint?: string | false
}

export const METRICS_DEFAULTS = {
  defaultMetrics: true,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  endpoint: false
} as const

export interface ResolvedMetricsOptions {
  registry: Registry | undefined
  defaultMetrics: boolean
  buckets: number[]
  endpoint: string | false
}

/** Options of `clusterPlugin`. Options win over environment variables, which win over defaults. */
export interface ClusterPluginOptions extends SharedStateOptions {
  /**
   * Response header carrying the worker id; `false` leaves it out.
   * @default 'X-Worker-ID'
   */
  workerIdHeader?: string | false
  /**
   * Response header carrying the worker pid; `false` leaves it out.
   * @default 'X-Worker-PID'
   */
  workerPidHeader?: string | false
  /**
   * Prefix of the health routes (`/live`, `/ready` and the JSON report at the prefix itself);
   * `false` registers none.
   * @default '/health'
   */
  healthPrefix?: string | false
  /**
   * Milliseconds between the start of a drain (readiness answers 503) and closing the listener,
   * so a load balancer or Kubernetes can stop routing here first.
   * @default 0
   */
  shutdownDelay?: number
  /**
   * Milliseconds a drain may take before the process exits with code 1 anyway.
   * Environment: `GRACEFUL_SHUTDOWN_TIMEOUT`.
   * @default 30000
   */
  gracefulTimeout?: number
  /**
   * Milliseconds between heartbeats to the primary (and between event-loop samples).
   * @default 1000
   */
  heartbeatInterval?: number
  /**
   * Default timeout of a readiness check added with `fastify.cluster.addCheck()`.
   * @default 1000
   */
  checkTimeout?: number
  /**
   * Drain and exit on SIGTERM and SIGINT (a second signal forces exit 1).
   * Set `false` when something else owns the process's signals.
   * @default true
   */
  handleSignals?: boolean
  /**
   * Prometheus metrics of this worker (prom-client): default metrics and the
   * `http_request_duration_seconds` histogram; `false` collects none.
   * @default {}
   */
  metrics?: MetricsOptions | false
}

export const PLUGIN_DEFAULTS = {
  workerIdHeader: 'X-Worker-ID',
  workerPidHeader: 'X-Worker-PID',
  healthPrefix: '/health',
  shutdownDelay: 0,
  gracefulTimeout: 30_000,
  heartbeatInterval: 1000,
  checkTimeout: 1000,
  handleSignals: true,
  metrics: {},
  /**
   * During a drain, a keep-alive socket idle this long is closed. Closing an idle socket at once
   * (Fastify's default) races a client that is just sending its next request and resets it;
   * a busy client sends well within this and is then answered with `Connection: close`.
   */
  drainIdleGrace: 1000
} as const

export type ResolvedOptions = Required<Omit<ClusterPluginOptions, 'metrics' | keyof SharedStateOptions>> & {
  metrics: ResolvedMetricsOptions | false
  shared: ResolvedSharedState
  drainIdleGrace: number
}

const PATH = /^(\/[^/\s]+)+\/?$/

const KNOWN = new Set([...Object.keys(PLUGIN_DEFAULTS).filter((key) => key !== 'drainIdleGrace'), ...SHARED_KEYS])

export function resolveOptions (options: ClusterPluginOptions, env: Env): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new FCK_INVALID_OPTION('options', String(options), 'an object')
  }
  rejectUnknown(options, KNOWN)
  const healthPrefix = readName(options.healthPrefix, { option: 'healthPrefix' }, PLUGIN_DEFAULTS.healthPrefix)
  if (healthPrefix !== false && !PATH.test(healthPrefix)) {
    throw new FCK_INVALID_OPTION('healthPrefix', JSON.stringify(healthPrefix), 'a path like "/health" or false')
  }
  // Forked by bootCluster: the timings must agree with the primary's, and a restart may start without Redis.
  const underPrimary = detectIdentity(env).manager === 'bootCluster'
  const timing = resolveTiming(options, env, underPrimary)
  return {
    workerIdHeader: readName(options.workerIdHeader, { option: 'workerIdHeader' }, PLUGIN_DEFAULTS.workerIdHeader),
    workerPidHeader: readName(options.workerPidHeader, { option: 'workerPidHeader' }, PLUGIN_DEFAULTS.workerPidHeader),
    healthPrefix: healthPrefix === false ? false : healthPrefix.replace(/\/$/, ''),
    ...timing,
    checkTimeout: readMs(options.checkTimeout, { option: 'checkTimeout' }, env, PLUGIN_DEFAULTS.checkTimeout, 1),
    handleSignals: readBoolean(options.handleSignals, { option: 'handleSignals' }, env, PLUGIN_DEFAULTS.handleSignals),
    metrics: resolveMetrics(options.metrics ?? PLUGIN_DEFAULTS.metrics, env),
    shared: resolveShared(options, env, underPrimary),
    drainIdleGrace: PLUGIN_DEFAULTS.drainIdleGrace
  }
}

/**
 * The drain and heartbeat timings, which under bootCluster must agree with the primary's: the
 * primary kills a draining worker after its gracefulTimeout (one value, passed to each worker
 * as GRACEFUL_SHUTDOWN_TIMEOUT), and a worker whose heartbeat is late by heartbeatTimeout.
 */
function resolveTiming (
  options: ClusterPluginOptions, env: Env, underPrimary: boolean
): Pick<ResolvedOptions, 'shutdownDelay' | 'gracefulTimeout' | 'heartbeatInterval'> {
  const gracefulTimeout = readMs(options.gracefulTimeout, { option: 'gracefulTimeout', env: 'GRACEFUL_SHUTDOWN_TIMEOUT' }, env, PLUGIN_DEFAULTS.gracefulTimeout, 1)
  const primary = env.GRACEFUL_SHUTDOWN_TIMEOUT
  if (underPrimary && primary !== undefined && String(gracefulTimeout) !== primary) {
    throw new FCK_INVALID_OPTION('gracefulTimeout', String(gracefulTimeout),
      `bootCluster's gracefulTimeout (${primary} ms): under bootCluster set it on bootCluster, whose kill timer it is`)
  }
  const shutdownDelay = readMs(options.shutdownDelay, { option: 'shutdownDelay' }, env, PLUGIN_DEFAULTS.shutdownDelay, 0, gracefulTimeout - 1)
  const heartbeatTimeout = Number(env.CLUSTER_HEARTBEAT_TIMEOUT)
  const maxInterval = underPrimary && heartbeatTimeout > 0 ? Math.floor(heartbeatTimeout / 2) : undefined
  const heartbeatInterval = readMs(options.heartbeatInterval, { option: 'heartbeatInterval' }, env, PLUGIN_DEFAULTS.heartbeatInterval, 10, maxInterval)
  return { shutdownDelay, gracefulTimeout, heartbeatInterval }
}

function resolveMetrics (metrics: MetricsOptions | false, env: Env): ResolvedMetricsOptions | false {
  if (metrics === false) return false
  if (typeof metrics !== 'object' || metrics === null) throw new FCK_INVALID_OPTION('metrics', String(metrics), 'an object or false')
  const { registry, buckets = [...METRICS_DEFAULTS.buckets] } = metrics
  if (registry !== undefined && typeof registry?.getMetricsAsJSON !== 'function') {
    throw new FCK_INVALID_OPTION('metrics.registry', String(registry), 'a prom-client Registry')
  }
  if (!Array.isArray(buckets) || buckets.length === 0 ||
    buckets.some((bound, i) => typeof bound !== 'number' || !(bound > 0) || (i > 0 && bound <= (buckets[i - 1] as number)))) {
    throw new FCK_INVALID_OPTION('metrics.buckets', JSON.stringify(buckets), 'increasing positive numbers of seconds')
  }
  const endpoint = readName(metrics.endpoint, { option: 'metrics.endpoint' }, METRICS_DEFAULTS.endpoint)
  if (endpoint !== false && !PATH.test(endpoint)) {
    throw new FCK_INVALID_OPTION('metrics.endpoint', JSON.stringify(endpoint), 'a path like "/metrics" or false')
  }
  return {
    registry,
    defaultMetrics: readBoolean(metrics.defaultMetrics, { option: 'metrics.defaultMetrics' }, env, METRICS_DEFAULTS.defaultMetrics),
    buckets,
    endpoint
  }
}
