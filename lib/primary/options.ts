import os from 'node:os'
import { readBoolean, readBytes, readInteger, readMs, rejectUnknown, type Env } from '../common/config.js'
import { FCK_INVALID_OPTION, FCK_MONITORING_UNPROTECTED } from '../common/errors.js'
import type { ClusterPluginOptions } from '../worker/options.js'
import type { PrimaryStoreLimits } from '../shared-state/primary-store.js'

/** Options of `bootCluster()`. Options win over environment variables, which win over defaults. */
export interface BootClusterOptions {
  /**
   * Fork workers. Environment: `ENABLE_CLUSTERING`.
   * @default true, except when NODE_ENV is `test`
   */
  enabled?: boolean
  /**
   * Number of workers, from 1 to 4 × os.availableParallelism() (up to 1024 with
   * `allowOversubscribe`). Environment: `CLUSTER_WORKERS`.
   * @default NODE_ENV production: os.availableParallelism(); otherwise at most 2
   */
  workers?: number
  /**
   * Allow more than 4 workers per core (up to 1024), for workers that mostly wait.
   * Environment: `CLUSTER_ALLOW_OVERSUBSCRIBE`.
   * @default false
   */
  allowOversubscribe?: boolean
  /**
   * Port the app listens on (0 picks a free one). Environment: `PORT`.
   * @default 3000
   */
  port?: number
  /**
   * Host the app listens on. Environment: `HOST`.
   * @default '0.0.0.0'
   */
  host?: string
  /**
   * Early crashes in a row after which a slot is given up. Environment: `MAX_WORKER_RESTARTS`.
   * @default 10
   */
  maxRestarts?: number
  /**
   * Milliseconds after which a given-up slot is tried again (one start; given up again if it
   * fails), so a slot lost while a dependency or the pids limit was in the way comes back by
   * itself; 0 never retries. Environment: `WORKER_GIVEN_UP_RETRY_DELAY`.
   * @default 60000
   */
  givenUpRetryDelay?: number
  /**
   * Delay before restarting after an early crash, doubled per crash in a row up to 30 s.
   * Environment: `WORKER_RESTART_DELAY`.
   * @default 1000
   */
  restartDelay?: number
  /**
   * A worker that exits within this many ms of becoming ready (or never became ready) crashed
   * early; one that ran longer is replaced at once and its slot's count starts again.
   * @default 30000
   */
  restartWindow?: number
  /**
   * Milliseconds a worker may take from fork to listening; past it, it is killed as a failed start.
   * @default 30000
   */
  readyTimeout?: number
  /**
   * Milliseconds without a heartbeat after which a ready worker (event loop blocked) is killed and replaced.
   * @default 15000
   */
  heartbeatTimeout?: number
  /**
   * Resident memory (bytes, or `512M`, `1G`; at least 64M) above which a worker is replaced
   * gracefully. A worker already above it right after it starts is not recycled (that would
   * loop): the slot is reported instead. Environment: `MAX_WORKER_MEMORY`.
   * @default undefined (off)
   */
  maxMemory?: number | string
  /**
   * Milliseconds a worker may take to drain; stragglers are killed. Also the workers' own limit.
   * Environment: `GRACEFUL_SHUTDOWN_TIMEOUT`.
   * @default 30000
   */
  gracefulTimeout?: number
  /**
   * Milliseconds between health reports in the log; 0 disables them.
   * Environment: `CLUSTER_HEALTH_REPORT_INTERVAL`.
   * @default 60000
   */
  healthReportInterval?: number
  /**
   * The primary's monitoring server (`/cluster/health`, `/cluster/stats`, `/metrics`,
   * `POST /cluster/restart`); `false` starts none. Environment: `CLUSTER_MONITORING_PORT`
   * (`false` disables), `CLUSTER_MONITORING_HOST`, `CLUSTER_MONITORING_TOKEN`.
   * @default { port: 3003, host: '127.0.0.1' }
   */
  monitoring?: MonitoringOptions | false
  /**
   * Runs once in the primary before any worker is forked, e.g. `setupPrimary()` of
   * @socket.io/cluster-adapter. Not run in workers, in one process or under PM2.
   * @default undefined
   */
  onPrimary?: () => void | Promise<void>
  /**
   * Options for the clusterPlugin that bootCluster registers when the factory did not; checked in
   * the primary before any worker is forked.
   * @default {}
   */
  plugin?: ClusterPluginOptions
  /**
   * Limits of the store the primary holds rate-limit counters and sessions in (the `primary`
   * shared-state backend). Past them the oldest entries go, sessions holding no data first.
   * @default { maxSessions: 100000, maxSessionBytes: 67108864, maxCounters: 100000 }
   */
  primaryStore?: Partial<PrimaryStoreLimits>
}

export interface MonitoringOptions {
  /**
   * Port of the monitoring server. Environment: `CLUSTER_MONITORING_PORT`.
   * @default 3003
   */
  port?: number
  /**
   * Host it binds; a non-loopback host needs a token. Environment: `CLUSTER_MONITORING_HOST`.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * Bearer token `POST /cluster/restart` requires. Environment: `CLUSTER_MONITORING_TOKEN`.
   * @default undefined (none; only allowed on a loopback host)
   */
  token?: string
  /**
   * Milliseconds `/metrics` waits for each worker's metrics; a worker that does not answer in
   * time is left out of that scrape and counted in `cluster_metrics_scrape_failures_total`.
   * Environment: `CLUSTER_MONITORING_SCRAPE_TIMEOUT`.
   * @default 1000
   */
  scrapeTimeout?: number
}

export interface ResolvedMonitoringOptions {
  port: number
  host: string
  token: string | undefined
  scrapeTimeout: number
}

export const BOOT_DEFAULTS = {
  port: 3000,
  host: '0.0.0.0',
  maxRestarts: 10,
  givenUpRetryDelay: 60_000,
  restartDelay: 1000,
  /** The exponential back-off stops growing here. */
  maxRestartDelay: 30_000,
  restartWindow: 30_000,
  readyTimeout: 30_000,
  heartbeatTimeout: 15_000,
  gracefulTimeout: 30_000,
  healthReportInterval: 60_000,
  /** Development runs at most this many workers. */
  developmentWorkers: 2,
  /** Workers per core allowed without allowOversubscribe, and the count no setting goes past. */
  workersPerCore: 4,
  maxWorkers: 1024,
  /** Below this, maxMemory is under any Fastify worker's own baseline. */
  minMaxMemory: 64 * 2 ** 20,
  /** No timeout or delay is longer than a day. */
  primaryStore: { maxSessions: 100_000, maxSessionBytes: 64 * 2 ** 20, maxCounters: 100_000 },
  monitoring: { port: 3003, host: '127.0.0.1', scrapeTimeout: 1000 }
} as const

export interface ResolvedBootOptions {
  enabled: boolean
  workers: number
  port: number
  host: string
  maxRestarts: number
  givenUpRetryDelay: number
  restartDelay: number
  maxRestartDelay: number
  restartWindow: number
  readyTimeout: number
  heartbeatTimeout: number
  maxMemory: number | undefined
  gracefulTimeout: number
  healthReportInterval: number
  monitoring: ResolvedMonitoringOptions | false
  onPrimary: (() => void | Promise<void>) | undefined
  plugin: ClusterPluginOptions
  primaryStore: PrimaryStoreLimits
}

const KNOWN = new Set(['enabled', 'workers', 'allowOversubscribe', 'port', 'host', 'maxRestarts', 'givenUpRetryDelay', 'restartDelay',
  'restartWindow', 'readyTimeout', 'heartbeatTimeout', 'maxMemory', 'gracefulTimeout', 'healthReportInterval', 'monitoring', 'onPrimary',
  'plugin', 'primaryStore'])

function defaultWorkers (env: Env): number {
  const cores = os.availableParallelism()
  return env.NODE_ENV === 'production' ? cores : Math.min(BOOT_DEFAULTS.developmentWorkers, cores)
}

/** A worker count past a few per core is a typo or a fork bomb, unless the user says otherwise. */
function readWorkers (options: BootClusterOptions, env: Env): number {
  const oversubscribe = readBoolean(options.allowOversubscribe, { option: 'allowOversubscribe', env: 'CLUSTER_ALLOW_OVERSUBSCRIBE' }, env, false)
  const cores = os.availableParallelism()
  const max = oversubscribe ? BOOT_DEFAULTS.maxWorkers : Math.min(BOOT_DEFAULTS.maxWorkers, BOOT_DEFAULTS.workersPerCore * cores)
  const expected = oversubscribe
    ? `a whole number of workers >= 1 and <= ${max}`
    : `a whole number of workers >= 1 and <= ${max} (${BOOT_DEFAULTS.workersPerCore} per core on ${cores} cores; allowOversubscribe or CLUSTER_ALLOW_OVERSUBSCRIBE=true allows up to ${BOOT_DEFAULTS.maxWorkers})`
  return readInteger(options.workers, { option: 'workers', env: 'CLUSTER_WORKERS' }, env, Math.min(defaultWorkers(env), max), 1, expected, max)
}

function resolvePrimaryStore (given: Partial<PrimaryStoreLimits> | undefined): PrimaryStoreLimits {
  if (given !== undefined && (typeof given !== 'object' || given === null)) throw new FCK_INVALID_OPTION('primaryStore', String(given), 'an object')
  const limits: PrimaryStoreLimits = { ...BOOT_DEFAULTS.primaryStore }
  rejectUnknown(given ?? {}, Object.keys(limits), 'primaryStore.')
  for (const key of Object.keys(given ?? {})) {
    const name = key as keyof PrimaryStoreLimits
    limits[name] = readInteger(given?.[name], { option: `primaryStore.${name}` }, {}, limits[name], 1)
  }
  return limits
}

/**
 * `mayFork`: this process would be the primary if clustering is enabled (not a worker, not under
 * PM2). The monitoring options are read only by a process that will be the primary: a worker, a
 * single process or a PM2 instance never starts the monitoring server, so its settings cannot fail it.
 */
export function resolveBootOptions (options: BootClusterOptions, env: Env, mayFork = true): ResolvedBootOptions {
  if (typeof options !== 'object' || options === null) throw new FCK_INVALID_OPTION('options', String(options), 'an object')
  rejectUnknown(options, KNOWN)
  const host = options.host ?? (env.HOST === undefined || env.HOST === '' ? BOOT_DEFAULTS.host : env.HOST)
  if (typeof host !== 'string' || host.trim() === '') throw new FCK_INVALID_OPTION('host', JSON.stringify(host), 'a host name or address')
  if (options.onPrimary !== undefined && typeof options.onPrimary !== 'function') {
    throw new FCK_INVALID_OPTION('onPrimary', String(options.onPrimary), 'a function')
  }
  if (options.plugin !== undefined && (typeof options.plugin !== 'object' || options.plugin === null)) {
    throw new FCK_INVALID_OPTION('plugin', String(options.plugin), 'clusterPlugin options (an object)')
  }
  const enabled = readBoolean(options.enabled, { option: 'enabled', env: 'ENABLE_CLUSTERING' }, env, env.NODE_ENV !== 'test')
  return {
    enabled,
    workers: readWorkers(options, env),
    port: readInteger(options.port, { option: 'port', env: 'PORT' }, env, BOOT_DEFAULTS.port, 0, 'a port number from 0 to 65535', 65535),
    host,
    maxRestarts: readInteger(options.maxRestarts, { option: 'maxRestarts', env: 'MAX_WORKER_RESTARTS' }, env, BOOT_DEFAULTS.maxRestarts, 0, 'a whole number >= 0 and <= 1000', 1000),
    givenUpRetryDelay: readMs(options.givenUpRetryDelay, { option: 'givenUpRetryDelay', env: 'WORKER_GIVEN_UP_RETRY_DELAY' }, env, BOOT_DEFAULTS.givenUpRetryDelay),
    restartDelay: readMs(options.restartDelay, { option: 'restartDelay', env: 'WORKER_RESTART_DELAY' }, env, BOOT_DEFAULTS.restartDelay),
    maxRestartDelay: BOOT_DEFAULTS.maxRestartDelay,
    restartWindow: readMs(options.restartWindow, { option: 'restartWindow' }, env, BOOT_DEFAULTS.restartWindow),
    readyTimeout: readMs(options.readyTimeout, { option: 'readyTimeout' }, env, BOOT_DEFAULTS.readyTimeout, 1),
    heartbeatTimeout: readMs(options.heartbeatTimeout, { option: 'heartbeatTimeout' }, env, BOOT_DEFAULTS.heartbeatTimeout, 100),
    maxMemory: readBytes(options.maxMemory, { option: 'maxMemory', env: 'MAX_WORKER_MEMORY' }, env, undefined, BOOT_DEFAULTS.minMaxMemory),
    gracefulTimeout: readMs(options.gracefulTimeout, { option: 'gracefulTimeout', env: 'GRACEFUL_SHUTDOWN_TIMEOUT' }, env, BOOT_DEFAULTS.gracefulTimeout, 1),
    healthReportInterval: readMs(options.healthReportInterval, { option: 'healthReportInterval', env: 'CLUSTER_HEALTH_REPORT_INTERVAL' }, env, BOOT_DEFAULTS.healthReportInterval),
    monitoring: enabled && mayFork ? resolveMonitoring(options.monitoring, env) : false,
    onPrimary: options.onPrimary,
    plugin: options.plugin ?? {},
    primaryStore: resolvePrimaryStore(options.primaryStore)
  }
}

function resolveMonitoring (options: MonitoringOptions | false | undefined, env: Env): ResolvedMonitoringOptions | false {
  if (options === false) return false
  if (options === undefined && env.CLUSTER_MONITORING_PORT?.trim().toLowerCase() === 'false') return false
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new FCK_INVALID_OPTION('monitoring', String(options), 'an object or false')
  }
  const given = options ?? {}
  const host = given.host ?? nonEmpty(env.CLUSTER_MONITORING_HOST) ?? BOOT_DEFAULTS.monitoring.host
  if (typeof host !== 'string' || host.trim() === '') throw new FCK_INVALID_OPTION('monitoring.host', JSON.stringify(host), 'a host name or address')
  const token = given.token ?? nonEmpty(env.CLUSTER_MONITORING_TOKEN)
  if (token !== undefined && (typeof token !== 'string' || token.trim() === '')) {
    throw new FCK_INVALID_OPTION('monitoring.token', JSON.stringify(token), 'a non-empty string')
  }
  if (token === undefined && !isLoopback(host)) {
    throw new FCK_MONITORING_UNPROTECTED(host, given.host === undefined ? 'CLUSTER_MONITORING_HOST' : 'monitoring.host')
  }
  return {
    port: readInteger(given.port, { option: 'monitoring.port', env: 'CLUSTER_MONITORING_PORT' }, env, BOOT_DEFAULTS.monitoring.port, 0,
      'a port number from 0 to 65535, or false', 65535),
    host,
    token,
    scrapeTimeout: readMs(given.scrapeTimeout, { option: 'monitoring.scrapeTimeout', env: 'CLUSTER_MONITORING_SCRAPE_TIMEOUT' }, env,
      BOOT_DEFAULTS.monitoring.scrapeTimeout, 1)
  }
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

/** Only these answer from this machine alone; anything else (0.0.0.0, ::, a LAN address) is reachable from outside. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}
