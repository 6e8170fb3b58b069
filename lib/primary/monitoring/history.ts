import type { ClusterStats } from '../types.js'

/** How far back the status page's charts reach. */
export const HISTORY_SPAN = 15 * 60_000
/** Points kept whatever the interval: a short sampleInterval shortens the span instead. */
export const MAX_POINTS = 900

export interface HistoryPoint {
  /** Epoch ms. */
  t: number
  /** Per worker: requests/s since the previous point (null for a new worker), window p99 latency and event-loop delay (ms), RSS (bytes). */
  workers: Array<{ id: string, pid: number | null, rps: number | null, latencyP99: number | null, loopP99: number | null, rss: number | null }>
}

/**
 * The last HISTORY_SPAN of the cluster's samples, one point per `interval`, in a ring of at most
 * MAX_POINTS: what the status page draws, bounded whatever runs how long.
 */
export class History {
  readonly capacity: number
  readonly #points: HistoryPoint[] = []
  #next = 0
  /** Per slot: the request total and time at the previous point, for requests/s. */
  readonly #previous = new Map<string, { pid: number | null, total: number, t: number }>()

  constructor (readonly interval: number) {
    this.capacity = Math.min(MAX_POINTS, Math.ceil(HISTORY_SPAN / interval))
  }

  /**
   * Once the ring is full the oldest point's objects are rewritten in place: at a short
   * sampleInterval a ring of new objects would turn over objects old enough to have been promoted,
   * garbage only a full GC frees, and the primary's heap would climb until one ran.
   */
  add (stats: ClusterStats, t = Date.now()): HistoryPoint {
    const full = this.#points.length === this.capacity
    const point: HistoryPoint = full ? this.#points[this.#next] as HistoryPoint : { t, workers: [] }
    if (!full) this.#points.push(point)
    this.#next = (this.#next + 1) % this.capacity
    point.t = t
    point.workers.length = Math.min(point.workers.length, stats.workers.length)
    stats.workers.forEach(({ id, pid, requests, eventLoop, memory }, i) => {
      const previous = this.#previous.get(id)
      const total = requests?.total
      const rps = total === undefined || previous === undefined || previous.pid !== pid || t <= previous.t
        ? null
        : Math.round((total - previous.total) * 1000 / (t - previous.t) * 10) / 10
      if (total !== undefined) {
        if (previous === undefined) this.#previous.set(id, { pid, total, t })
        else Object.assign(previous, { pid, total, t })
      }
      const worker = { id, pid, rps, latencyP99: requests?.latencyP99 ?? null, loopP99: eventLoop?.p99 ?? null, rss: memory?.rss ?? null }
      const kept = point.workers[i]
      if (kept === undefined) point.workers.push(worker)
      else Object.assign(kept, worker)
    })
    return point
  }

  /** Oldest first. */
  points (): HistoryPoint[] {
    return this.#points.length < this.capacity ? [...this.#points] : [...this.#points.slice(this.#next), ...this.#points.slice(0, this.#next)]
  }
}
