import type { WindowMode } from '../common/protocol.js'

/**
 * The window a hit that makes the count `current` sets, or undefined when it leaves the window
 * as it was: @fastify/rate-limit's arithmetic (a fixed window from the first hit, restarted or
 * doubled per hit over the limit). The primary's store and the Redis script (INCR in
 * rate-limit-store.ts, in Lua) apply it to a batch's last hit; `tallied` replays it per hit.
 */
export function windowAfter (current: number, max: number, timeWindow: number, mode: WindowMode): number | undefined {
  if (current > max && mode === 'continue') return timeWindow
  if (current > max && mode === 'backoff') return Math.min(timeWindow * 2 ** (current - max - 1), Number.MAX_SAFE_INTEGER)
  if (current === 1) return timeWindow
  return undefined
}
