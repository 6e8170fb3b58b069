import cluster, { type Worker } from 'node:cluster'
import type { FastifyInstance } from 'fastify'
import { EventEmitter } from 'node:events'
import { FCK_RELOAD_IN_PROGRESS, FCK_SHUTTING_DOWN, FCK_START_FAILED } from '../errors.js'
import { isWorkerMessage, sendToWorker, type WorkerMessage } from '../protocol.js'
import type { ResolvedBootOptions } from './options.js'
import { HandoffRescue } from './handoff.js'
import type { PrimaryLogger } from './log.js'
import { buildHealth, buildStats, fewerThanHalfAlive, formatReport } from './report.js'
import { SharedState } from './state.js'
import { Slot, type SlotState, type TransitionDetail, type WorkerEntry } from './slot.js'
import type { ClusterEvents, ClusterHandle, ClusterHealth, ClusterStats, ReloadResult } from './types.js'

const WATCH_INTERVAL = 250
/** Past the workers' own gracefulTimeout, the primary waits this much longer before SIGKILL. */
const KILL_MARGIN = 2000

/**
 * The primary: forks one worker per slot, and restarts, reloads, recycles and stops them.
 * Slot states and their transitions live in slot.ts; every event is emitted from `#onTransition`.
 */
export class Supervisor extends EventEmitter<ClusterEvents> implements ClusterHandle {
  readonly #slots: Slot[]
  readonly #entries = new Set<WorkerEntry>()
  readonly #rescue = new HandoffRescue()
  #starting = true
  #stopping: Promise<boolean> | undefined
  #reloading: Promise<ReloadResult> | undefined
  #healthy = true
  #timers: NodeJS.Timeout[] = []
  #monitoring: FastifyInstance | undefined
  readonly #state = new SharedState()

  constructor (private readonly options: ResolvedBootOptions, private readonly log: PrimaryLogger) {
    super()
    this.#slots = Array.from({ length: options.workers }, (_, id) => new Slot(id, this.#onTransition))
  }

  /**
   * Forks every slot and starts the monitoring server alongside; resolves once all listen,
   * otherwise stops everything and rejects.
   */
  async start (): Promise<void> {
    this.#installSignals()
    this.log.info({ workers: this.options.workers, port: this.options.port }, 'cluster starting')
    const started = Date.now()
    const monitoring = this.#startMonitoring()
    try {
      await Promise.all([monitoring, ...this.#slots.map(async (slot) => await this.#startSlot(slot).ready.catch((error: Error) => {
        throw new FCK_START_FAILED(String(slot.id), error.message)
      }))])
    } catch (error) {
      await monitoring.catch(() => {})
      await this.#stop()
      throw error
    }
    this.#starting = false
    this.log.info({ workers: this.options.workers, ms: Date.now() - started }, 'cluster ready')
    this.#timers.push(setInterval(() => this.#watch(), WATCH_INTERVAL).unref())
    if (this.options.healthReportInterval > 0) {
      this.#timers.push(setInterval(() => this.#report(), this.options.healthReportInterval).unref())
    }
  }

  async #startMonitoring (): Promise<void> {
    if (this.options.monitoring === false) return
    // Loaded only when on: Fastify costs a primary that does not otherwise import it ~20 MB.
    const { startMonitoring } = await import('./monitoring.js')
    this.#monitoring = await startMonitoring(this, this.options.monitoring, this.log)
  }

  stats (): ClusterStats {
    return buildStats(this.#slots, this.health())
  }

  health (): ClusterHealth {
    return buildHealth(this.#slots, this.options.maxRestarts)
  }

  async reload (): Promise<ReloadResult> {
    return await this.beginReload()
  }

  /** As reload(), but throws at once rather than rejecting later (the monitoring API answers 409 from it). */
  beginReload (): Promise<ReloadResult> {
    if (this.#stopping !== undefined) throw new FCK_SHUTTING_DOWN()
    if (this.#reloading !== undefined) throw new FCK_RELOAD_IN_PROGRESS()
    this.#reloading = this.#rollingReload().finally(() => { this.#reloading = undefined })
    return this.#reloading
  }

  /** Each slot's current worker that listens: the ones traffic and scrapes go to. */
  servingWorkers (): Array<{ id: string, worker: Worker }> {
    return this.#slots.flatMap((slot) => slot.worker?.readyAt === undefined ? [] : [{ id: String(slot.id), worker: slot.worker.worker }])
  }

  async shutdown (): Promise<void> {
    await this.#stop()
  }

  async #rollingReload (): Promise<ReloadResult> {
    const started = Date.now()
    this.emit('reload:start', { slots: this.#slots.length })
    this.log.info('rolling reload: start')
    try {
      for (const slot of this.#slots) await this.#replace(slot, 'rolling reload')
      const workers = this.#slots.map((slot) => ({ id: String(slot.id), pid: slot.worker?.worker.process.pid ?? 0 }))
      const result = { ok: true as const, durationMs: Date.now() - started, workers }
      this.log.info(result, 'rolling reload: done')
      this.emit('reload:done', result)
      return result
    } catch (error) {
      const result = { ok: false as const, durationMs: Date.now() - started, reason: (error as Error).message }
      this.log.error(result, 'rolling reload failed; the workers not yet replaced keep serving')
      this.emit('reload:failed', result)
      return result
    }
  }

  /** Starts a candidate for the slot and, once it listens, promotes it and drains the old worker. */
  async #replace (slot: Slot, reason: string): Promise<void> {
    if (this.#stopping !== undefined) throw new FCK_SHUTTING_DOWN()
    const candidate = this.#fork(slot, 'candidate')
    slot.candidate = candidate
    try {
      await candidate.ready
    } catch (error) {
      throw new Error(`worker ${slot.id}: replacement ${candidate.failure ?? (error as Error).message}`)
    } finally {
      if (slot.candidate === candidate) slot.candidate = undefined
    }
    const old = slot.worker
    clearTimeout(slot.restartTimer)
    candidate.role = 'current'
    slot.worker = candidate
    slot.earlyCrashes = 0
    slot.transition('ready', { pid: candidate.worker.process.pid, reason })
    if (old !== undefined) await this.#retire(old, reason)
  }

  /** Drains a worker that is no longer its slot's current one; kills it if it outstays the drain. */
  async #retire (entry: WorkerEntry, reason: string): Promise<void> {
    entry.role = 'retiring'
    sendToWorker(entry.worker, { type: 'fck:shutdown', reason })
    const timer = setTimeout(() => entry.worker.process.kill('SIGKILL'), this.options.gracefulTimeout + KILL_MARGIN)
    await entry.exited
    clearTimeout(timer)
  }

  #startSlot (slot: Slot, detail: TransitionDetail = {}): WorkerEntry {
    const entry = this.#fork(slot, 'current')
    slot.worker = entry
    slot.transition('starting', { ...detail, pid: entry.worker.process.pid })
    entry.ready.catch(() => {}) // a failed start is handled when the worker exits
    return entry
  }

  #fork (slot: Slot, role: WorkerEntry['role']): WorkerEntry {
    const worker = cluster.fork({
      WORKER_ID: String(slot.id),
      CLUSTER_WORKER: 'true',
      GRACEFUL_SHUTDOWN_TIMEOUT: String(this.options.gracefulTimeout)
    })
    let onReady!: () => void
    let onFailed!: (error: Error) => void
    const entry: WorkerEntry = {
      worker,
      slot,
      role,
      forkedAt: Date.now(),
      readyAt: undefined,
      lastHeartbeat: 0,
      sample: undefined,
      failure: undefined,
      ready: new Promise((resolve, reject) => { onReady = resolve; onFailed = reject }),
      exited: new Promise((resolve) => worker.once('exit', () => resolve()))
    }
    this.#entries.add(entry)
    this.#rescue.watch(worker)
    const readyTimer = setTimeout(() => {
      entry.failure = `did not listen within readyTimeout (${this.options.readyTimeout} ms)`
      worker.process.kill('SIGKILL')
    }, this.options.readyTimeout)
    worker.on('message', (message: unknown) => {
      if (!isWorkerMessage(message)) return
      if (message.type === 'fck:ready') {
        clearTimeout(readyTimer)
        entry.readyAt = entry.lastHeartbeat = Date.now()
        this.#rescue.adopt(worker)
        onReady()
      }
      this.#onMessage(entry, message)
    })
    worker.once('exit', (code: number | null, signal: string | null) => {
      clearTimeout(readyTimer)
      this.#entries.delete(entry)
      this.#rescueConnections(entry)
      if (entry.readyAt === undefined) {
        onFailed(new Error(entry.failure ?? `exited (${describeExit(code, signal)}) before listening`))
      }
      this.#onExit(entry, code, signal)
    })
    return entry
  }

  /** Hands a connection the dead worker never acknowledged to a live worker (see handoff.ts). */
  #rescueConnections (dead: WorkerEntry): void {
    const heir = [...this.#entries].find((entry) => entry.readyAt !== undefined && entry.role !== 'retiring' && entry.worker.isConnected())
    const count = this.#rescue.release(dead.worker, heir?.worker)
    if (count > 0) {
      this.log.warn({ workerId: String(dead.slot.id), pid: dead.worker.process.pid, heir: heir?.worker.process.pid },
        `${count} connection(s) being handed to the dead worker ${heir === undefined ? 'wait for the next ready worker' : 'sent to another worker'}`)
    }
  }

  #onMessage (entry: WorkerEntry, message: WorkerMessage): void {
    const { slot } = entry
    switch (message.type) {
      case 'fck:ready':
        if (entry.role === 'current' && slot.worker === entry) slot.transition('ready', { pid: message.pid })
        break
      case 'fck:heartbeat':
        entry.lastHeartbeat = Date.now()
        entry.sample = message.sample
        this.#checkMemory(entry)
        break
      case 'fck:draining':
        if (entry.role === 'current' && slot.worker === entry && slot.state !== 'draining') {
          slot.transition('draining', { pid: message.pid, reason: message.reason })
        }
        break
      case 'fck:failed':
        entry.failure = `failed to start: ${message.error.message}`
        break
      case 'fck:state':
        sendToWorker(entry.worker, { type: 'fck:state-result', id: message.id, value: this.#state.handle(message.request) })
        break
    }
  }

  #onExit (entry: WorkerEntry, code: number | null, signal: string | null): void {
    const { slot } = entry
    const pid = entry.worker.process.pid ?? 0
    if (entry.role !== 'current' || slot.worker !== entry) {
      this.emit('worker:exit', { id: String(slot.id), pid, code, signal, state: 'retired', reason: entry.failure })
      return
    }
    slot.worker = undefined
    const to: SlotState = code === 0 ? 'stopped' : 'crashed'
    slot.transition(to, { pid, code, signal, reason: entry.failure })
    // A failure before listening during the first start aborts the start (see start()).
    if (this.#stopping !== undefined || (this.#starting && entry.readyAt === undefined)) return
    if (slot.candidate !== undefined) return // a reload or recycle is already bringing up its successor
    this.#scheduleRestart(slot, entry)
  }

  #scheduleRestart (slot: Slot, last: WorkerEntry): void {
    const { restartDelay, maxRestartDelay, maxRestarts, restartWindow } = this.options
    const stable = last.readyAt !== undefined && Date.now() - last.readyAt >= restartWindow
    let delay = 0
    if (stable) {
      slot.earlyCrashes = 0
    } else {
      slot.earlyCrashes++
      if (slot.earlyCrashes > maxRestarts) {
        slot.transition('given-up', { reason: `${slot.earlyCrashes} early crashes in a row` })
        return
      }
      delay = Math.min(restartDelay * 2 ** (slot.earlyCrashes - 1), maxRestartDelay)
    }
    slot.restartTimer = setTimeout(() => {
      if (this.#stopping !== undefined || slot.worker !== undefined) return
      slot.restarts++
      this.#startSlot(slot, { delay })
    }, delay)
  }

  #checkMemory (entry: WorkerEntry): void {
    const { maxMemory } = this.options
    const { slot } = entry
    if (maxMemory === undefined || entry.sample === undefined || entry.sample.rss <= maxMemory) return
    if (entry.role !== 'current' || slot.state !== 'ready' || slot.candidate !== undefined || this.#reloading !== undefined) return
    const reason = `rss ${entry.sample.rss} bytes above maxMemory ${maxMemory}`
    this.log.warn({ workerId: String(slot.id), pid: entry.worker.process.pid, rss: entry.sample.rss, maxMemory }, 'recycling worker: memory')
    this.#replace(slot, reason).catch((error: Error) => this.log.error({ err: error }, 'memory recycle failed; the worker keeps serving'))
  }

  /** Kills ready workers whose heartbeat stopped (a blocked event loop). */
  #watch (): void {
    const now = Date.now()
    for (const entry of this.#entries) {
      if (entry.readyAt === undefined || entry.role === 'retiring' || entry.failure !== undefined) continue
      if (now - entry.lastHeartbeat <= this.options.heartbeatTimeout) continue
      entry.failure = `no heartbeat for ${now - entry.lastHeartbeat} ms (heartbeatTimeout ${this.options.heartbeatTimeout} ms)`
      this.log.error({ workerId: String(entry.slot.id), pid: entry.worker.process.pid }, `killing worker: ${entry.failure}`)
      entry.worker.process.kill('SIGKILL')
    }
  }

  #onTransition = (slot: Slot, from: SlotState, to: SlotState, detail: TransitionDetail): void => {
    const id = String(slot.id)
    const pid = detail.pid ?? 0
    this.log.info({ workerId: id, pid, from, to, ...detail }, `worker ${id}: ${from} -> ${to}`)
    if (to === 'ready') this.emit('worker:ready', { id, pid })
    else if (to === 'crashed' || to === 'stopped') {
      this.emit('worker:exit', { id, pid, code: detail.code ?? null, signal: detail.signal ?? null, state: to, reason: detail.reason })
    } else if (to === 'starting' && slot.restarts > 0) this.emit('worker:restart', { id, restarts: slot.restarts, delay: detail.delay ?? 0 })
    else if (to === 'given-up') {
      this.log.warn({ workerId: id, earlyCrashes: slot.earlyCrashes }, `worker ${id}: restart limit reached (maxRestarts ${this.options.maxRestarts}); slot given up`)
      this.emit('restart-limit', { id, earlyCrashes: slot.earlyCrashes })
    }
    this.#checkHealth()
  }

  #checkHealth (): void {
    if (this.#starting || this.#stopping !== undefined) return
    const health = this.health()
    if (health.healthy === this.#healthy) return
    this.#healthy = health.healthy
    if (!health.healthy) this.log.warn(health, 'cluster unhealthy')
    this.emit(health.healthy ? 'healthy' : 'unhealthy', health)
  }

  #report (): void {
    const stats = this.stats()
    this.log.info({ report: stats }, formatReport(stats))
    if (fewerThanHalfAlive(stats.alive, stats.expected)) this.log.warn(`only ${stats.alive} of ${stats.expected} workers alive`)
  }

  /** Drains every worker in parallel, kills stragglers; resolves true when all exited cleanly. */
  async #stop (): Promise<boolean> {
    this.#stopping ??= (async () => {
      for (const timer of this.#timers) clearInterval(timer)
      for (const slot of this.#slots) clearTimeout(slot.restartTimer)
      const entries = [...this.#entries]
      let clean = true
      for (const entry of entries) {
        entry.worker.once('exit', (code: number | null) => { if (code !== 0) clean = false })
        if (entry.readyAt !== undefined) sendToWorker(entry.worker, { type: 'fck:shutdown', reason: 'cluster shutdown' })
        else entry.worker.process.kill('SIGTERM')
      }
      const killer = setTimeout(() => {
        for (const entry of this.#entries) {
          this.log.error({ workerId: String(entry.slot.id), pid: entry.worker.process.pid }, 'killing worker: drain outlasted gracefulTimeout')
          entry.worker.process.kill('SIGKILL')
        }
      }, this.options.gracefulTimeout + KILL_MARGIN)
      await Promise.all(entries.map(async (entry) => await entry.exited))
      clearTimeout(killer)
      this.#rescue.discard()
      await this.#monitoring?.close()
      this.#state.stop()
      this.#uninstallSignals()
      this.log.info({ clean }, 'cluster stopped')
      return clean
    })()
    return await this.#stopping
  }

  #onStopSignal = (signal: NodeJS.Signals): void => {
    if (this.#stopping !== undefined) {
      this.log.error(`second ${signal} during shutdown: killing workers`)
      for (const entry of this.#entries) entry.worker.process.kill('SIGKILL')
      process.exit(1)
    }
    this.log.info({ signal }, 'cluster shutdown: draining workers')
    this.#stop().then((clean) => process.exit(clean ? 0 : 1), () => process.exit(1))
  }

  #onReloadSignal = (): void => {
    this.reload().catch((error: Error) => this.log.warn(`SIGHUP ignored: ${error.message}`))
  }

  #installSignals (): void {
    process.on('SIGTERM', this.#onStopSignal)
    process.on('SIGINT', this.#onStopSignal)
    process.on('SIGHUP', this.#onReloadSignal)
  }

  #uninstallSignals (): void {
    process.removeListener('SIGTERM', this.#onStopSignal)
    process.removeListener('SIGINT', this.#onStopSignal)
    process.removeListener('SIGHUP', this.#onReloadSignal)
  }
}

function describeExit (code: number | null, signal: string | null): string {
  return signal === null ? `code ${code}` : `signal ${signal}`
}
