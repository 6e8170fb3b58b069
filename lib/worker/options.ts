import type { Registry } from 'prom-client'
import { boolean, checkObject, GRACEFUL_TIMEOUT, ms, nameOrOff, overriddenVariables, pathOrOff, read, rejectUnknown, type Env, type Setting } from '../common/config.js'
import { FCK_INVALID_OPTION } from '../common/errors.js'
import { detectIdentity } from '../common/identity.js'
import { resolveShared, SHARED_KEYS, SHARED_SETTINGS, type ResolvedSharedState, type SharedStateOptions } from '../shared-state/options.js'

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
   * Path of a `/metrics` route on the app's own port; `false` adds none. Under bootCluster it
   * serves what the monitoring server's `/metrics` does, the whole cluster's metrics, fetched
   * from the primary (for platforms that expose one port); otherwise this process's own.
   * @default false
   */
  endpoint?: string | false
  /**
   * Label every series with `worker` (the worker's id), so the cluster's `/metrics` shows each
   * worker's series beside the others instead of their sum.
   * @default false
   */
  workerLabel?: boolean
}

/** The metrics settings (`metrics.*`) that are single values. */
export const METRICS_SETTINGS = {
  defaultMetrics: {
    option: 'metrics.defaultMetrics',
    kind: boolean,
    default: true,
    shown: 'true',
    doc: "prom-client's default metrics (process, heap, GC, event loop)"
  } satisfies Setting<boolean>,
  buckets: {
    option: 'metrics.buckets',
    kind: {
      expected: 'increasing positive numbers of seconds',
      parse: (raw) => Array.isArray(raw) && raw.length > 0 &&
        raw.every((bound, i) => typeof bound === 'number' && bound > 0 && (i === 0 || bound > (raw[i - 1] as number)))
        ? raw as number[]
        : undefined
    },
    default: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    shown: "[0.005 … 10] (prom-client's)",
    doc: 'buckets of `http_request_duration_seconds`'
  } satisfies Setting<number[]>,
  endpoint: {
    option: 'metrics.endpoint',
    kind: pathOrOff('/metrics'),
    default: false,
    shown: 'false',
    doc: 'a `/metrics` route on the app\'s port: under bootCluster the whole cluster\'s metrics, else this process\'s'
  } satisfies Setting<string | false>,
  workerLabel: {
    option: 'metrics.workerLabel',
    kind: boolean,
    default: false,
    shown: 'false',
    doc: 'label every series by `worker` instead of summing the workers\' series'
  } satisfies Setting<boolean>
}

export interface ResolvedMetricsOptions {
  registry: Registry | undefined
  defaultMetrics: boolean
  buckets: number[]
  endpoint: string | false
  workerLabel: boolean
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
   * so a load balancer or Kubernetes can stop routing here first; less than gracefulTimeout.
   * Environment: `GRACEFUL_SHUTDOWN_DELAY`.
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

/** clusterPlugin's settings that are single values, one declaration each (see lib/common/config.ts). */
export const PLUGIN_SETTINGS = {
  workerIdHeader: {
    option: 'workerIdHeader',
    kind: nameOrOff,
    default: 'X-Worker-ID',
    shown: 'X-Worker-ID',
    doc: 'header with the worker id on every response (404s and errors included); false leaves it out'
  } satisfies Setting<string | false>,
  workerPidHeader: {
    option: 'workerPidHeader',
    kind: nameOrOff,
    default: 'X-Worker-PID',
    shown: 'X-Worker-PID',
    doc: 'header with the process id; false leaves it out'
  } satisfies Setting<string | false>,
  healthPrefix: {
    option: 'healthPrefix',
    kind: pathOrOff('/health'),
    default: '/health',
    shown: '/health',
    doc: 'prefix of the health routes; false registers none'
  } satisfies Setting<string | false>,
  shutdownDelay: {
    option: 'shutdownDelay',
    env: 'GRACEFUL_SHUTDOWN_DELAY',
    kind: ms(0),
    default: 0,
    shown: '0',
    doc: 'time between the start of a drain (readiness 503) and closing the listener; less than gracefulTimeout'
  } satisfies Setting<number>,
  gracefulTimeout: GRACEFUL_TIMEOUT,
  heartbeatInterval: {
    option: 'heartbeatInterval',
    kind: ms(10),
    default: 1000,
    shown: '1000',
    doc: "heartbeat to the primary and event-loop sampling window; at most half of bootCluster's heartbeatTimeout"
  } satisfies Setting<number>,
  checkTimeout: {
    option: 'checkTimeout',
    kind: ms(1),
    default: 1000,
    shown: '1000',
    doc: 'default timeout of a readiness check'
  } satisfies Setting<number>,
  handleSignals: {
    option: 'handleSignals',
    kind: boolean,
    default: true,
    shown: 'true',
    doc: 'drain on SIGTERM/SIGINT; a second signal forces exit 1'
  } satisfies Setting<boolean>
}

/**
 * During a drain, a keep-alive socket idle this long is closed. Closing an idle socket at once
 * (Fastify's default) races a client that is just sending its next request and resets it;
 * a busy client sends well within this and is then answered with `Connection: close`.
 */
const DRAIN_IDLE_GRACE = 1000

export type ResolvedOptions = Required<Omit<ClusterPluginOptions, 'metrics' | keyof SharedStateOptions>> & {
  metrics: ResolvedMetricsOptions | false
  shared: ResolvedSharedState
  drainIdleGrace: number
  /** Variables the options override with another value, one line each (see overriddenVariables). */
  warnings: string[]
}

const KNOWN = [...Object.keys(PLUGIN_SETTINGS), 'metrics', ...SHARED_KEYS]

export function resolveOptions (options: ClusterPluginOptions, env: Env): ResolvedOptions {
  checkObject('options', options ?? null)
  rejectUnknown(options, KNOWN)
  const setting = PLUGIN_SETTINGS
  // Forked by bootCluster: the timings must agree with the primary's, and a restart may start without Redis.
  const underPrimary = detectIdentity(env).manager === 'bootCluster'
  return {
    workerIdHeader: read(setting.workerIdHeader, options.workerIdHeader, env),
    workerPidHeader: read(setting.workerPidHeader, options.workerPidHeader, env),
    healthPrefix: read(setting.healthPrefix, options.healthPrefix, env),
    ...resolveTiming(options, env, underPrimary),
    checkTimeout: read(setting.checkTimeout, options.checkTimeout, env),
    handleSignals: read(setting.handleSignals, options.handleSignals, env),
    metrics: resolveMetrics(options.metrics, env),
    shared: resolveShared(options, env, underPrimary),
    drainIdleGrace: DRAIN_IDLE_GRACE,
    warnings: [...overriddenVariables(setting, options, env), ...overriddenVariables(SHARED_SETTINGS, options, env)]
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
  const setting = PLUGIN_SETTINGS
  const gracefulTimeout = read(setting.gracefulTimeout, options.gracefulTimeout, env)
  const primary = env.GRACEFUL_SHUTDOWN_TIMEOUT
  if (underPrimary && primary !== undefined && String(gracefulTimeout) !== primary) {
    throw new FCK_INVALID_OPTION('gracefulTimeout', String(gracefulTimeout),
      `bootCluster's gracefulTimeout (${primary} ms): under bootCluster set it on bootCluster, whose kill timer it is`)
  }
  const shutdownDelay = read(setting.shutdownDelay, options.shutdownDelay, env, ms(0, gracefulTimeout - 1))
  const heartbeatTimeout = Number(env.CLUSTER_HEARTBEAT_TIMEOUT)
  const heartbeatKind = underPrimary && heartbeatTimeout > 0 ? ms(10, Math.floor(heartbeatTimeout / 2)) : setting.heartbeatInterval.kind
  const heartbeatInterval = read(setting.heartbeatInterval, options.heartbeatInterval, env, heartbeatKind)
  return { shutdownDelay, gracefulTimeout, heartbeatInterval }
}

function resolveMetrics (metrics: MetricsOptions | false = {}, env: Env): ResolvedMetricsOptions | false {
  if (metrics === false) return false
  checkObject('metrics', metrics, 'an object or false')
  rejectUnknown(metrics, [...Object.keys(METRICS_SETTINGS), 'registry'], 'metrics.')
  const { registry } = metrics
  if (registry !== undefined && typeof registry?.getMetricsAsJSON !== 'function') {
    throw new FCK_INVALID_OPTION('metrics.registry', String(registry), 'a prom-client Registry')
  }
  const setting = METRICS_SETTINGS
  return {
    registry,
    defaultMetrics: read(setting.defaultMetrics, metrics.defaultMetrics, env),
    buckets: read(setting.buckets, metrics.buckets, env),
    endpoint: read(setting.endpoint, metrics.endpoint, env),
    workerLabel: read(setting.workerLabel, metrics.workerLabel, env)
  }
}
