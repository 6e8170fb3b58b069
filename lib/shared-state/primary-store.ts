import type { StateRequest } from '../common/protocol.js'
import type { Tally } from './rate-limit-store.js'
import { windowAfter } from './window.js'

const SWEEP_INTERVAL = 10_000

/** Limits of the primary store (the `primaryStore` option of bootCluster). */
export interface PrimaryStoreLimits {
  /** Sessions held at most, with and without data. */
  maxSessions: number
  /** Sessions one client (the address that created them) holds at most; past it, its own least recently used go. */
  maxSessionsPerClient: number
  /** Bytes of session JSON held at most. */
  maxSessionBytes: number
  /** Rate-limit counters held at most. */
  maxCounters: number
}

/** Why an entry was dropped before its time: its client held too many, or the store was full. */
export type EvictionReason = 'client_limit' | 'store_full'

export interface StoreSize {
  sessions: number
  emptySessions: number
  sessionBytes: number
  counters: number
  /** Clients holding at least one session. */
  clients: number
  limits: PrimaryStoreLimits
  evictions: {
    session: Record<EvictionReason, number>
    empty_session: Record<EvictionReason, number>
    counter: Pick<Record<EvictionReason, number>, 'store_full'>
  }
}

interface StoredSession { data: string, expiresAt: number, client: string, empty: boolean }

/**
 * The primary's shared state: rate-limit counters and sessions that every worker reaches over
 * IPC (the `primary` backend). Counters expire with their window and sessions with their TTL;
 * a sweep drops expired entries, and the limits bound what stays.
 *
 * Who is evicted when a limit is reached, so that no client can sign anyone else out:
 * 1. a client over `maxSessionsPerClient` loses its own least recently used session (a flood
 *    from one address only replaces its own sessions);
 * 2. a full store drops sessions that hold no data first (traffic that never signs in cannot
 *    log out the people who did), then the least recently used across clients (people who keep
 *    using the site stay signed in).
 * Maps keep insertion order, and a read or write moves an entry to the end: the first entry of
 * each map is its least recently used.
 */
export class SharedState {
  readonly #counters = new Map<string, { current: number, resetAt: number }>()
  readonly #sessions = new Map<string, StoredSession>()
  readonly #empty = new Map<string, StoredSession>()
  /** Each client's session keys, least recently used first. */
  readonly #clients = new Map<string, Set<string>>()
  #sessionBytes = 0
  readonly #evictions: StoreSize['evictions'] = {
    session: { client_limit: 0, store_full: 0 },
    empty_session: { client_limit: 0, store_full: 0 },
    counter: { store_full: 0 }
  }

  readonly #sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL).unref()

  constructor (private readonly limits: PrimaryStoreLimits) {}

  handle (request: StateRequest, now = Date.now()): unknown {
    switch (request.op) {
      case 'incr': return this.#incr(request, now)
      case 'read': {
        const entry = this.#counters.get(request.key)
        return entry === undefined || entry.resetAt <= now ? { current: 0, ttl: 0 } : { current: entry.current, ttl: entry.resetAt - now }
      }
      case 'session:get': {
        const entry = this.#sessions.get(request.key) ?? this.#empty.get(request.key)
        if (entry === undefined || entry.expiresAt <= now) return null
        this.#touch(request.key, entry)
        return entry.data
      }
      case 'session:set': {
        // A session stays its creator's: a user whose address changes does not move it to another client's count.
        const client = this.#sessions.get(request.key)?.client ?? this.#empty.get(request.key)?.client ?? request.client
        this.#removeSession(request.key)
        this.#addSession(request.key, { data: request.data, expiresAt: now + request.ttl, client, empty: request.empty })
        return null
      }
      case 'session:destroy':
        this.#removeSession(request.key)
        return null
    }
  }

  /** Counts a batch's hits on one key; the window as @fastify/rate-limit's stores keep it (see window.ts). */
  #incr ({ key, hits, timeWindow, max, mode }: Extract<StateRequest, { op: 'incr' }>, now: number): Tally {
    let entry = this.#counters.get(key)
    if (entry === undefined || entry.resetAt <= now) {
      this.#counters.delete(key)
      entry = { current: 0, resetAt: now + timeWindow }
      this.#counters.set(key, entry)
      while (this.#counters.size > this.limits.maxCounters) {
        this.#counters.delete(this.#counters.keys().next().value as string)
        this.#evictions.counter.store_full++
      }
    }
    const ttlBefore = entry.resetAt - now
    entry.current += hits
    const window = windowAfter(entry.current, max, timeWindow, mode)
    if (window !== undefined) entry.resetAt = now + window
    return [entry.current, ttlBefore]
  }

  #addSession (key: string, entry: StoredSession): void {
    (entry.empty ? this.#empty : this.#sessions).set(key, entry)
    this.#sessionBytes += entry.data.length
    let keys = this.#clients.get(entry.client)
    if (keys === undefined) this.#clients.set(entry.client, keys = new Set())
    keys.add(key)
    const { maxSessions, maxSessionsPerClient, maxSessionBytes } = this.limits
    while (keys.size > maxSessionsPerClient) this.#evict(keys.values().next().value as string, 'client_limit')
    while (this.#sessions.size + this.#empty.size > maxSessions || this.#sessionBytes > maxSessionBytes) {
      const oldest = (this.#empty.size > 0 ? this.#empty : this.#sessions).keys().next()
      if (oldest.done === true) break
      this.#evict(oldest.value, 'store_full')
    }
  }

  /** Moves a session to the end of its map and of its client's keys: the most recently used. */
  #touch (key: string, entry: StoredSession): void {
    const map = entry.empty ? this.#empty : this.#sessions
    map.delete(key)
    map.set(key, entry)
    const keys = this.#clients.get(entry.client) as Set<string>
    keys.delete(key)
    keys.add(key)
  }

  #removeSession (key: string): StoredSession | undefined {
    const entry = this.#sessions.get(key) ?? this.#empty.get(key)
    if (entry === undefined) return undefined
    ;(entry.empty ? this.#empty : this.#sessions).delete(key)
    this.#sessionBytes -= entry.data.length
    const keys = this.#clients.get(entry.client) as Set<string>
    keys.delete(key)
    if (keys.size === 0) this.#clients.delete(entry.client)
    return entry
  }

  #evict (key: string, reason: EvictionReason): void {
    const entry = this.#removeSession(key)
    if (entry !== undefined) this.#evictions[entry.empty ? 'empty_session' : 'session'][reason]++
  }

  #sweep (now = Date.now()): void {
    for (const [key, entry] of this.#counters) if (entry.resetAt <= now) this.#counters.delete(key)
    for (const map of [this.#sessions, this.#empty]) {
      for (const [key, entry] of map) if (entry.expiresAt <= now) this.#removeSession(key)
    }
  }

  size (): StoreSize {
    return {
      sessions: this.#sessions.size,
      emptySessions: this.#empty.size,
      sessionBytes: this.#sessionBytes,
      counters: this.#counters.size,
      clients: this.#clients.size,
      limits: { ...this.limits },
      evictions: structuredClone(this.#evictions)
    }
  }

  stop (): void {
    clearInterval(this.#sweeper)
  }
}
