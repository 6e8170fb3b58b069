import type { StateRequest } from '../common/protocol.js'
import type { Tally } from './rate-limit-store.js'
import { windowAfter } from './window.js'

const SWEEP_INTERVAL = 10_000

/** Limits of the primary store (the `primaryStore` option of bootCluster). */
export interface PrimaryStoreLimits {
  /** Sessions held at most, with and without data. */
  maxSessions: number
  /** Bytes of session JSON held at most. */
  maxSessionBytes: number
  /** Rate-limit counters held at most. */
  maxCounters: number
}

export interface StoreSize {
  sessions: number
  emptySessions: number
  sessionBytes: number
  counters: number
  limits: PrimaryStoreLimits
  evictions: { session: number, empty_session: number, counter: number }
}

interface StoredSession { data: string, expiresAt: number }

/**
 * The primary's shared state: rate-limit counters and sessions that every worker reaches over
 * IPC (the `primary` backend). Counters expire with their window and sessions with their TTL;
 * a sweep drops expired entries, and the limits bound what stays.
 *
 * Sessions that hold no data (only their cookie) are kept apart and evicted first: traffic that
 * never signs in can fill the store with those, and must not log out the people who did.
 * Within each kind the oldest go first (a Map keeps insertion order; a write moves an entry to the end).
 */
export class SharedState {
  readonly #counters = new Map<string, { current: number, resetAt: number }>()
  readonly #sessions = new Map<string, StoredSession>()
  readonly #empty = new Map<string, StoredSession>()
  #sessionBytes = 0
  readonly #evictions = { session: 0, empty_session: 0, counter: 0 }
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
        return entry.data
      }
      case 'session:set':
        this.#removeSession(request.key)
        this.#addSession(request.key, { data: request.data, expiresAt: now + request.ttl }, request.empty)
        return null
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
      while (this.#counters.size > this.limits.maxCounters) this.#evictOldest(this.#counters, 'counter')
    }
    const ttlBefore = entry.resetAt - now
    entry.current += hits
    const window = windowAfter(entry.current, max, timeWindow, mode)
    if (window !== undefined) entry.resetAt = now + window
    return [entry.current, ttlBefore]
  }

  #addSession (key: string, entry: StoredSession, empty: boolean): void {
    (empty ? this.#empty : this.#sessions).set(key, entry)
    this.#sessionBytes += entry.data.length
    const { maxSessions, maxSessionBytes } = this.limits
    while (this.#sessions.size + this.#empty.size > maxSessions || this.#sessionBytes > maxSessionBytes) {
      if (this.#empty.size > 0) this.#evictOldest(this.#empty, 'empty_session')
      else this.#evictOldest(this.#sessions, 'session')
    }
  }

  #removeSession (key: string): void {
    for (const map of [this.#sessions, this.#empty]) {
      const entry = map.get(key)
      if (entry === undefined) continue
      map.delete(key)
      this.#sessionBytes -= entry.data.length
    }
  }

  #evictOldest (map: Map<string, unknown>, kind: keyof StoreSize['evictions']): void {
    const oldest = map.keys().next()
    if (oldest.done === true) return
    if (kind === 'counter') map.delete(oldest.value)
    else this.#removeSession(oldest.value)
    this.#evictions[kind]++
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
      limits: { ...this.limits },
      evictions: { ...this.#evictions }
    }
  }

  stop (): void {
    clearInterval(this.#sweeper)
  }
}
