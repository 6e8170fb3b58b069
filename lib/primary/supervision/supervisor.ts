import { EventEmitter } from 'node:events'
import { FCK_START_FAILED } from '../../common/errors.js'
import { sendToWorker, type WorkerMessage } from '../../common/protocol.js'
import { settleBalancing, SlotSockets, takePassedSockets, type Mode } from './balancing.js'
import { HealthWatch } from './health-watch.js'
import { incidentOf, reportDirectory } from './incidents.js'
import type { PrimaryLogger } from '../log.js'
import type { ResolvedBootOptions } from '../options.js'
import { buildHealth, buildStats, startReports } from '../monitoring/report.js'
import { RestartPolicy } from './restart-policy.js'
import { Scrapes, type Scraped } from '../monitoring/scrapes.js'
import { handleSignals } from './signals.js'
import { SharedState } from '../../shared-state/primary-store.js'
import { SystemdNotifier } from './systemd.js'
import { Slot, type TransitionDetail, type WorkerEntry } from './slot.js'
import { forkWorker, workerEnvironment } from './worker-process.js'
import { Rollout } from './rollout.js'
import { Upkeep } from './upkeep.js'
import { WorkerSet } from './worker-set.js'
import { reportTransitions } from './transitions.js'
import type { ClusterEvents, ClusterHandle, ClusterHealth, ClusterStats, ReloadResult } from '../types.js'

const WATCH_INTERVAL = 250

/** The slot's current worker (not a candidate, not one retiring): its news is the slot's. */
function isCurrent (entry: WorkerEntry): boolean {
  return entry.role === 'current' && entry.slot.worker === entry
}

/**
 * The primary: forks one worker per slot, routes what workers say, and starts and stops the
 * cluster. Slot states and counters live in slot.ts, when to restart in restart-policy.ts, the
 * reload sequence and every replacement in rollout.ts, what heartbeats (or their absence) lead to
 * in upkeep.ts, why a worker was lost in incidents.ts; every slot event is reported from
 * transitions.ts.
 */
export class Supervisor extends EventEmitter<ClusterEvents> implements ClusterHandle {
  readonly #slots: Slot[]
  readonly #entries: WorkerSet
  readonly #scrapes: Scrapes
  readonly #restarts: RestartPolicy
  readonly #upkeep: Upkeep
  #starting = true
  #stopping: Promise<boolean> | undefined
  readonly #rollout: Rollout
  readonly #health: HealthWatch
  #uninstallSignals: (() => void) | undefined
  #timers: NodeJS.Timeout[] = []
  #monitoring: { close: () => Promise<void> } | undefined
  readonly #state: SharedState
  #balancing: Mode = 'round-robin'
  readonly #sockets = new SlotSockets()
  /** Sockets systemd passed (socket activation), which the workers listen on through the primary. */
  #passed = 0
  readonly #systemd: SystemdNotifier
  /** Where workers' fatal-error reports go (see incidents.ts). */
  #reports: ReturnType<typeof reportDirectory> | undefined

  constructor (private readonly options: ResolvedBootOptions, private readonly log: PrimaryLogger) {
    super()
    const onTransition = reportTransitions({
      log,
      events: this,
      options,
      quiet: () => this.#starting || this.#stopping !== undefined,
      health: () => this.#health
    })
    this.#slots = Array.from({ length: options.workers }, (_, id) => new Slot(id, onTransition))
    this.#restarts = new RestartPolicy(options, (slot, delay) => { this.#startSlot(slot, { delay }).catch(() => {}) })
    this.#health = new HealthWatch(() => this.#starting || this.#stopping !== undefined ? undefined : this.health(), (health) => {
      if (!health.healthy) this.log.warn(health, 'cluster unhealthy')
      this.emit(health.healthy ? 'healthy' : 'unhealthy', health)
    })
    this.#state = new SharedState(options.primaryStore)
    const { monitoring } = options
    this.#scrapes = new Scrapes(this, monitoring)
    this.#systemd = new SystemdNotifier(this, process.env, log)
    this.#entries = new WorkerSet(log)
    this.#rollout = new Rollout({
      slots: this.#slots,
      fork: (slot, role) => this.#fork(slot, role),
      stopping: () => this.#stopping !== undefined,
      events: this,
      gracefulTimeout: options.gracefulTimeout,
      canary: options.canary,
      log
    })
    this.#upkeep = new Upkeep(options, { rollout: this.#rollout, events: this, log, onChange: () => this.#health.check() })
  }

  /**
   * Forks every slot and starts the monitoring server alongside; resolves once all listen,
   * otherwise stops everything and rejects.
   */
  async start (): Promise<void> {
    this.#uninstallSignals = handleSignals({
      stop: async () => await this.#stop(),
      stopping: () => this.#stopping !== undefined,
      kill: () => { for (const entry of this.#entries) entry.worker.process.kill('SIGKILL') },
      reload: async () => await this.reload()
    }, this.log)
    this.#entries.guard()
    this.#reports = reportDirectory()
    this.log.info({ workers: this.options.workers, port: this.options.port }, 'cluster starting')
    this.#passed = takePassedSockets(this.log)
    try {
      this.#balancing = await settleBalancing(this.options, this.#passed, this.log)
    } catch (error) {
      await this.#stop()
      throw error
    }
    const started = Date.now()
    const monitoring = this.#startMonitoring()
    try {
      await Promise.all([monitoring, ...this.#slots.map(async (slot) => await this.#startSlot(slot).catch((error: Error) => {
        throw new FCK_START_FAILED(String(slot.id), error.message)
      }))])
    } catch (error) {
      await monitoring.catch(() => {})
      await this.#stop()
      throw error
    }
    this.#starting = false
    this.log.info({ workers: this.options.workers, ms: Date.now() - started }, 'cluster ready')
    this.#systemd.ready()
    this.#timers.push(setInterval(() => this.#upkeep.watch(this.#entries), WATCH_INTERVAL).unref())
    if (this.options.healthReportInterval > 0) this.#timers.push(startReports(this.options.healthReportInterval, () => this.stats(), this.log))
  }

  async #startMonitoring (): Promise<void> {
    if (this.options.monitoring === false) return
    // Loaded only when on: a primary without monitoring does not load Fastify at all.
    const { startMonitoring } = await import('../monitoring/server.js')
    this.#monitoring = await startMonitoring(this, this.options.monitoring, this.log)
  }

  stats (): ClusterStats {
    return buildStats(this.#slots, this.health(), this.#entries.guardPid, this.#rollout, this.#state.size())
  }

  health (): ClusterHealth {
    return buildHealth(this.#slots, this.options, this.#rollout.warning)
  }

  /** What the primary's shared store holds, for /metrics. */
  storeSize (): ReturnType<SharedState['size']> {
    return this.#state.size()
  }

  async reload (): Promise<ReloadResult> {
    return await this.beginReload()
  }

  /** As reload(), but throws at once rather than rejecting later (the monitoring API answers 409 from it). */
  beginReload (): Promise<ReloadResult> {
    return this.#rollout.begin()
  }

  /** Each slot's current worker that listens: the ones traffic and scrapes go to. */
  servingWorkers: Scraped['servingWorkers'] = () => {
    return this.#slots.flatMap((slot) => slot.worker?.readyAt === undefined ? [] : [{ id: String(slot.id), worker: slot.worker.worker }])
  }

  /** A CPU profile of slot `id`'s worker over `seconds`, or a heap snapshot, as a stream (see diagnostics.ts). */
  diagnose (id: string, what: 'profile' | 'heap', seconds = 0): ReturnType<Upkeep['diagnostics']['take']> {
    return this.#upkeep.diagnostics.take(this.#slots[Number(id)]?.worker, id, what, seconds)
  }

  /** The cluster's metrics as Prometheus text, for the monitoring server and `metrics.endpoint`. */
  async scrape (extra?: Parameters<Scrapes['scrape']>[0]): Promise<string> {
    return await this.#scrapes.scrape(extra)
  }

  async shutdown (): Promise<void> {
    await this.#stop()
  }

  /** Forks the slot's current worker; resolves once it listens. */
  #startSlot (slot: Slot, detail: TransitionDetail = {}): Promise<void> {
    let entry: WorkerEntry
    try {
      entry = this.#fork(slot, 'current')
    } catch (error) {
      // Thrown at once (ENOMEM, say) rather than emitted: a failed start all the same.
      slot.apply('fork', detail)
      slot.apply('crash', { reason: (error as Error).message })
      if (!this.#starting && this.#stopping === undefined) this.#restarts.afterExit(slot, undefined)
      return Promise.reject(error)
    }
    slot.worker = entry
    slot.apply('fork', { ...detail, pid: entry.worker.process.pid })
    return entry.ready
  }

  #fork (slot: Slot, role: WorkerEntry['role']): WorkerEntry {
    const rejected = this.#rollout.running ? undefined : this.#rollout.warning
    if (rejected !== undefined) this.log.warn({ workerId: String(slot.id) }, `worker ${slot.id} starts from the code on disk: ${rejected}`)
    const env = workerEnvironment(slot, this.options, { restarted: !this.#starting, balancing: this.#balancing, passed: this.#passed, reports: this.#reports?.path })
    const entry = forkWorker(slot, role, env, this.options.readyTimeout, this.log, {
      onMessage: (entry, message, handle) => (this.#routes[message.type] as ((entry: WorkerEntry, message: WorkerMessage, handle: unknown) => void) | undefined)?.(entry, message, handle),
      onGone: (entry, code, signal) => {
        this.#entries.delete(entry)
        this.#upkeep.diagnostics.cancel(entry)
        this.#onExit(entry, code, signal)
      }
    })
    this.#entries.add(entry)
    // Not on 'exit': messages the worker sent just before it may still be unread then.
    entry.worker.once('disconnect', () => this.#scrapes.gone(entry.worker))
    return entry
  }

  /**
   * What each message of a worker leads to, by type: one line each, the work in the part that
   * owns it. `fck:ready` and `fck:fatal` have already marked the entry in worker-process.ts.
   */
  readonly #routes: { [T in WorkerMessage['type']]?: (entry: WorkerEntry, message: Extract<WorkerMessage, { type: T }>, handle: unknown) => void } = {
    'fck:ready': (entry, message) => {
      this.#entries.ready(entry)
      if (isCurrent(entry)) entry.slot.apply('listening', { pid: message.pid })
      this.#sockets.ready(entry.slot)
    },
    'fck:heartbeat': (entry, message) => {
      entry.lastHeartbeat = Date.now()
      entry.sample = message.sample
      if (entry.readyAt !== undefined) entry.heartbeats++
      this.#upkeep.afterHeartbeat(entry)
      this.#rollout.heard(entry)
    },
    'fck:draining': (entry, message) => { if (isCurrent(entry)) entry.slot.apply('drain', { pid: message.pid, reason: message.reason }) },
    'fck:failed': (entry, message) => { entry.failure = `failed to start: ${message.error.message}` },
    'fck:metrics': (entry, message) => this.#scrapes.received(message, String(entry.slot.id)),
    'fck:metrics-final': (entry, message) => this.#scrapes.received(message, String(entry.slot.id)),
    'fck:scrape': (entry, message) => {
      this.scrape().catch(() => undefined).then((text) => sendToWorker(entry.worker, { type: 'fck:scrape-result', id: message.id, text }))
    },
    'fck:listener-request': (entry) => this.#sockets.answer(entry),
    'fck:listener-bound': (entry, _message, handle) => this.#sockets.hold(entry, handle),
    'fck:diagnosis-chunk': (_entry, message) => this.#upkeep.diagnostics.receive(message),
    'fck:diagnosis-end': (_entry, message) => this.#upkeep.diagnostics.receive(message),
    'fck:state': (entry, message) => {
      sendToWorker(entry.worker, { type: 'fck:state-result', id: message.id, values: message.requests.map((request) => this.#state.handle(request)) })
    }
  }

  #onExit (entry: WorkerEntry, code: number | null, signal: string | null): void {
    const { slot } = entry
    const pid = entry.worker.process.pid ?? 0
    if (entry.role !== 'current' || slot.worker !== entry) {
      // A candidate (a canary, a replacement) was not asked to stop: why it was lost is the rollout's verdict.
      if (entry.role === 'candidate') entry.lost = incidentOf(entry, code, signal, this.#reports?.path ?? '')
      this.emit('worker:exit', { id: String(slot.id), pid, code, signal, state: 'retired', reason: entry.lost?.reason ?? entry.failure, incident: entry.lost })
      return
    }
    slot.worker = undefined
    const incident = this.#stopping === undefined ? incidentOf(entry, code, signal, this.#reports?.path ?? '') : undefined
    if (incident !== undefined) slot.record(incident)
    slot.apply(code === 0 && incident === undefined ? 'exit' : 'crash', { pid, code, signal, reason: incident?.reason ?? entry.failure, incident })
    // A failure before listening during the first start aborts the start (see start()).
    if (this.#stopping !== undefined || (this.#starting && entry.readyAt === undefined)) return
    if (slot.candidate !== undefined) return // a reload or recycle is already bringing up its successor
    this.#sockets.lost(slot, this.#restarts.afterExit(slot, entry.readyAt), this.#slots.map((other) => other.worker))
  }

  /** Drains every worker in parallel, kills stragglers; resolves true when all exited cleanly. */
  async #stop (): Promise<boolean> {
    this.#stopping ??= (async () => {
      this.#systemd.stopping()
      for (const timer of this.#timers) clearInterval(timer)
      this.#health.stop()
      this.#restarts.stop(this.#slots)
      this.#sockets.releaseAll()
      const clean = await this.#rollout.drainAll([...this.#entries])
      await this.#monitoring?.close()
      this.#state.stop()
      this.#entries.stop()
      this.#uninstallSignals?.()
      await this.#systemd.stop()
      this.#reports?.remove()
      this.log.info({ clean }, 'cluster stopped')
      return clean
    })()
    return await this.#stopping
  }
}
