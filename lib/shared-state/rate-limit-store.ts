import type { Redis } from 'ioredis'
import { storeUnavailable } from '../common/errors.js'
import type { StateRequest } from '../common/protocol.js'

export interface Count { current: number, ttl: number }

/** How a window grows once a client is over the limit: @fastify/rate-limit's two settings. */
export interface WindowMode { continueExceeding: boolean, exponentialBackoff: boolean }

/** A counter every worker shares (Redis, or the primary): @fastify/rate-limit's arithmetic. */
export interface SharedCounter {
  incr: (key: string, timeWindow: number, max: number, mode: WindowMode) => Promise<Count>
  /** The count without counting (`increment: false`). */
  read: (key: string) => Promise<Count>
}

// The arithmetic of @fastify/rate-limit's own Redis store (a fixed window from the first hit;
// continueExceeding restarts it on every hit over the limit; exponentialBackoff doubles it per
// hit over), carried here so the kit relies on no file the package does not export.
const INCR = `
local current = redis.call('INCR', KEYS[1])
local timeWindow = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
if current == 1 or (ARGV[3] == 'true' and current > max) then
  redis.call('PEXPIRE', KEYS[1], timeWindow)
elseif ARGV[4] == 'true' and current > max then
  timeWindow = math.min(timeWindow * (2 ^ (current - max - 1)), (2 ^ 53) - 1)
  redis.call('PEXPIRE', KEYS[1], timeWindow)
else
  timeWindow = redis.call('PTTL', KEYS[1])
end
return {current, timeWindow}
`

const READ = `
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(current), ttl}
`

type Scripted = Redis & {
  fckRateLimit: (key: string, timeWindow: number, max: number, continueExceeding: boolean, exponentialBackoff: boolean) => Promise<[number, number]>
  fckRateLimitRead: (key: string) => Promise<[number, number]>
}

export function redisCounter (redis: Redis): SharedCounter {
  const scripted = redis as Scripted
  if (typeof scripted.fckRateLimit !== 'function') {
    redis.defineCommand('fckRateLimit', { numberOfKeys: 1, lua: INCR })
    redis.defineCommand('fckRateLimitRead', { numberOfKeys: 1, lua: READ })
  }
  const count = ([current, ttl]: [number, number]): Count => ({ current, ttl })
  return {
    incr: async (key, timeWindow, max, { continueExceeding, exponentialBackoff }) =>
      count(await scripted.fckRateLimit(key, timeWindow, max, continueExceeding, exponentialBackoff)),
    read: async (key) => count(await scripted.fckRateLimitRead(key))
  }
}

export function primaryCounter (ask: (request: StateRequest) => Promise<unknown>): SharedCounter {
  return {
    incr: async (key, timeWindow, max, mode) => await ask({ op: 'incr', key, timeWindow, max, ...mode }) as Count,
    read: async (key) => await ask({ op: 'read', key }) as Count
  }
}

/** What @fastify/rate-limit passes a store: its settings (plugin-wide or a route's), and the route. */
interface RateLimitParams { continueExceeding?: boolean, exponentialBackoff?: boolean, routeInfo?: { method?: string, url?: string } }

type Callback = (error: Error | null, result?: Count) => void

/**
 * A @fastify/rate-limit store (it constructs the class itself) over a shared counter. Keys are
 * namespaced, and per route for routes with their own limit, as the official stores do. A failure
 * is reported and passed on as FCK_STORE_UNAVAILABLE: with fail-open (skipOnError) the request
 * goes through, with fail-closed it is answered 503.
 */
export function counterStore (name: string, counter: SharedCounter, onError: (error: Error) => void): new (params: RateLimitParams) => object {
  const settle = (promise: Promise<Count>, callback: Callback): void => {
    promise.then((result) => callback(null, result), (error: Error) => {
      onError(error)
      callback(storeUnavailable(`${name} rate-limit`, error))
    })
  }
  return class CounterStore {
    readonly #mode: WindowMode

    constructor (params: RateLimitParams, private readonly prefix = 'fck:rl:') {
      this.#mode = { continueExceeding: params.continueExceeding === true, exponentialBackoff: params.exponentialBackoff === true }
    }

    incr (key: string, callback: Callback, timeWindow: number, max: number): void {
      settle(counter.incr(this.prefix + key, timeWindow, max, this.#mode), callback)
    }

    read (key: string, callback: Callback): void {
      settle(counter.read(this.prefix + key), callback)
    }

    child (params: RateLimitParams): CounterStore {
      return new CounterStore(params, `${this.prefix}${params.routeInfo?.method ?? ''}${params.routeInfo?.url ?? ''}-`)
    }
  }
}
