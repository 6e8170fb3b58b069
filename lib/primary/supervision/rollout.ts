import type { EventEmitter } from 'node:events'
import { FCK_RELOAD_IN_PROGRESS, FCK_SHUTTING_DOWN } from '../../common/errors.js'
import { sendToWorker } from '../../common/protocol.js'
import type { PrimaryLogger } from '../log.js'
import type { CanaryOptions } from '../options.js'
import type { CanaryVerdict, ClusterEvents, LastReload, ReloadResult, RolloutPhase, RolloutProgress } from '../types.js'
import { Bake, unbaked } from './canary.js'
import type { Slot, WorkerEntry } from './slot.js'

/** Past the workers' own gracefulTimeout, the primary waits this much longer before SIGKILL. */
const KILL_MARGIN = 2000

/**
 * During a bake every worker answers one response in this many with `Connection: close`: clients
 * and balancers that hold their connections open would otherwise never reach the canaries. One
 * reconnect per 10 requests costs little, and deals the connections again within seconds.
 */
const SPREAD_EVERY = 10

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
  /** Canary rollouts' settings; undefined when they are off. */
  canary: CanaryOptions | undefined
  log: PrimaryLogger
}

/** The canaries failed: the reload ends with the verdict, the old workers serving. */
class CanaryFailed extends Error {
  constructor (readonly verdict: CanaryVerdict) {
    super(`canary rejected: ${verdict.reason}`)
  }
}

/** The worker has exited, or its channel is gone (it is on its way out). */
function gone (entry: WorkerEntry): boolean {
  return entry.worker.isDead() || !entry.worker.isConnected()
}

/**
 * How workers are replaced: one slot's (`replace`: a candidate starts, listens, is promoted, and
 * the worker it replaces drains), or every slot's in turn (the rolling reload, one at a time,
 * refused while one runs). Memory recycling and sick-worker replacement use `replace`.
 *
 *   idle --reload--> replacing slot 0 --> ... --> replacing slot N-1 --> idle (done)
 *                    any replacement that fails --> idle (failed: the slots not yet replaced keep their workers)
 *
 * With canary rollouts on, a reload first surges: canaries of the new release start beside all
 * the old workers (no old one stops), bake, and are judged against the old workers (canary.ts):
 *
 *   idle --reload--> surge --> bake (--> bake once more, when short of requests) --> judge
 *        judge --passed--> roll: each canary takes its slot, the other slots are replaced in turn
 *        judge --failed--> abort: the canaries are retired; the old workers keep serving, and
 *                          health says the release on disk failed until a reload succeeds
 */
export class Rollout {
  #running: Promise<ReloadResult> | undefined
  #last: LastReload | undefined
  #progress: { phase: RolloutPhase, since: string, message: () => string } | undefined
  #bake: Bake | undefined
  #canaries: WorkerEntry[] = []
  /** The release on disk whose canaries failed, until a reload succeeds. */
  #rejected: { at: string, reason: string } | undefined

  constructor (private readonly host: RolloutHost) {}

  /** How the last rolling reload ended, undefined before the first. */
  get last (): LastReload | undefined {
    return this.#last
  }

  get running (): boolean {
    return this.#running !== undefined
  }

  /** Where a canary rollout is, undefined when none runs. */
  get progress (): RolloutProgress | undefined {
    const progress = this.#progress
    if (progress === undefined) return undefined
    const canaries = this.#canaries.map((entry) => ({ id: String(entry.slot.id), pid: entry.worker.process.pid ?? 0 }))
    return { phase: progress.phase, since: progress.since, message: progress.message(), canaries }
  }

  /**
   * Health's word after the canaries of the release on disk failed: every worker that starts
   * from now on (a restart, a recycle) loads that release, until a reload succeeds.
   */
  get warning (): string | undefined {
    const rejected = this.#rejected
    if (rejected === undefined) return undefined
    return `the release on disk failed its canary at ${rejected.at} (${rejected.reason}); the workers still run the one before, ` +
      'but any worker started now (a restart, a recycle) loads the failed one: fix the release and reload'
  }

  /** A heartbeat of any worker (its sample is on the entry): counted when a bake runs. */
  heard (entry: WorkerEntry): void {
    this.#bake?.heard(entry)
  }

  /** Starts a rolling reload; throws at once (not later) when one runs or the cluster stops. */
  begin (): Promise<ReloadResult> {
    if (this.host.stopping()) throw new FCK_SHUTTING_DOWN()
    if (this.#running !== undefined) throw new FCK_RELOAD_IN_PROGRESS()
    this.#running = this.#reload().finally(() => {
      this.#running = undefined
      this.#progress = undefined
      this.#canaries = []
    })
    return this.#running
  }

  async #reload (): Promise<ReloadResult> {
    const { host } = this
    const started = Date.now()
    host.events.emit('reload:start', { slots: host.slots.length })
    host.log.info('rolling reload: start')
    let verdict: CanaryVerdict | undefined
    try {
      const canaries = new Map<Slot, WorkerEntry>()
      if (host.canary !== undefined) verdict = await this.#surge(host.canary, canaries)
      if (verdict !== undefined) this.#phase('roll', () => `${verdict?.reason}; replacing the old workers one by one`)
      for (const slot of host.slots) {
        const canary = canaries.get(slot)
        if (canary === undefined || gone(canary)) await this.replace(slot, 'rolling reload')
        else await this.#promote(slot, canary, 'rolling reload')
      }
      const workers = host.slots.map((slot) => ({ id: String(slot.id), pid: slot.worker?.worker.process.pid ?? 0 }))
      const result = { ok: true as const, durationMs: Date.now() - started, workers, ...(verdict === undefined ? {} : { canary: verdict }) }
      this.#last = { at: new Date().toISOString(), ok: true, durationMs: result.durationMs }
      this.#rejected = undefined
      host.log.info(result, 'rolling reload: done')
      host.events.emit('reload:done', result)
      return result
    } catch (error) {
      if (error instanceof CanaryFailed) verdict = error.verdict
      const result = { ok: false as const, durationMs: Date.now() - started, reason: (error as Error).message, ...(verdict === undefined ? {} : { canary: verdict }) }
      this.#last = { at: new Date().toISOString(), ...result }
      if (error instanceof CanaryFailed) this.#rejected = { at: this.#last.at, reason: error.verdict.reason }
      host.log.error(result, `rolling reload failed (${result.reason}); the workers not yet replaced keep serving`)
      host.events.emit('reload:failed', result)
      return result
    }
  }

  /**
   * Starts the canaries (into `canaries`, by slot) beside the old workers, bakes and judges them;
   * resolves with a passed verdict, or retires them and throws CanaryFailed.
   */
  async #surge (options: CanaryOptions, canaries: Map<Slot, WorkerEntry>): Promise<CanaryVerdict> {
    const { host } = this
    const count = Math.min(options.workers, host.slots.length)
    this.#phase('surge', () => `starting ${count} canary worker(s) of the new release beside the ${host.slots.length} old ones`)
    try {
      for (const slot of host.slots.slice(0, count)) canaries.set(slot, this.#candidate(slot))
      this.#canaries = [...canaries.values()]
      await Promise.all([...canaries.values()].map(async (entry) => await entry.ready.catch((error: Error) => {
        throw new Error(`canary worker ${entry.slot.id} failed to start: ${entry.failure ?? error.message}`)
      })))
    } catch (error) {
      // A stop ends the canaries too: that says nothing of the release.
      if (host.stopping()) throw new FCK_SHUTTING_DOWN()
      return await this.#abort(canaries, unbaked((error as Error).message))
    }
    const old = host.slots.flatMap((slot) => slot.worker === undefined ? [] : [slot.worker])
    const bake = this.#bake = new Bake([...canaries.values()], old)
    // The old workers the bake began with: one restarted meanwhile never got the spread.
    const baking = [...old, ...canaries.values()]
    this.#spread(baking, SPREAD_EVERY)
    try {
      for (let extended = false; ; extended = true) {
        const until = Date.now() + options.bake
        this.#phase('bake', () => `baking ${count} canary worker(s)${extended ? ' (extended once: too few requests)' : ''}: ` +
          `${bake.canaryRequests} of ${options.minRequests} requests, ${Math.max(0, Math.round((until - Date.now()) / 1000))} s left`)
        const lost = await this.#watch([...canaries.values()], options.bake)
        if (host.stopping()) throw new FCK_SHUTTING_DOWN()
        this.#phase('judge', () => 'judging the canaries against the old workers')
        const verdict = bake.judge(options, { lost, extended })
        if (verdict === 'extend') continue
        if (!verdict.passed) return await this.#abort(canaries, verdict)
        host.log.info({ canary: verdict }, `rolling reload: ${verdict.reason}`)
        return verdict
      }
    } finally {
      this.#bake = undefined
      this.#spread(baking, 0)
    }
  }

  /** Waits `ms`, or until a canary is lost: then resolves with why. */
  async #watch (canaries: WorkerEntry[], ms: number): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined
    const baked = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms) })
    const lost = canaries.map(async (entry) => {
      await entry.exited
      const why = entry.lost?.reason ?? entry.failure ?? `exited (${entry.worker.process.signalCode ?? `code ${String(entry.worker.process.exitCode)}`})`
      return `canary worker ${entry.slot.id} (pid ${entry.worker.process.pid ?? 0}) was lost during the bake: ${why}`
    })
    try {
      return await Promise.race([baked, ...lost])
    } finally {
      clearTimeout(timer)
    }
  }

  async #abort (canaries: Map<Slot, WorkerEntry>, verdict: CanaryVerdict): Promise<never> {
    this.#phase('abort', () => `${verdict.reason}; retiring the canaries, the old workers keep serving`)
    await Promise.all([...canaries.values()].map(async (entry) => await this.retire(entry, 'canary rejected')))
    throw new CanaryFailed(verdict)
  }

  #phase (phase: RolloutPhase, message: () => string): void {
    this.#progress = { phase, since: new Date().toISOString(), message }
    const progress = this.progress as RolloutProgress
    this.host.log.info({ phase }, `rolling reload: ${phase}: ${progress.message}`)
    this.host.events.emit('reload:phase', progress)
  }

  #spread (entries: WorkerEntry[], every: number): void {
    for (const entry of entries) if (entry.readyAt !== undefined) sendToWorker(entry.worker, { type: 'fck:spread', every })
  }

  #candidate (slot: Slot): WorkerEntry {
    try {
      return this.host.fork(slot, 'candidate')
    } catch (error) {
      throw new Error(`worker ${slot.id}: replacement ${(error as Error).message}`)
    }
  }

  /**
   * Starts a candidate for the slot and, once it listens, promotes it and retires the worker it
   * replaces, whatever that one is doing (starting, serving, draining on its own): in every state
   * the slot ends with the candidate as its one current worker.
   */
  async replace (slot: Slot, reason: string, replaces?: WorkerEntry['replaces']): Promise<void> {
    if (this.host.stopping()) throw new FCK_SHUTTING_DOWN()
    const candidate = this.#candidate(slot)
    candidate.replaces = replaces
    slot.candidate = candidate
    try {
      await candidate.ready
    } catch (error) {
      throw new Error(`worker ${slot.id}: replacement ${candidate.failure ?? (error as Error).message}`)
    } finally {
      if (slot.candidate === candidate) slot.candidate = undefined
    }
    await this.#promote(slot, candidate, reason)
  }

  /** The candidate (listening) becomes the slot's worker; the one it replaces drains. */
  async #promote (slot: Slot, candidate: WorkerEntry, reason: string): Promise<void> {
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
        if (entry.worker.isDead()) continue
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
