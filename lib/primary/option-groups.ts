import { checkObject, integer, invalid, read, rejectUnknown, type Env } from '../common/config.js'
import { FCK_MONITORING_UNPROTECTED } from '../common/errors.js'
import type { PrimaryStoreLimits } from '../shared-state/primary-store.js'
import { CANARY_SETTINGS, SICK_SETTINGS } from './policy-settings.js'
import { MONITORING_SETTINGS, PRIMARY_STORE_SETTINGS } from './settings.js'

// bootCluster's option groups (`monitoring`, `primaryStore`, `sick`, `canary`): each an object of settings
// read like the top-level ones (option, else variable, else default), and checked for unknown keys.

export interface SickOptions {
  loopDelay: number | undefined
  utilization: number | undefined
  heapUsed: number | string | undefined
  heartbeats: number
  profileSeconds: number
  profileDir: string
}

export interface ResolvedSick extends SickOptions {
  heapUsed: number | undefined
}

export interface CanaryOptions {
  enabled: boolean
  workers: number
  bake: number
  minRequests: number
  ratio: number
  errorFloor: number
  latencyFloor: number
  loopFloor: number
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
   * Bearer token `POST /cluster/restart` requires; on a host beyond loopback every route but
   * `/cluster/health` requires it (the status page asks for it). Environment: `CLUSTER_MONITORING_TOKEN`.
   * @default undefined (none; only allowed on a loopback host)
   */
  token?: string
  /**
   * Milliseconds `/metrics` waits for each worker's metrics; a worker that does not answer in
   * time counts by its last answer in that scrape and in `cluster_metrics_scrape_failures_total`.
   * Environment: `CLUSTER_MONITORING_SCRAPE_TIMEOUT`.
   * @default 1000
   */
  scrapeTimeout?: number
  /**
   * Milliseconds between the `stats` samples `/cluster/events` sends.
   * Environment: `CLUSTER_MONITORING_SAMPLE_INTERVAL`.
   * @default 2000
   */
  sampleInterval?: number
}

export interface ResolvedMonitoringOptions {
  port: number
  host: string
  token: string | undefined
  scrapeTimeout: number
  sampleInterval: number
}

export function resolvePrimaryStore (given: Partial<PrimaryStoreLimits> = {}, env: Env): PrimaryStoreLimits {
  checkObject('primaryStore', given)
  rejectUnknown(given, Object.keys(PRIMARY_STORE_SETTINGS), 'primaryStore.')
  const { maxSessions, maxSessionsPerClient, maxSessionBytes, maxCounters } = PRIMARY_STORE_SETTINGS
  return {
    maxSessions: read(maxSessions, given.maxSessions, {}),
    maxSessionsPerClient: read(maxSessionsPerClient, given.maxSessionsPerClient, env),
    maxSessionBytes: read(maxSessionBytes, given.maxSessionBytes, {}),
    maxCounters: read(maxCounters, given.maxCounters, {})
  }
}

export function resolveSick (given: Partial<SickOptions> = {}, env: Env): ResolvedSick | undefined {
  checkObject('sick', given)
  rejectUnknown(given, Object.keys(SICK_SETTINGS), 'sick.')
  const setting = SICK_SETTINGS
  const sick = {
    loopDelay: read(setting.loopDelay, given.loopDelay, env),
    utilization: read(setting.utilization, given.utilization, env),
    heapUsed: read(setting.heapUsed, given.heapUsed, env),
    heartbeats: read(setting.heartbeats, given.heartbeats, env),
    profileSeconds: read(setting.profileSeconds, given.profileSeconds, env),
    profileDir: read(setting.profileDir, given.profileDir, env)
  }
  return sick.loopDelay === undefined && sick.utilization === undefined && sick.heapUsed === undefined ? undefined : sick
}

/**
 * The canary settings when `enabled`, otherwise undefined. Canaries are extra to the `workers`, so
 * there are at most as many, and the surge stays within the workers bound `max`.
 */
export function resolveCanary (given: Partial<CanaryOptions> = {}, env: Env, workers: number, max: number): CanaryOptions | undefined {
  checkObject('canary', given)
  rejectUnknown(given, Object.keys(CANARY_SETTINGS), 'canary.')
  const setting = CANARY_SETTINGS
  const enabled = read(setting.enabled, given.enabled, env)
  const room = Math.min(workers, max - workers)
  if (enabled && room < 1) {
    invalid(setting.enabled, given.enabled === undefined, given.enabled ?? env[setting.enabled.env],
      `false while the ${workers} workers are at the bound of ${max}: canaries are extra to them (run fewer workers, or allowOversubscribe)`)
  }
  const surge = integer(1, room, `a whole number >= 1 and <= ${room} (canaries are extra to the ${workers} workers, at most as many, within the bound of ${max})`)
  const canary = {
    enabled,
    workers: read(setting.workers, given.workers, env, enabled ? surge : setting.workers.kind),
    bake: read(setting.bake, given.bake, env),
    minRequests: read(setting.minRequests, given.minRequests, env),
    ratio: read(setting.ratio, given.ratio, env),
    errorFloor: read(setting.errorFloor, given.errorFloor, env),
    latencyFloor: read(setting.latencyFloor, given.latencyFloor, env),
    loopFloor: read(setting.loopFloor, given.loopFloor, env)
  }
  return canary.enabled ? canary : undefined
}

export function resolveMonitoring (options: MonitoringOptions | false = {}, env: Env): ResolvedMonitoringOptions | false {
  if (options === false) return false
  checkObject('monitoring', options, 'an object or false')
  rejectUnknown(options, Object.keys(MONITORING_SETTINGS), 'monitoring.')
  const setting = MONITORING_SETTINGS
  const port = read(setting.port, options.port, env)
  if (port === false) return false
  const host = read(setting.host, options.host, env)
  const token = read(setting.token, options.token, env)
  if (token === undefined && !isLoopback(host)) {
    throw new FCK_MONITORING_UNPROTECTED(host, options.host === undefined ? 'CLUSTER_MONITORING_HOST' : 'monitoring.host')
  }
  return {
    port,
    host,
    token,
    scrapeTimeout: read(setting.scrapeTimeout, options.scrapeTimeout, env),
    sampleInterval: read(setting.sampleInterval, options.sampleInterval, env)
  }
}
/** Only these answer from this machine alone; anything else (0.0.0.0, ::, a LAN address) is reachable from outside. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}
