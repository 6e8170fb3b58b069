import type { ResolvedBootOptions } from '../options.js'
import type { Slot } from './slot.js'

type Options = Pick<ResolvedBootOptions, 'restartDelay' | 'maxRestartDelay' | 'maxRestarts' | 'restartWindow' | 'givenUpRetryDelay'>

/**
 * When a slot whose worker exited gets its next one. A worker that ran through the restart window
 * is replaced at once; early crashes back off exponentially from `restartDelay`, and after
 * `maxRestarts` of them in a row the slot is given up. A given-up slot is tried again every
 * `givenUpRetryDelay` ms (when not 0): what made it fail (a dependency away, a pids limit) may be
 * gone, and a cluster should heal without someone there to reload it.
 */
export class RestartPolicy {
  #stopped = false

  constructor (private readonly options: Options, private readonly start: (slot: Slot, delay: number) => void) {}

  /**
   * The slot's current worker exited (`readyAt` undefined: it never listened). Returns in how many
   * ms the next one starts, or undefined when none will.
   */
  afterExit (slot: Slot, readyAt: number | undefined): number | undefined {
    const { restartDelay, maxRestartDelay, maxRestarts, restartWindow, givenUpRetryDelay } = this.options
    let delay = 0
    const early = readyAt === undefined || Date.now() - readyAt < restartWindow
    slot.exited(early)
    if (early) {
      if (slot.earlyCrashes > maxRestarts) {
        slot.apply('give-up', { reason: `${slot.earlyCrashes} early crashes in a row` })
        if (givenUpRetryDelay === 0) return undefined
        delay = givenUpRetryDelay
      } else {
        delay = Math.min(restartDelay * 2 ** (slot.earlyCrashes - 1), maxRestartDelay)
      }
    }
    clearTimeout(slot.restartTimer)
    slot.restartTimer = setTimeout(() => {
      if (this.#stopped || slot.worker !== undefined) return
      slot.restarted()
      this.start(slot, delay)
    }, delay)
    return delay
  }

  /** The cluster stops: no more restarts. */
  stop (slots: readonly Slot[]): void {
    this.#stopped = true
    for (const slot of slots) clearTimeout(slot.restartTimer)
  }
}
