import type { CanaryOptions } from '../options.js'
import type { BakeSide, CanaryVerdict } from '../types.js'
import type { WorkerEntry } from './slot.js'

interface Tally { requests: number, errors: number, weightedLatency: number, loopSum: number, beats: number }

const percent = (share: number): string => `${(share * 100).toFixed(1)}%`
const millis = (ms: number): string => `${Math.round(ms)} ms`

/**
 * What the canaries and the old workers did over one bake, from their heartbeats (each carries
 * its requests and 5xx since start, and its window's request p99 and event-loop p99), and the
 * verdict on the canaries. Both sides are counted over the same window, so a burst of load or a
 * slow database shows on both and cancels out in the ratios.
 */
export class Bake {
  readonly started = Date.now()
  readonly #canaries: ReadonlySet<WorkerEntry>
  /** Each worker's totals at its last heartbeat (at the bake's start for the first). */
  readonly #seen = new Map<WorkerEntry, { total: number, errors: number }>()
  readonly #canary: Tally = { requests: 0, errors: 0, weightedLatency: 0, loopSum: 0, beats: 0 }
  readonly #old: Tally = { requests: 0, errors: 0, weightedLatency: 0, loopSum: 0, beats: 0 }

  constructor (canaries: readonly WorkerEntry[], old: readonly WorkerEntry[]) {
    this.#canaries = new Set(canaries)
    // What a worker served before the bake began is not judged.
    for (const entry of [...canaries, ...old]) {
      this.#seen.set(entry, { total: entry.sample?.requests.total ?? 0, errors: entry.sample?.requests.errors ?? 0 })
    }
  }

  /** Requests the canaries served so far. */
  get canaryRequests (): number {
    return this.#canary.requests
  }

  /** A heartbeat (its sample is on the entry): counted when it is from a worker in the bake. */
  heard (entry: WorkerEntry): void {
    const seen = this.#seen.get(entry)
    const { sample } = entry
    if (seen === undefined || sample === undefined) return
    const tally = this.#canaries.has(entry) ? this.#canary : this.#old
    const requests = Math.max(0, sample.requests.total - seen.total)
    tally.requests += requests
    tally.errors += Math.max(0, sample.requests.errors - seen.errors)
    tally.weightedLatency += sample.requests.latencyP99 * requests
    tally.loopSum += sample.eventLoop.p99
    tally.beats++
    this.#seen.set(entry, { total: sample.requests.total, errors: sample.requests.errors })
  }

  /**
   * The verdict, in words and numbers, or `extend` (once) when the canaries served fewer than
   * `minRequests`. `lost`: why a canary was lost during the bake (a crash, a hang), which fails it
   * whatever the numbers say.
   */
  judge (options: CanaryOptions, { lost, extended }: { lost: string | undefined, extended: boolean }): CanaryVerdict | 'extend' {
    const canary = side(this.#canary)
    const old = side(this.#old)
    const verdict = (passed: boolean, reason: string): CanaryVerdict => ({ passed, reason, bakeMs: Date.now() - this.started, canary, old })
    if (lost !== undefined) return verdict(false, lost)
    if (canary.requests < options.minRequests) {
      if (!extended) return 'extend'
      return verdict(false, `the canaries served ${canary.requests} of the ${options.minRequests} requests needed to judge them (canary.minRequests), in a bake extended once`)
    }
    const rules: Array<[string, number, number, number, (value: number) => string]> = [
      ['5xx share', canary.errorShare, old.errorShare, options.errorFloor, percent],
      ['request p99', canary.latencyP99, old.latencyP99, options.latencyFloor, millis],
      ['event-loop delay p99', canary.loopP99, old.loopP99, options.loopFloor, millis]
    ]
    const seconds = Math.round((Date.now() - this.started) / 1000)
    for (const [name, value, before, floor, show] of rules) {
      const limit = Math.max(options.ratio * before, floor)
      if (value > limit) {
        return verdict(false, `canary ${name} ${show(value)} over ${canary.requests} requests in ${seconds} s is above ${show(limit)} ` +
          `(${options.ratio} × the old workers' ${show(before)} over ${old.requests}, floor ${show(floor)})`)
      }
    }
    return verdict(true, `canary passed over ${canary.requests} requests: ` +
      rules.map(([name, value, before, , show]) => `${name} ${show(value)} (old workers ${show(before)})`).join(', '))
  }
}

/** A failed verdict before any bake (a canary failed to start). */
export function unbaked (reason: string): CanaryVerdict {
  const none = { requests: 0, errorShare: 0, latencyP99: 0, loopP99: 0 }
  return { passed: false, reason, bakeMs: 0, canary: none, old: none }
}

function side ({ requests, errors, weightedLatency, loopSum, beats }: Tally): BakeSide {
  return {
    requests,
    errorShare: requests === 0 ? 0 : errors / requests,
    latencyP99: requests === 0 ? 0 : weightedLatency / requests,
    loopP99: beats === 0 ? 0 : loopSum / beats
  }
}
