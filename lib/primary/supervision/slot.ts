import type { Worker } from 'node:cluster'
import type { WorkerSample } from '../../common/sample.js'
import type { Incident } from '../types.js'

/**
 * The life of a worker slot. The state always describes the slot's current worker; a
 * replacement being started for it (a candidate, during a reload or recycle) is invisible until
 * it is promoted, and a worker it replaced drains outside the slot.
 */
export type SlotState = 'starting' | 'ready' | 'draining' | 'stopped' | 'crashed' | 'given-up'

/**
 * What can happen to a slot. `fork`, `give-up` and `promote` are the supervisor's decisions;
 * the others are news of the current worker.
 *
 * - `fork`: a new current worker is started (first start, restart, retry of a given-up slot)
 * - `listening`: the current worker listens
 * - `promote`: a candidate (reload, recycle) listens and becomes the current worker
 * - `drain`: the current worker began a graceful shutdown (ours, or a signal from outside)
 * - `exit` / `crash`: the current worker exited with code 0 / otherwise (or could not be forked)
 * - `give-up`: too many early crashes in a row
 */
export type SlotEvent = 'fork' | 'listening' | 'promote' | 'drain' | 'exit' | 'crash' | 'give-up'

export const SLOT_STATES: readonly SlotState[] = ['starting', 'ready', 'draining', 'stopped', 'crashed', 'given-up']
export const SLOT_EVENTS: readonly SlotEvent[] = ['fork', 'listening', 'promote', 'drain', 'exit', 'crash', 'give-up']

/** States in which the slot has a current worker. */
const LIVE: ReadonlySet<SlotState> = new Set(['starting', 'ready', 'draining'])

/**
 * The whole transition table, total: every (state, event) pair has an answer, so no news from a
 * worker and no decision of the supervisor can leave a slot in a state the table does not know.
 * News of a worker the slot does not have, and a fork or give-up while it has one, change nothing.
 *
 *   any            --promote-->   ready       a candidate took the slot (the worker it replaced is retired)
 *   stopped, crashed, given-up --fork-->      starting
 *   crashed, stopped --give-up--> given-up
 *   starting       --listening--> ready
 *   starting, ready --drain-->    draining
 *   starting, ready, draining --exit | crash--> stopped | crashed
 */
export function nextState (state: SlotState, event: SlotEvent): SlotState {
  const live = LIVE.has(state)
  switch (event) {
    case 'promote': return 'ready'
    case 'fork': return live ? state : 'starting'
    case 'give-up': return live || state === 'given-up' ? state : 'given-up'
    case 'listening': return state === 'starting' ? 'ready' : state
    case 'drain': return state === 'starting' || state === 'ready' ? 'draining' : state
    case 'exit': return live ? 'stopped' : state
    case 'crash': return live ? 'crashed' : state
  }
}

/** One forked process and what the primary knows of it. */
export interface WorkerEntry {
  worker: Worker
  slot: Slot
  role: 'current' | 'candidate' | 'retiring'
  forkedAt: number
  readyAt: number | undefined
  lastHeartbeat: number
  /** Heartbeats received since it listens. */
  heartbeats: number
  /** Started to replace a worker that used more than maxMemory, or a sick one. */
  replaces: 'memory' | 'sick' | undefined
  /** Heartbeats in a row over a limit of the sick-worker policy, and heartbeats under every limit since it listens. */
  sickBeats: number
  healthyBeats: number
  sample: WorkerSample | undefined
  /** Why the primary ended it, or what it said before failing; reported when it exits. */
  failure: string | undefined
  /** What it said was ending it (an uncaught exception or unhandled rejection), and when. */
  fatal: { at: number, name: string, message: string, stack: string } | undefined
  /** Why a candidate (a canary, a replacement) was lost, when it exited unasked. */
  lost: Incident | undefined
  /** Where its main thread was when the primary killed it for a stopped heartbeat. */
  hungAt: Incident['frames'] | undefined
  /** Giving a CPU profile or heap snapshot (see diagnostics.ts): missed heartbeats do not count meanwhile. */
  diagnosing: boolean
  /** Where its memory cgroup counts OOM kills, and the count when it was forked (Linux). */
  oomKills: { file: string, before: number } | undefined
  /** Settles when it listens (resolves) or exits first (rejects). */
  ready: Promise<void>
  /** Settles when it has exited (or could not be forked). */
  exited: Promise<void>
}

export interface TransitionDetail {
  pid?: number
  code?: number | null
  signal?: string | null
  reason?: string
  delay?: number
  /** Why the worker was lost (a crash, a hang, a kill), for `worker:exit`. */
  incident?: Incident
}

export type TransitionListener = (slot: Slot, from: SlotState, event: SlotEvent, detail: TransitionDetail) => void

/**
 * A worker slot: its state, its workers, and its counters. The counters change only through the
 * methods here (the policies and the supervisor say what happened; the slot counts it), so the
 * meaning of each is written in one place.
 */
export class Slot {
  state: SlotState = 'stopped'
  worker: WorkerEntry | undefined
  candidate: WorkerEntry | undefined
  restartTimer: NodeJS.Timeout | undefined
  #restarts = 0
  #recycles = 0
  #earlyCrashes = 0
  #recyclingStopped: string | undefined
  #sickStopped: string | undefined
  #incidents: { first: Incident, last: Incident } | undefined

  constructor (readonly id: number, private readonly onTransition: TransitionListener) {}

  /** Applies an event; the listener hears every change of state, and every promotion. */
  apply (event: SlotEvent, detail: TransitionDetail = {}): void {
    const from = this.state
    this.state = nextState(from, event)
    // A replacement that listens ends any run of early crashes.
    if (event === 'promote') this.#earlyCrashes = 0
    if (this.state !== from || event === 'promote') this.onTransition(this, from, event, detail)
  }

  /** Workers started in the slot after its worker exited (a crash, an exit, a kill); not a reload's or a recycle's replacement. */
  get restarts (): number { return this.#restarts }
  /** Workers replaced for using more than maxMemory or for being sick. */
  get recycles (): number { return this.#recycles }
  /** Early crashes in a row; a worker that ran through the restart window resets it. */
  get earlyCrashes (): number { return this.#earlyCrashes }
  /** Why memory recycling is off for this slot (its workers start above maxMemory). */
  get recyclingStopped (): string | undefined { return this.#recyclingStopped }
  /** Why replacing sick workers is off for this slot (its workers are sick from their start). */
  get sickStopped (): string | undefined { return this.#sickStopped }
  /** The first and the latest worker the slot lost, and why. */
  get incidents (): { first: Incident, last: Incident } | undefined { return this.#incidents }

  /** Its worker exited: early (a crash within the restart window, or before listening) or after running through it. */
  exited (early: boolean): void {
    this.#earlyCrashes = early ? this.#earlyCrashes + 1 : 0
  }

  /** A worker is started after its worker exited. */
  restarted (): void {
    this.#restarts++
  }

  /** Its worker is being replaced for memory or sickness. */
  recycled (): void {
    this.#recycles++
  }

  /** Stops (with why) or resumes (undefined) memory recycling or sick-worker replacement for the slot. */
  stop (policy: 'recycling' | 'sick', why: string | undefined): void {
    if (policy === 'recycling') this.#recyclingStopped = why
    else this.#sickStopped = why
  }

  /** Keeps a lost worker's incident: the first one stays, the latest replaces the one before. */
  record (incident: Incident): void {
    this.#incidents = { first: this.#incidents?.first ?? incident, last: incident }
  }

  get alive (): boolean {
    return this.state === 'ready'
  }
}
