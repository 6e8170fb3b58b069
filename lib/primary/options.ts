import os from 'node:os'
import { checkObject, integer, overriddenVariables, read, rejectUnknown, type Env } from '../common/config.js'
import { FCK_INVALID_OPTION } from '../common/errors.js'
import type { ClusterPluginOptions } from '../worker/options.js'
import type { PrimaryStoreLimits } from '../shared-state/primary-store.js'
import type { LevelName } from './log.js'
import { CANARY_SETTINGS, SICK_SETTINGS } from './policy-settings.js'
import { BOOT_SETTINGS, LIMITS, MONITORING_SETTINGS, PRIMARY_STORE_SETTINGS, type Balancing } from './settings.js'
import { isLoopback, resolveCanary, resolveMonitoring, resolvePrimaryStore, resolveSick, type CanaryOptions, type MonitoringOptions, type ResolvedMonitoringOptions, type ResolvedSick, type SickOptions } from './option-groups.js'

export { isLoopback, type CanaryOptions, type MonitoringOptions, type ResolvedMonitoringOptions, type ResolvedSick, type SickOptions }

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
   * Before killing a worker for a stopped heartbeat, take where its main thread is: SIGUSR1 opens
   * its inspector on a loopback port the kernel picks, the stack is read over it within 1 s, and
   * the kill closes it. No port and no thread while the worker is healthy. Environment: `CLUSTER_HANG_STACK`.
   * @default true
   */
  hangStack?: boolean
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
   * Who spreads connections over the workers. `round-robin`: the primary accepts each one and
   * passes it to a worker (node:cluster's default; every platform). `reuseport`: each worker
   * listens with SO_REUSEPORT and the kernel spreads them, so no connection crosses the primary
   * (Linux, Node >= 22.12, a fixed port and an address, not `localhost`); a slot's socket is kept
   * by the primary across its worker's replacement, so a reload or a crash resets nothing queued
   * on it. `auto`: reuseport where it is supported. Where it is not, round-robin, with one log line
   * saying why. Environment: `CLUSTER_BALANCING`.
   * @default 'round-robin'
   */
  balancing?: Balancing
  /**
   * The primary's monitoring server (the status page at `/`, `/cluster/health`, `/cluster/stats`,
   * `/cluster/events`, `/metrics`, `POST /cluster/restart`); `false` starts none. Environment: `CLUSTER_MONITORING_PORT`
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
   * shared-state backend). A client (an address) past `maxSessionsPerClient` loses its own least
   * recently used session; a full store drops sessions holding no data first, then the least
   * recently used. Environment: `CLUSTER_MAX_SESSIONS_PER_CLIENT`.
   * @default { maxSessions: 100000, maxSessionsPerClient: 100, maxSessionBytes: 67108864, maxCounters: 100000 }
   */
  primaryStore?: Partial<PrimaryStoreLimits>
  /**
   * Replace a worker that is sick, not dead: over an event-loop delay p99 (ms), an event-loop
   * utilisation (0–1) or a heap in use (bytes, or `512M`) for `heartbeats` heartbeats in a row.
   * A CPU profile of its last `profileSeconds` is written to `profileDir` (the newest 10 kept) and
   * named in the incident; then it is replaced like a memory recycle (the new worker first). A
   * replacement sick from its first heartbeats stops this for the slot (health says so).
   * Environment: `CLUSTER_SICK_LOOP_DELAY`, `CLUSTER_SICK_UTILIZATION`, `CLUSTER_SICK_HEAP`, ...
   * @default off (no limit set)
   */
  sick?: Partial<SickOptions>
  /**
   * Canary rollouts: with `enabled`, a reload first starts `workers` workers of the new release
   * beside all the old ones and bakes them for `bake` ms (every worker answers one response in 10
   * with `Connection: close` meanwhile, so held connections reach the canaries). They fail on a
   * crash, a failed start, or a 5xx share, request p99 or event-loop p99 above `ratio` times the
   * old workers' and above its floor; with fewer than `minRequests` requests the bake is extended
   * once, then the reload is aborted. Failed: the canaries are retired and the old workers keep
   * serving (health says the release on disk failed). Passed: the canaries take their slots and
   * the other old workers are replaced one by one. Environment: `CLUSTER_CANARY=true`, `CLUSTER_CANARY_*`.
   * @default { enabled: false, workers: 1, bake: 30000, minRequests: 100, ratio: 2, errorFloor: 0.01, latencyFloor: 50, loopFloor: 20 }
   */
  canary?: Partial<CanaryOptions>
}

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
  hangStack: boolean
  maxMemory: number | undefined
  gracefulTimeout: number
  healthReportInterval: number
  balancing: Balancing
  logLevel: LevelName
  monitoring: ResolvedMonitoringOptions | false
  onPrimary: (() => void | Promise<void>) | undefined
  plugin: ClusterPluginOptions
  primaryStore: PrimaryStoreLimits
  /** Undefined when no limit is set (the policy is off). */
  sick: ResolvedSick | undefined
  /** Undefined when canary rollouts are off. */
  canary: CanaryOptions | undefined
  /** Variables the options override with another value, one line each (see overriddenVariables). */
  warnings: string[]
}

/** The options that are objects or functions, not single settings. */
const KNOWN = [...Object.keys(BOOT_SETTINGS).filter((key) => key !== 'logLevel'), 'monitoring', 'onPrimary', 'plugin', 'primaryStore', 'sick', 'canary']

/** Where the app's port came from, for an error that it is in use. */
export function portSource (env: Env = process.env): string {
  return env.PORT === undefined ? 'the port option or its default' : `PORT=${env.PORT}`
}

/**
 * A worker count past a few per core is a typo or a fork bomb, unless the user says otherwise.
 * `max` is the bound, which a canary's surge counts against too.
 */
function readWorkers (options: BootClusterOptions, env: Env): { workers: number, max: number } {
  const oversubscribe = read(BOOT_SETTINGS.allowOversubscribe, options.allowOversubscribe, env)
  const cores = os.availableParallelism()
  const { maxWorkers, workersPerCore } = LIMITS
  const max = oversubscribe ? maxWorkers : Math.min(maxWorkers, workersPerCore * cores)
  const expected = oversubscribe
    ? `a whole number of workers >= 1 and <= ${max}`
    : `a whole number of workers >= 1 and <= ${max} (${workersPerCore} per core on ${cores} cores; allowOversubscribe or CLUSTER_ALLOW_OVERSUBSCRIBE=true allows up to ${maxWorkers})`
  return { workers: read(BOOT_SETTINGS.workers, options.workers, env, integer(1, max, expected)), max }
}

/**
 * `mayFork`: this process would be the primary if clustering is enabled (not a worker, not under
 * PM2). The monitoring options and the log level are read only by a process that will be the
 * primary: a worker, a single process or a PM2 instance never uses them, so they cannot fail it.
 */
export function resolveBootOptions (options: BootClusterOptions, env: Env, mayFork = true): ResolvedBootOptions {
  checkObject('options', options ?? null)
  rejectUnknown(options, KNOWN)
  if (options.onPrimary !== undefined && typeof options.onPrimary !== 'function') {
    throw new FCK_INVALID_OPTION('onPrimary', String(options.onPrimary), 'a function')
  }
  checkObject('plugin', options.plugin, 'clusterPlugin options (an object)')
  const setting = BOOT_SETTINGS
  const enabled = read(setting.enabled, options.enabled, env)
  const primary = enabled && mayFork
  const { workers, max } = readWorkers(options, env)
  return {
    enabled,
    workers,
    port: read(setting.port, options.port, env),
    host: read(setting.host, options.host, env),
    maxRestarts: read(setting.maxRestarts, options.maxRestarts, env),
    givenUpRetryDelay: read(setting.givenUpRetryDelay, options.givenUpRetryDelay, env),
    restartDelay: read(setting.restartDelay, options.restartDelay, env),
    maxRestartDelay: LIMITS.maxRestartDelay,
    restartWindow: read(setting.restartWindow, options.restartWindow, env),
    readyTimeout: read(setting.readyTimeout, options.readyTimeout, env),
    heartbeatTimeout: read(setting.heartbeatTimeout, options.heartbeatTimeout, env),
    hangStack: read(setting.hangStack, options.hangStack, env),
    maxMemory: read(setting.maxMemory, options.maxMemory, env),
    gracefulTimeout: read(setting.gracefulTimeout, options.gracefulTimeout, env),
    healthReportInterval: read(setting.healthReportInterval, options.healthReportInterval, env),
    balancing: read(setting.balancing, options.balancing, env),
    logLevel: primary ? read(setting.logLevel, undefined, env) : setting.logLevel.default,
    monitoring: primary ? resolveMonitoring(options.monitoring, env) : false,
    onPrimary: options.onPrimary,
    plugin: options.plugin ?? {},
    primaryStore: resolvePrimaryStore(options.primaryStore, env),
    sick: resolveSick(options.sick, env),
    canary: resolveCanary(options.canary, env, workers, max),
    // Said by the process that owns the settings, once: not again by each worker.
    warnings: mayFork
      ? [
          ...overriddenVariables(setting, options, env),
          ...overriddenVariables(PRIMARY_STORE_SETTINGS, options.primaryStore, env),
          ...overriddenVariables(SICK_SETTINGS, options.sick, env),
          ...overriddenVariables(CANARY_SETTINGS, options.canary, env),
          ...(primary && typeof options.monitoring === 'object' ? overriddenVariables(MONITORING_SETTINGS, options.monitoring, env) : [])
        ]
      : []
  }
}
