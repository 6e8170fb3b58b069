import type { Redis } from 'ioredis'
import { batched } from '../common/batch.js'
import { storeUnavailable } from '../common/errors.js'
import type { StateRequest, WindowMode } from '../common/protocol.js'
import { windowAfter } from './window.js'

export interface Count { current: number, ttl: number }

/** `hits` hits on one key, counted together: what one batch asks of the store per key. */
export type Hits = Omit<Extract<StateRequest, { op: 'incr' }>, 'op'>

/** The store's answer to Hits: the count after them, and the window's ttl (ms) before them. */
export type Tally = [current: number, ttlBefore: number]

/** A counter every worker shares (Redis, or the primary): @fastify/rate-limit's arithmetic. */
export interface SharedCounter {
  incr: (key: string, timeWindow: number, max: number, mode: WindowMode) => Promise<Count>
  /** The count without counting (`increment: false`). */
  read: (key: string) => Promise<Count>
}

type Increment = Omit<Hits, 'hits'>

/**
 * A counter whose `incr` calls made in one turn of the event loop reach the store as one call
 * (see batch.ts), with the hits on one key summed: a client sending many requests at once costs
 * the store one increment per batch. Each hit still gets the count and ttl it would have got
 * alone, in the order the hits came, so limits stay exact.
 */
export function tallied (count: (batch: Hits[]) => Promise<Tally[]>): SharedCounter['incr'] {
  const incr = batched(async (batch: Increment[]): Promise<Count[]> => {
    const groups = new Map<string, Hits>()
    const groupOf = batch.map(({ key, timeWindow, max, mode }) => {
      let group = groups.get(key)
      // The same key with other settings (a limit computed per request) is a group of its own.
      if (group !== undefined && (group.timeWindow !== timeWindow || group.max !== max || group.mode !== mode)) {
        const id = `${key}\n${timeWindow}\n${max}\n${mode}`
        group = groups.get(id)
        if (group === undefined) groups.set(id, group = { key, hits: 0, timeWindow, max, mode })
      } else if (group === undefined) {
        groups.set(key, group = { key, hits: 0, timeWindow, max, mode })
      }
      group.hits++
      return group
    })
    const list = [...groups.values()]
    const tallies = await count(list)
    // Replays each group's hits from the store's state before them, in the order they came.
    const replay = new Map(list.map((group, i) => {
      const [current, ttlBefore] = tallies[i] as Tally
      return [group, { current: current - group.hits, ttl: ttlBefore }]
    }))
    return groupOf.map((group) => {
      const state = replay.get(group) as Count
      state.current++
      state.ttl = windowAfter(state.current, group.max, group.timeWindow, group.mode) ?? state.ttl
      return { ...state }
    })
  })
  return (key, timeWindow, max, mode) => incr({ key, timeWindow, max, mode })
}

// One call counts a whole batch (see tallied): key i's hits and settings are ARGV[4i-3..4i], its
// Tally out[2i-1..2i]. The window is the last hit's (windowAfter), else the one a new key gets.
const INCR = `
local out = {}
for i, key in ipairs(KEYS) do
  local at = (i - 1) * 4
  local hits = tonumber(ARGV[at + 1])
  local timeWindow = tonumber(ARGV[at + 2])
  local max = tonumber(ARGV[at + 3])
  local mode = ARGV[at + 4]
  local before = redis.call('PTTL', key)
  local current = redis.call('INCRBY', key, hits)
  if current > max and mode == 'continue' then
    redis.call('PEXPIRE', key, timeWindow)
  elseif current > max and mode == 'backoff' then
    redis.call('PEXPIRE', key, math.min(timeWindow * (2 ^ (current - max - 1)), (2 ^ 53) - 1))
  elseif current == hits then
    redis.call('PEXPIRE', key, timeWindow)
  end
  out[#out + 1] = current
  out[#out + 1] = before
end
return out
`

const READ = `
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(current), ttl}
`

type Scripted = Redis & {
  fckRateLimit: (keys: number, ...args: Array<string | number>) => Promise<number[]>
  fckRateLimitRead: (key: string) => Promise<[number, number]>
}

export function redisCounter (redis: Redis): SharedCounter {
  const scripted = redis as Scripted
  if (typeof scripted.fckRateLimit !== 'function') {
    redis.defineCommand('fckRateLimit', { lua: INCR })
    redis.defineCommand('fckRateLimitRead', { numberOfKeys: 1, lua: READ })
  }
  return {
    incr: tallied(async (batch) => {
      const args: Array<string | number> = batch.map((hits) => hits.key)
      for (const { hits, timeWindow, max, mode } of batch) args.push(hits, timeWindow, max, mode)
      const flat = await scripted.fckRateLimit(batch.length, ...args)
      return batch.map((_, i) => [flat[2 * i] as number, flat[2 * i + 1] as number])
    }),
    read: async (key) => {
      const [current, ttl] = await scripted.fckRateLimitRead(key)
      return { current, ttl }
    }
  }
}

/** `send` carries requests to the primary's store (see primary-store.ts) and brings its answers, in order. */
export function primaryCounter (send: (requests: StateRequest[]) => Promise<unknown[]>): SharedCounter {
  const read = batched(send)
  return {
    incr: tallied(async (batch) => await send(batch.map((hits) => ({ op: 'incr', ...hits }))) as Tally[]),
    read: async (key) => await read({ op: 'read', key }) as Count
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
      // @fastify/rate-limit's own stores check continueExceeding first.
      this.#mode = params.continueExceeding === true ? 'continue' : params.exponentialBackoff === true ? 'backoff' : 'fixed'
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
