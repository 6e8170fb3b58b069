import type { EventEmitter } from 'node:events'
import type { PrimaryLogger } from '../log.js'
import type { ResolvedBootOptions } from '../options.js'
import type { ClusterEvents } from '../types.js'
import { Diagnostics } from './diagnostics.js'
import { keepProfile, killHung } from './incidents.js'
import { RecyclePolicy } from './recycle-policy.js'
import type { Rollout } from './rollout.js'
import { SickPolicy } from './sick-policy.js'
import type { WorkerEntry } from './slot.js'

type Options = Pick<ResolvedBootOptions, 'maxMemory' | 'sick' | 'heartbeatTimeout' | 'hangStack'>

/**
 * What the primary does with a live worker's heartbeats, or their absence: a worker over
 * `maxMemory` is recycled, a sick one (the `sick` option) profiled and replaced, both the new
 * worker first through the rollout's `replace`; a worker whose heartbeats stopped is killed after
 * its stack is taken.
 */
export class Upkeep {
  /** CPU profiles and heap snapshots of workers, on demand and of a sick worker. */
  readonly diagnostics: Diagnostics
  readonly #recycling: RecyclePolicy
  readonly #sick: SickPolicy
  /** Sick workers being profiled before their replacement starts. */
  readonly #sickPending = new WeakSet<WorkerEntry>()

  constructor (
    private readonly options: Options,
    private readonly deps: { rollout: Rollout, events: Pick<EventEmitter<ClusterEvents>, 'emit'>, log: PrimaryLogger, onChange: () => void }
  ) {
    this.diagnostics = new Diagnostics(options.maxMemory)
    this.#recycling = new RecyclePolicy(options.maxMemory, deps.log, deps.onChange)
    this.#sick = new SickPolicy(options.sick, deps.log, deps.onChange)
  }

  /** After a heartbeat of a slot's current worker: recycles or replaces it when a policy says so and nothing else is replacing it. */
  afterHeartbeat (entry: WorkerEntry): void {
    const { slot } = entry
    const { rollout, log, events } = this.deps
    if (entry.role !== 'current') return
    const memory = this.#recycling.afterHeartbeat(entry)
    const sick = memory === undefined ? this.#sick.afterHeartbeat(entry) : undefined
    const reason = memory ?? sick
    if (reason === undefined || slot.state !== 'ready' || slot.candidate !== undefined || rollout.running || entry.diagnosing || this.#sickPending.has(entry)) return
    slot.recycled()
    const pid = entry.worker.process.pid ?? 0
    log.warn({ workerId: String(slot.id), workerPid: pid, reason, recycles: slot.recycles }, memory === undefined ? `replacing sick worker ${slot.id}: ${reason}` : 'recycling worker: memory')
    events.emit('worker:recycle', { id: String(slot.id), pid, recycles: slot.recycles, reason })
    const replaced = memory === undefined ? this.#replaceSick(entry, reason) : rollout.replace(slot, reason, 'memory')
    replaced.catch((error: Error) => log.error({ err: error }, `replacing worker ${slot.id} failed; it keeps serving`))
  }

  /** A CPU profile of the sick worker's last seconds, kept with its incident, then its replacement. */
  async #replaceSick (entry: WorkerEntry, reason: string): Promise<void> {
    const { slot } = entry
    const { profileSeconds, profileDir } = this.options.sick as NonNullable<Options['sick']>
    const pid = entry.worker.process.pid ?? 0
    this.#sickPending.add(entry)
    let profile: string | undefined
    if (profileSeconds > 0) {
      try {
        let text = ''
        for await (const chunk of this.diagnostics.take(entry, String(slot.id), 'profile', profileSeconds)) text += String(chunk)
        profile = await keepProfile(profileDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-worker-${slot.id}-${pid}.cpuprofile`, text)
      } catch (error) {
        this.deps.log.warn({ workerId: String(slot.id), workerPid: pid, err: error }, `no CPU profile of sick worker ${slot.id}: ${(error as Error).message}`)
      }
    }
    slot.record({ at: new Date().toISOString(), id: String(slot.id), pid, kind: 'sick', reason, frames: [], ...(profile === undefined ? {} : { profile }) })
    await this.deps.rollout.replace(slot, reason, 'sick')
  }

  /** Kills ready workers whose heartbeat stopped (a blocked event loop); run every WATCH_INTERVAL. */
  watch (entries: Iterable<WorkerEntry>): void {
    const now = Date.now()
    const { heartbeatTimeout, hangStack } = this.options
    for (const entry of entries) {
      if (entry.readyAt === undefined || entry.role === 'retiring' || entry.failure !== undefined || entry.diagnosing) continue
      if (now - entry.lastHeartbeat <= heartbeatTimeout) continue
      entry.failure = `no heartbeat for ${now - entry.lastHeartbeat} ms (heartbeatTimeout ${heartbeatTimeout} ms)`
      killHung(entry, hangStack, this.deps.log).catch((error: Error) => this.deps.log.error({ err: error }, 'killing a hung worker failed'))
    }
  }
}
