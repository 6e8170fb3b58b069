import type { FastifyRequest } from 'fastify'
import { integer, ms, oneOf, port, read, rejectUnknown, type Env, type Setting } from '../common/config.js'
import { FCK_INVALID_OPTION } from '../common/errors.js'
import { DEFAULT_PER_CLIENT } from './session-stores.js'

// The shared-state options of clusterPlugin (Redis, rate limits, sessions). Their types are the
// kit's own, not the official plugins': importing those would give every app that uses the kit
// their type augmentations (`request.session`, `fastify.rateLimit`...), used or not. An app that
// uses sessions or rate limits opts in with `import 'fastify-cluster-kit/session'` or
// `'fastify-cluster-kit/rate-limit'`, which load the official plugins' types.

/** Where cluster-wide state (rate limits, sessions) lives. */
export type SharedStateBackend = 'redis' | 'primary' | 'memory'

/** A Redis URL (`redis://`, `rediss://`) or ioredis options (`host`, `port`, `password`, `tls`...). */
export type RedisConfig = string | Record<string, unknown>

type PerRequest<T> = T | ((request: FastifyRequest, key: string) => T | Promise<T>)

/** @fastify/rate-limit's plugin options; the kit provides the store. */
export interface RateLimitOptions {
  global?: boolean
  max?: PerRequest<number>
  timeWindow?: PerRequest<number | string>
  ban?: number
  cache?: number
  allowList?: string[] | ((request: FastifyRequest, key: string) => boolean | Promise<boolean>)
  nameSpace?: string
  keyGenerator?: (request: FastifyRequest) => string | number | Promise<string | number>
  errorResponseBuilder?: (request: FastifyRequest, context: { statusCode: number, ban: boolean, after: string, max: number, ttl: number }) => object
  enableDraftSpec?: boolean
  addHeaders?: Partial<Record<'x-ratelimit-limit' | 'x-ratelimit-remaining' | 'x-ratelimit-reset' | 'retry-after', boolean>>
  addHeadersOnExceeding?: Partial<Record<'x-ratelimit-limit' | 'x-ratelimit-remaining' | 'x-ratelimit-reset', boolean>>
  continueExceeding?: boolean
  exponentialBackoff?: boolean
  onExceeding?: (request: FastifyRequest, key: string) => void
  onExceeded?: (request: FastifyRequest, key: string) => void
  onBanReach?: (request: FastifyRequest, key: string) => void
  hook?: 'onRequest' | 'preParsing' | 'preValidation' | 'preHandler'
  ipv6Subnet?: number
}

/** @fastify/session's options; the kit registers @fastify/cookie and provides the store unless `store` is given. */
export interface SessionOptions {
  secret: string | string[]
  algorithm?: string
  cookieName?: string
  cookiePrefix?: string
  cookie?: {
    path?: string
    maxAge?: number
    httpOnly?: boolean
    secure?: boolean | 'auto'
    expires?: Date | null
    sameSite?: boolean | 'lax' | 'strict' | 'none'
    domain?: string
    partitioned?: boolean
    priority?: 'low' | 'medium' | 'high'
  }
  /** A @fastify/session store (`get`, `set`, `destroy` with callbacks). */
  store?: { get: (...args: any[]) => void, set: (...args: any[]) => void, destroy: (...args: any[]) => void }
  /** @default false (the kit's default: a session is stored once a request puts data in it) */
  saveUninitialized?: boolean
  rolling?: boolean
  idGenerator?: (request?: FastifyRequest) => string
}

export interface SharedStateOptions {
  /**
   * Redis for cluster-wide rate limits and sessions: a URL or ioredis options. Environment:
   * `REDIS_URL`, else `REDIS_HOST` + `REDIS_PORT`. Without it, bootCluster's primary holds them.
   * Needs the `ioredis` package.
   * @default undefined
   */
  redis?: RedisConfig
  /**
   * @fastify/rate-limit options; the plugin registers it with the shared backend's store.
   * Needs the `@fastify/rate-limit` package.
   * @default undefined (no rate limit)
   */
  rateLimit?: RateLimitOptions
  /**
   * @fastify/session options (and registers @fastify/cookie); the shared backend's store
   * unless `session.store` is given. Needs `@fastify/session` and `@fastify/cookie`.
   * @default undefined (no sessions)
   */
  session?: SessionOptions
  /**
   * Where rate limits and sessions live: `redis` when Redis is configured, else `primary` under
   * bootCluster, else `memory`. `memory` can be forced (limits per worker, sessions lost when a
   * request lands on another worker); the others need Redis or a bootCluster primary.
   * @default chosen as above
   */
  sharedState?: SharedStateBackend
  /**
   * When the rate-limit store cannot answer: let the request through (`fail-open`, logged and
   * counted) or answer 503 (`fail-closed`). Sessions always answer 503.
   * @default 'fail-open'
   */
  onStoreError?: 'fail-open' | 'fail-closed'
  /**
   * Milliseconds a store may take: Redis connect and command timeout, the primary's answer.
   * @default 500
   */
  storeTimeout?: number
}

/** The shared-state settings that are single values (see lib/common/config.ts). */
export const SHARED_SETTINGS = {
  redis: {
    option: 'redis',
    env: 'REDIS_URL',
    envText: '`REDIS_URL`, or `REDIS_HOST` + `REDIS_PORT`',
    kind: {
      expected: 'a redis:// or rediss:// URL',
      expectedInCode: 'a redis:// or rediss:// URL, or ioredis options',
      parse: (raw, fromEnv) => typeof raw === 'string'
        ? isRedisUrl(raw) ? raw : undefined
        : !fromEnv && typeof raw === 'object' && raw !== null ? raw as Record<string, unknown> : undefined
    },
    default: undefined,
    shown: 'none',
    doc: 'Redis for rate limits and sessions (needs `ioredis`); without it the bootCluster primary holds them',
    secret: true
  } satisfies Setting<RedisConfig | undefined>,
  redisPort: {
    env: 'REDIS_PORT',
    kind: port(1),
    default: 6379,
    shown: '6379',
    doc: 'the port REDIS_HOST is reached on'
  } satisfies Setting<number>,
  sharedState: {
    option: 'sharedState',
    kind: oneOf(['redis', 'primary', 'memory'] as const),
    default: undefined,
    shown: 'redis with Redis, else primary under bootCluster, else memory',
    doc: 'force where rate limits and sessions live; redis needs Redis, primary a bootCluster primary'
  } satisfies Setting<SharedStateBackend | undefined>,
  onStoreError: {
    option: 'onStoreError',
    kind: oneOf(['fail-open', 'fail-closed'] as const),
    default: 'fail-open',
    shown: 'fail-open',
    doc: 'a rate-limit store that cannot answer lets the request through (logged, counted) or answers 503'
  } satisfies Setting<'fail-open' | 'fail-closed'>,
  storeTimeout: {
    option: 'storeTimeout',
    kind: ms(1),
    default: 500,
    shown: '500',
    doc: 'Redis connect and command timeout, and how long a worker waits for the primary\'s store'
  } satisfies Setting<number>
}

/**
 * Sessions one client address keeps, in the primary's store (`primaryStore.maxSessionsPerClient`
 * of bootCluster) and in Redis (read by each worker from the variable).
 */
export const SESSIONS_PER_CLIENT = {
  env: 'CLUSTER_MAX_SESSIONS_PER_CLIENT',
  kind: integer(1),
  default: DEFAULT_PER_CLIENT,
  shown: String(DEFAULT_PER_CLIENT),
  doc: 'sessions one client address keeps (the primary\'s store, Redis); past it that client loses its own least recently used (Redis: oldest)'
} satisfies Setting<number>

export const SHARED_KEYS = ['redis', 'rateLimit', 'session', 'sharedState', 'onStoreError', 'storeTimeout'] as const

/** The options each official plugin reads; the kit sets `store`/`redis`/`skipOnError` of the rate limit itself. */
const RATE_LIMIT_KEYS = ['global', 'max', 'timeWindow', 'ban', 'cache', 'allowList', 'nameSpace', 'keyGenerator', 'errorResponseBuilder',
  'enableDraftSpec', 'addHeaders', 'addHeadersOnExceeding', 'continueExceeding', 'exponentialBackoff', 'onExceeding', 'onExceeded',
  'onBanReach', 'hook', 'ipv6Subnet']
const SESSION_KEYS = ['secret', 'algorithm', 'cookieName', 'cookiePrefix', 'cookie', 'store', 'saveUninitialized', 'rolling', 'idGenerator']

/** An official plugin ignores keys it does not know: a typo (`timewindow`) would loosen a limit unseen. */
function checkKeys (name: string, value: object | undefined, known: string[], plugin: string): void {
  if (value === undefined) return
  if (typeof value !== 'object' || value === null) throw new FCK_INVALID_OPTION(name, String(value), `${plugin} options (an object)`)
  const provided = name === 'rateLimit' ? Object.keys(value).find((key) => ['store', 'redis', 'skipOnError'].includes(key)) : undefined
  if (provided !== undefined) {
    throw new FCK_INVALID_OPTION(`${name}.${provided}`, 'an unknown option',
      'none of store, redis, skipOnError: clusterPlugin provides the store (see sharedState, redis and onStoreError)')
  }
  rejectUnknown(value, known, `${name}.`)
}

export interface ResolvedSharedState {
  backend: SharedStateBackend | undefined
  redis: RedisConfig | undefined
  /** Where `redis` came from (the option, REDIS_URL, REDIS_HOST), for error messages. */
  redisSource: string
  /**
   * Start even when Redis does not answer (readiness then says so): true for a worker that
   * bootCluster restarts in a running cluster; a first start fails fast instead, since a Redis
   * that is not there at deploy time is most often a wrong setting.
   */
  startWithoutRedis: boolean
  rateLimit: RateLimitOptions | undefined
  session: SessionOptions | undefined
  onStoreError: 'fail-open' | 'fail-closed'
  storeTimeout: number
  /** The bound of sessions per client in Redis (the primary's store reads its own). */
  sessionsPerClient: number
}

export function resolveShared (options: SharedStateOptions, env: Env, underPrimary: boolean): ResolvedSharedState {
  const { rateLimit, session } = options
  const setting = SHARED_SETTINGS
  const onStoreError = read(setting.onStoreError, options.onStoreError, env)
  checkKeys('rateLimit', rateLimit, RATE_LIMIT_KEYS, '@fastify/rate-limit')
  checkKeys('session', session, SESSION_KEYS, '@fastify/session')
  if (rateLimit !== undefined) checkRateLimit(rateLimit)
  return {
    backend: read(setting.sharedState, options.sharedState, env),
    ...resolveRedis(options.redis, env),
    startWithoutRedis: underPrimary && env.CLUSTER_STARTED === 'true',
    rateLimit,
    session,
    onStoreError,
    storeTimeout: read(setting.storeTimeout, options.storeTimeout, env),
    sessionsPerClient: read(SESSIONS_PER_CLIENT, undefined, env)
  }
}

function resolveRedis (option: RedisConfig | undefined, env: Env): Pick<ResolvedSharedState, 'redis' | 'redisSource'> {
  const redis = read(SHARED_SETTINGS.redis, option, env)
  if (redis !== undefined) return { redis, redisSource: option === undefined ? 'REDIS_URL' : 'the redis option' }
  if (env.REDIS_HOST !== undefined && env.REDIS_HOST !== '') {
    return { redis: { host: env.REDIS_HOST, port: read(SHARED_SETTINGS.redisPort, undefined, env) }, redisSource: 'REDIS_HOST and REDIS_PORT' }
  }
  return { redis: undefined, redisSource: 'none' }
}

function isRedisUrl (url: string): boolean {
  try {
    const { protocol, hostname } = new URL(url)
    return (protocol === 'redis:' || protocol === 'rediss:') && hostname !== ''
  } catch {
    return false
  }
}

/** @lukeed/ms's grammar, which @fastify/rate-limit parses `timeWindow` with. */
const DURATION = /^\d*\.?\d+ *(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)?$/i

/**
 * @fastify/rate-limit quietly falls back to its defaults (1000 per minute) for a `max` or
 * `timeWindow` it cannot read, so a typo would loosen the limit: refuse those here.
 */
function checkRateLimit ({ max, timeWindow }: RateLimitOptions): void {
  if (max !== undefined && typeof max !== 'function' && !(Number.isSafeInteger(max) && max >= 0)) {
    throw new FCK_INVALID_OPTION('rateLimit.max', JSON.stringify(max), 'a whole number >= 0 or a function')
  }
  const readable = typeof timeWindow === 'function' || (typeof timeWindow === 'number' && Number.isFinite(timeWindow) && timeWindow > 0) ||
    (typeof timeWindow === 'string' && DURATION.test(timeWindow.trim()))
  if (timeWindow !== undefined && !readable) {
    throw new FCK_INVALID_OPTION('rateLimit.timeWindow', JSON.stringify(timeWindow), "milliseconds, a duration like '1 minute', or a function")
  }
}
