import type { Worker } from 'node:cluster'
import type { WorkerSample } from '../protocol.js'

/**
 * The life of a worker slot. The state always describes the slot's current worker; a
 * replacement being started for it (a candidate, during a reload or recycle) is invisible until
 * it is promoted, and a worker it replaced drains outside the slot.
 *
 *   stopped  → starting                    the first fork, or a replacement after a clean exit
 *   starting → ready                       the worker listens (`fck:ready`)
 *   ready    → ready                       a candidate was promoted in place of a ready worker
 *   any live → draining                    the worker began a graceful shutdown
 *   any live → crashed | stopped           the worker exited (non-zero or signal | code 0)
 *   crashed  → starting                    restart, at once or after back-off
 *   crashed, stopped → given-up            too many early crashes in a row
 *   crashed, stopped, given-up → ready     a candidate (reload) was promoted into an empty slot
 */
export type SlotState = 'starting' | 'ready' | 'draining' | 'stopped' | 'crashed' | 'given-up'

const TRANSITIONS: Readonly<Record<SlotState, readonly SlotState[]>> = {
  starting: ['ready', 'draining', 'crashed', 'stopped'],
  ready: ['ready', 'draining', 'crashed', 'stopped'],
  draining: ['crashed', 'stopped'],
  crashed: ['starting', 'given-up', 'ready', 'stopped'],
  stopped: ['starting', 'given-up', 'ready'],
  'given-up': ['ready', 'stopped']
}

/** One forked process and what the primary knows of it. */
export interface WorkerEntry {
  worker: Worker
  slot: Slot
  role: 'current' | 'candidate' | 'retiring'
  forkedAt: number
  readyAt: number | undefined
  lastHeartbeat: number
  sample: WorkerSample | undefined
  /** Why the primary ended it, or what it said before failing; reported when it exits. */
  failure: string | undefined
  /** Settles when it listens (resolves) or exits first (rejects). */
  ready: Promise<void>
  /** Settles when it has exited. */
  exited: Promise<void>
}

export interface TransitionDetail {
  pid?: number
  code?: number | null
  signal?: string | null
  reason?: string
  delay?: number
}

export type TransitionListener = (slot: Slot, from: SlotState, to: SlotState, detail: TransitionDetail) => void

export class Slot {
  state: SlotState = 'stopped'
  worker: WorkerEntry | undefined
  candidate: WorkerEntry | undefined
  /** Workers started after the first one. */
  restarts = 0
  /** Early crashes in a row; a worker that ran through the restart window resets it. */
  earlyCrashes = 0
  restartTimer: NodeJS.Timeout | undefined

  constructor (readonly id: number, private readonly onTransition: TransitionListener) {}

  transition (to: SlotState, detail: TransitionDetail = {}): void {
    const from = this.state
    if (!TRANSITIONS[from].includes(to)) throw new Error(`worker slot ${this.id}: no transition from ${from} to ${to}`)
    this.state = to
    this.onTransition(this, from, to, detail)
  }

  get alive (): boolean {
    return this.state === 'ready'
  }
}
