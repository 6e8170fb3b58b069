import os from 'node:os'
import { boolean, bytes, GRACEFUL_TIMEOUT, integer, ms, oneOf, port, text, type Setting } from '../common/config.js'
import { SESSIONS_PER_CLIENT } from '../shared-state/options.js'
import { LEVEL_NAMES, type LevelName } from './log.js'

// bootCluster's settings, declared once each: options.ts reads them, the CLI reads the monitoring
// ones, and README's configuration table is generated from them.

export const BALANCING_MODES = ['round-robin', 'reuseport', 'auto'] as const
export type Balancing = typeof BALANCING_MODES[number]

/** Fixed by the kit, not settings. */
export const LIMITS = {
  /** The exponential restart back-off stops growing here. */
  maxRestartDelay: 30_000,
  /** Workers per core allowed without allowOversubscribe, and the count no setting goes past. */
  workersPerCore: 4,
  maxWorkers: 1024,
  /** Development runs at most this many workers. */
  developmentWorkers: 2
} as const

/** bootCluster's settings, one declaration each (see lib/common/config.ts). */
export const BOOT_SETTINGS = {
  enabled: {
    option: 'enabled',
    env: 'ENABLE_CLUSTERING',
    kind: boolean,
    default: true,
    defaultFrom: (env) => env.NODE_ENV !== 'test',
    shown: 'true, except with NODE_ENV=test',
    doc: 'fork workers; otherwise the app runs in this one process'
  } satisfies Setting<boolean>,
  workers: {
    option: 'workers',
    env: 'CLUSTER_WORKERS',
    kind: integer(1, LIMITS.maxWorkers, `1 to ${LIMITS.workersPerCore} × cores (up to ${LIMITS.maxWorkers} with allowOversubscribe)`),
    default: 1,
    defaultFrom: (env) => {
      const cores = Math.min(os.availableParallelism(), LIMITS.maxWorkers)
      return env.NODE_ENV === 'production' ? cores : Math.min(LIMITS.developmentWorkers, cores)
    },
    shown: 'with NODE_ENV=production all cores, otherwise at most 2',
    doc: 'number of workers'
  } satisfies Setting<number>,
  allowOversubscribe: {
    option: 'allowOversubscribe',
    env: 'CLUSTER_ALLOW_OVERSUBSCRIBE',
    kind: boolean,
    default: false,
    shown: 'false',
    doc: `allow more than ${LIMITS.workersPerCore} workers per core, for workers that mostly wait`
  } satisfies Setting<boolean>,
  port: {
    option: 'port',
    env: 'PORT',
    kind: port(),
    default: 3000,
    shown: '3000',
    doc: 'port the app listens on (0 picks a free one)'
  } satisfies Setting<number>,
  host: {
    option: 'host',
    env: 'HOST',
    kind: text('a host name or address'),
    default: '0.0.0.0',
    shown: '0.0.0.0',
    doc: 'host the app listens on'
  } satisfies Setting<string>,
  balancing: {
    option: 'balancing',
    env: 'CLUSTER_BALANCING',
    kind: oneOf(BALANCING_MODES),
    default: 'round-robin',
    shown: 'round-robin',
    doc: 'who spreads connections over the workers: the primary (node:cluster round-robin), the kernel (`reuseport`: each worker listens with SO_REUSEPORT; Linux, Node >= 22.12), or `auto` (reuseport where supported); unsupported falls back to round-robin with one log line'
  } satisfies Setting<Balancing>,
  maxRestarts: {
    option: 'maxRestarts',
    env: 'MAX_WORKER_RESTARTS',
    kind: integer(0, 1000),
    default: 10,
    shown: '10',
    doc: 'early crashes in a row before a slot is given up'
  } satisfies Setting<number>,
  givenUpRetryDelay: {
    option: 'givenUpRetryDelay',
    env: 'WORKER_GIVEN_UP_RETRY_DELAY',
    kind: ms(0),
    default: 60_000,
    shown: '60000',
    doc: 'a given-up slot is tried again (one start) this often, so it heals when what failed it is gone; 0 never'
  } satisfies Setting<number>,
  restartDelay: {
    option: 'restartDelay',
    env: 'WORKER_RESTART_DELAY',
    kind: ms(0),
    default: 1000,
    shown: '1000',
    doc: `back-off after an early crash, doubled per crash in a row up to ${LIMITS.maxRestartDelay} ms`
  } satisfies Setting<number>,
  restartWindow: {
    option: 'restartWindow',
    kind: ms(0),
    default: 30_000,
    shown: '30000',
    doc: 'a worker that dies within this time of becoming ready (or before) crashed early; one that ran longer is replaced at once and its count starts again'
  } satisfies Setting<number>,
  readyTimeout: {
    option: 'readyTimeout',
    kind: ms(1),
    default: 30_000,
    shown: '30000',
    doc: 'from fork to listening; past it the worker is killed as a failed start'
  } satisfies Setting<number>,
  heartbeatTimeout: {
    option: 'heartbeatTimeout',
    kind: ms(100),
    default: 15_000,
    shown: '15000',
    doc: 'a ready worker silent this long (blocked event loop) is killed (SIGKILL) and replaced; the plugin\'s heartbeatInterval must be at most half of it'
  } satisfies Setting<number>,
  hangStack: {
    option: 'hangStack',
    env: 'CLUSTER_HANG_STACK',
    kind: boolean,
    default: true,
    shown: 'true',
    doc: 'before that kill, take the blocked thread\'s stack through its inspector (opened on loopback by SIGUSR1, for at most 1 s, closed by the kill)'
  } satisfies Setting<boolean>,
  maxMemory: {
    option: 'maxMemory',
    env: 'MAX_WORKER_MEMORY',
    // Below 64M, maxMemory is under any Fastify worker's own baseline.
    kind: bytes(64 * 2 ** 20),
    default: undefined,
    shown: 'off',
    doc: 'a worker whose RSS (from heartbeats) exceeds it is replaced gracefully, new worker first; a replacement already above it at its first heartbeat stops recycling for its slot (health degraded) instead of looping'
  } satisfies Setting<number | undefined>,
  gracefulTimeout: GRACEFUL_TIMEOUT,
  healthReportInterval: {
    option: 'healthReportInterval',
    env: 'CLUSTER_HEALTH_REPORT_INTERVAL',
    kind: ms(0),
    default: 60_000,
    shown: '60000',
    doc: 'how often the "Cluster Health Report" line is logged; 0 never'
  } satisfies Setting<number>,
  logLevel: {
    env: 'LOG_LEVEL',
    kind: oneOf(LEVEL_NAMES, 'trace, debug, info, warn, error or fatal'),
    default: 'info',
    shown: 'info',
    doc: "the primary's log level (the workers' is their Fastify logger's)"
  } satisfies Setting<LevelName>
}

/** The monitoring server's settings (`monitoring.*`). */
export const MONITORING_SETTINGS = {
  port: {
    option: 'monitoring.port',
    env: 'CLUSTER_MONITORING_PORT',
    kind: {
      expected: 'a port number from 0 to 65535, or false',
      parse: (raw, fromEnv) => fromEnv && typeof raw === 'string' && raw.trim().toLowerCase() === 'false' ? false : port().parse(raw, fromEnv)
    },
    default: 3003,
    shown: '3003',
    doc: 'port of the monitoring server; CLUSTER_MONITORING_PORT=false (or `monitoring: false`) starts none'
  } satisfies Setting<number | false>,
  host: {
    option: 'monitoring.host',
    env: 'CLUSTER_MONITORING_HOST',
    kind: text('a host name or address'),
    default: '127.0.0.1',
    shown: '127.0.0.1',
    doc: 'host it binds; a non-loopback host without a token is refused'
  } satisfies Setting<string>,
  token: {
    option: 'monitoring.token',
    env: 'CLUSTER_MONITORING_TOKEN',
    kind: text('a non-empty string'),
    default: undefined,
    shown: 'none',
    doc: 'bearer token `POST /cluster/restart` requires, and beyond loopback every route but `/cluster/health`',
    secret: true
  } satisfies Setting<string | undefined>,
  scrapeTimeout: {
    option: 'monitoring.scrapeTimeout',
    env: 'CLUSTER_MONITORING_SCRAPE_TIMEOUT',
    kind: ms(1),
    default: 1000,
    shown: '1000',
    doc: 'how long `/metrics` waits for each worker'
  } satisfies Setting<number>,
  sampleInterval: {
    option: 'monitoring.sampleInterval',
    env: 'CLUSTER_MONITORING_SAMPLE_INTERVAL',
    kind: ms(10),
    default: 2000,
    shown: '2000',
    doc: 'how often `/cluster/events` sends a `stats` sample'
  } satisfies Setting<number>
}

/** Limits of the primary's store (`primaryStore.*`). */
export const PRIMARY_STORE_SETTINGS = {
  maxSessions: {
    option: 'primaryStore.maxSessions',
    kind: integer(1),
    default: 100_000,
    shown: '100000',
    doc: 'sessions the primary keeps; past it those holding no data go first, then the least recently used'
  } satisfies Setting<number>,
  maxSessionsPerClient: { ...SESSIONS_PER_CLIENT, option: 'primaryStore.maxSessionsPerClient' } satisfies Setting<number>,
  maxSessionBytes: {
    option: 'primaryStore.maxSessionBytes',
    kind: integer(1),
    default: 64 * 2 ** 20,
    shown: '67108864 (64 MiB)',
    doc: 'bytes of session data the primary keeps'
  } satisfies Setting<number>,
  maxCounters: {
    option: 'primaryStore.maxCounters',
    kind: integer(1),
    default: 100_000,
    shown: '100000',
    doc: 'rate-limit counters the primary keeps'
  } satisfies Setting<number>
}
