import type { EventEmitter } from 'node:events'
import { FCK_RELOAD_IN_PROGRESS, FCK_SHUTTING_DOWN } from '../../common/errors.js'
import { sendToWorker } from '../../common/protocol.js'
import type { PrimaryLogger } from '../log.js'
import type { ClusterEvents, LastReload, ReloadResult } from '../types.js'
import type { Slot, WorkerEntry } from './slot.js'

/** Past the workers' own gracefulTimeout, the primary waits this much longer before SIGKILL. */
const KILL_MARGIN = 2000

/** What a rollout needs of the supervisor. */
export interface RolloutHost {
  slots: readonly Slot[]
  /** Forks a worker for the slot in the given role (throws when the system refuses the fork). */
  fork: (slot: Slot, role: WorkerEntry['role']) => WorkerEntry
  /** The cluster is stopping: no replacement may start or be promoted. */
  stopping: () => boolean
  /** Where the reload:* events go (the supervisor, an EventEmitter). */
  events: Pick<EventEmitter<ClusterEvents>, 'emit'>
  gracefulTimeout: number
  log: PrimaryLogger
}

/**
 * How workers are replaced: one slot's (`replace`: a candidate starts, listens, is promoted, and
 * the worker it replaces drains), or every slot's in turn (`reload`, the rolling reload, one at a
 * time, refused while one runs). Memory recycling and sick-worker replacement use `replace`.
 *
 *   idle --reload--> replacing slot 0 --> ... --> replacing slot N-1 --> idle (done)
 *                    any replacement that fails --> idle (failed: the slots not yet replaced keep their workers)
 */
export class Rollout {
  #running: Promise<ReloadResult> | undefined
  #last: LastReload | undefined

  constructor (private readonly host: RolloutHost) {}

  /** How the last rolling reload ended, undefined before the first. */
  get last (): LastReload | undefined {
    return this.#last
  }

  get running (): boolean {
    return this.#running !== undefined
  }

  /** Starts a rolling reload; throws at once (not later) when one runs or the cluster stops. */
  begin (): Promise<ReloadResult> {
    if (this.host.stopping()) throw new FCK_SHUTTING_DOWN()
    if (this.#running !== undefined) throw new FCK_RELOAD_IN_PROGRESS()
    this.#running = this.#reload().finally(() => { this.#running = undefined })
    return this.#running
  }

  async #reload (): Promise<ReloadResult> {
    const { host } = this
    const started = Date.now()
    host.events.emit('reload:start', { slots: host.slots.length })
    host.log.info('rolling reload: start')
    try {
      for (const slot of host.slots) await this.replace(slot, 'rolling reload')
      const workers = host.slots.map((slot) => ({ id: String(slot.id), pid: slot.worker?.worker.process.pid ?? 0 }))
      const result = { ok: true as const, durationMs: Date.now() - started, workers }
      this.#last = { at: new Date().toISOString(), ok: true, durationMs: result.durationMs }
      host.log.info(result, 'rolling reload: done')
      host.events.emit('reload:done', result)
      return result
    } catch (error) {
      const result = { ok: false as const, durationMs: Date.now() - started, reason: (error as Error).message }
      this.#last = { at: new Date().toISOString(), ...result }
      host.log.error(result, 'rolling reload failed; the workers not yet replaced keep serving')
      host.events.emit('reload:failed', result)
      return result
    }
  }

  /**
   * Starts a candidate for the slot and, once it listens, promotes it and retires the worker it
   * replaces, whatever that one is doing (starting, serving, draining on its own): in every state
   * the slot ends with the candidate as its one current worker.
   */
  async replace (slot: Slot, reason: string, replaces?: WorkerEntry['replaces']): Promise<void> {
    if (this.host.stopping()) throw new FCK_SHUTTING_DOWN()
    let candidate: WorkerEntry
    try {
      candidate = this.host.fork(slot, 'candidate')
      candidate.replaces = replaces
    } catch (error) {
      throw new Error(`worker ${slot.id}: replacement ${(error as Error).message}`)
    }
    slot.candidate = candidate
    try {
      await candidate.ready
    } catch (error) {
      throw new Error(`worker ${slot.id}: replacement ${candidate.failure ?? (error as Error).message}`)
    } finally {
      if (slot.candidate === candidate) slot.candidate = undefined
    }
    if (this.host.stopping()) throw new FCK_SHUTTING_DOWN()
    const old = slot.worker
    clearTimeout(slot.restartTimer)
    candidate.role = 'current'
    slot.worker = candidate
    slot.apply('promote', { pid: candidate.worker.process.pid, reason })
    if (old !== undefined) await this.retire(old, reason)
  }

  /** The cluster stops: every worker drains at once, stragglers are killed; true when all exited with code 0. */
  async drainAll (entries: WorkerEntry[]): Promise<boolean> {
    let clean = true
    for (const entry of entries) {
      entry.worker.once('exit', (code: number | null) => { if (code !== 0) clean = false })
      if (entry.readyAt !== undefined) sendToWorker(entry.worker, { type: 'fck:shutdown', reason: 'cluster shutdown' })
      else entry.worker.process.kill('SIGTERM')
    }
    const killer = setTimeout(() => {
      for (const entry of entries) {
        if (entry.worker.process.exitCode !== null || entry.worker.process.signalCode !== null) continue
        this.host.log.error({ workerId: String(entry.slot.id), workerPid: entry.worker.process.pid }, 'killing worker: drain outlasted gracefulTimeout')
        entry.worker.process.kill('SIGKILL')
      }
    }, this.host.gracefulTimeout + KILL_MARGIN)
    await Promise.all(entries.map(async (entry) => await entry.exited))
    clearTimeout(killer)
    return clean
  }

  /** Drains a worker that is no longer its slot's current one; kills it if it outstays the drain. */
  async retire (entry: WorkerEntry, reason: string): Promise<void> {
    entry.role = 'retiring'
    // A worker that does not listen yet has no drain to run: a plain SIGTERM ends it.
    if (entry.readyAt === undefined) entry.worker.process.kill('SIGTERM')
    else sendToWorker(entry.worker, { type: 'fck:shutdown', reason })
    const timer = setTimeout(() => entry.worker.process.kill('SIGKILL'), this.host.gracefulTimeout + KILL_MARGIN)
    await entry.exited
    clearTimeout(timer)
  }
}
