import type { PrimaryLogger } from '../log.js'
import { HandoffRescue } from './handoff.js'
import { OrphanGuard } from './orphan-guard.js'
import type { WorkerEntry } from './slot.js'

/**
 * Every worker process the primary has, whatever its slot or role: the orphan guard always knows
 * their pids (so none outlives a killed primary), and connections the primary handed to one that
 * died unanswered go to a live one (see handoff.ts).
 */
export class WorkerSet implements Iterable<WorkerEntry> {
  readonly #entries = new Set<WorkerEntry>()
  readonly #rescue = new HandoffRescue()
  #guard: OrphanGuard | undefined

  constructor (private readonly log: PrimaryLogger) {}

  [Symbol.iterator] (): Iterator<WorkerEntry> {
    return this.#entries[Symbol.iterator]()
  }

  /** Starts the orphan guard (at the cluster's start; it is a process of its own). */
  guard (): void {
    this.#guard = new OrphanGuard(this.log)
  }

  /** The orphan guard's pid, for stats. */
  get guardPid (): number | undefined {
    return this.#guard?.pid
  }

  add (entry: WorkerEntry): void {
    this.#entries.add(entry)
    this.#updateGuard()
    this.#rescue.watch(entry.worker)
  }

  /** It listens: connections can be handed to it. */
  ready (entry: WorkerEntry): void {
    this.#rescue.adopt(entry.worker)
  }

  /** It exited: what was handed to it and never taken goes to a live worker, or waits for the next. */
  delete (dead: WorkerEntry): void {
    this.#entries.delete(dead)
    this.#updateGuard()
    const heir = [...this.#entries].find((entry) => entry.readyAt !== undefined && entry.role !== 'retiring' && entry.worker.isConnected())
    const count = this.#rescue.release(dead.worker, heir?.worker)
    if (count > 0) {
      this.log.warn({ workerId: String(dead.slot.id), workerPid: dead.worker.process.pid, heir: heir?.worker.process.pid },
        `${count} connection(s) being handed to the dead worker ${heir === undefined ? 'wait for the next ready worker' : 'sent to another worker'}`)
    }
  }

  /** The cluster stopped: nothing is left to hand over, and nothing to guard. */
  stop (): void {
    this.#rescue.discard()
    this.#guard?.stop()
  }

  #updateGuard (): void {
    this.#guard?.update([...this.#entries].map((entry) => entry.worker.process.pid))
  }
}
