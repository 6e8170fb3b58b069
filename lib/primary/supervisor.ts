import type { Worker } from 'node:cluster'
import type { FastifyInstance } from 'fastify'
import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { Correlator } from '../common/correlator.js'
import type { Series } from './aggregate.js'
import { FCK_RELOAD_IN_PROGRESS, FCK_SHUTTING_DOWN, FCK_START_FAILED } from '../common/errors.js'
import { FIRST_FD, passedSockets, WORKER_FDS } from '../common/activation.js'
import { workerEnv } from '../common/identity.js'
import { REPORT_DIR, sendToWorker, type MetricJSON, type WorkerMessage } from '../common/protocol.js'
import { settleBalancing, SlotSockets, type Mode } from './balancing.js'
import { HandoffRescue } from './handoff.js'
import { HealthWatch } from './health-watch.js'
import { Diagnostics } from './diagnostics.js'
import { explainExit, INSPECTOR_OPTION, keepProfile, killHung, reportDirectory } from './incidents.js'
import { MetricsLedger } from './metrics-ledger.js'
import type { PrimaryLogger } from './log.js'
import type { ResolvedBootOptions } from './options.js'
import { OrphanGuard } from './orphan-guard.js'
import { buildHealth, buildStats, fewerThanHalfAlive, formatReport } from './report.js'
import { RecyclePolicy } from './recycle-policy.js'
import { SickPolicy } from './sick-policy.js'
import { RestartPolicy } from './restart-policy.js'
import { Scrapes } from './scrapes.js'
import { MONITORING_SETTINGS } from './settings.js'
import { handleSignals } from './signals.js'
import { SharedState } from '../shared-state/primary-store.js'
import { SystemdNotifier } from './systemd.js'
import { Slot, type SlotEvent, type SlotState, type TransitionDetail, type WorkerEntry } from './slot.js'
import { forkWorker } from './worker-process.js'
import type { ClusterEvents, ClusterHandle, ClusterHealth, ClusterStats, LastReload, ReloadResult } from './types.js'

const WATCH_INTERVAL = 250

/** How a worker's exit reads in a log line: ` (signal SIGKILL: no heartbeat for ...)`. */
function exitText ({ code, signal, reason }: TransitionDetail): string {
  const how = signal != null ? `signal ${signal}` : code != null ? `exit code ${code}` : undefined
  const text = [how, reason].filter((part) => part !== undefined).join(': ')
  return text === '' ? '' : ` (${text})`
}
/** Past the workers' own gracefulTimeout, the primary waits this much longer before SIGKILL. */
const KILL_MARGIN = 2000

/**
 * The primary: forks one worker per slot, and restarts, reloads, recycles and stops them.
 * Slot states and their transitions live in slot.ts, when to restart in restart-policy.ts;
 * every event is emitted from `#onTransition`.
 */
export class Supervisor extends EventEmitter<ClusterEvents> implements ClusterHandle {
  readonly #slots: Slot[]
  readonly #entries = new Set<WorkerEntry>()
  readonly #rescue = new HandoffRescue()
  readonly #metricRequests = new Correlator<MetricJSON[]>()
  readonly #ledger = new MetricsLedger()
  readonly #scrapes: Scrapes
  readonly #restarts: RestartPolicy
  readonly #recycling: RecyclePolicy
  readonly #sick: SickPolicy
  /** Sick workers being profiled before their replacement starts. */
  readonly #sickPending = new WeakSet<WorkerEntry>()
  #guard: OrphanGuard | undefined
  #starting = true
  #stopping: Promise<boolean> | undefined
  #reloading: Promise<ReloadResult> | undefined
  #lastReload: LastReload | undefined
  readonly #health: HealthWatch
  #uninstallSignals: (() => void) | undefined
  #timers: NodeJS.Timeout[] = []
  #monitoring: FastifyInstance | undefined
  readonly #state: SharedState
  #balancing: Mode = 'round-robin'
  readonly #sockets = new SlotSockets()
  /** Sockets systemd passed (socket activation), which the workers listen on through the primary. */
  readonly #passed = passedSockets(process.env)
  readonly #systemd: SystemdNotifier
  readonly #diagnostics: Diagnostics
  /** Where workers' fatal-error reports go (see incidents.ts). */
  #reports: ReturnType<typeof reportDirectory> | undefined

  constructor (private readonly options: ResolvedBootOptions, private readonly log: PrimaryLogger) {
    super()
    this.#slots = Array.from({ length: options.workers }, (_, id) => new Slot(id, this.#onTransition))
    this.#restarts = new RestartPolicy(options, (slot, delay) => { this.#startSlot(slot, { delay }).catch(() => {}) })
    this.#recycling = new RecyclePolicy(options.maxMemory, log, () => this.#health.check())
    this.#sick = new SickPolicy(options.sick, log, () => this.#health.check())
    this.#health = new HealthWatch(() => this.#starting || this.#stopping !== undefined ? undefined : this.health(), (health) => {
      if (!health.healthy) this.log.warn(health, 'cluster unhealthy')
      this.emit(health.healthy ? 'healthy' : 'unhealthy', health)
    })
    this.#state = new SharedState(options.primaryStore)
    const { monitoring } = options
    this.#scrapes = new Scrapes(this, this.#ledger, monitoring === false ? MONITORING_SETTINGS.scrapeTimeout.default : monitoring.scrapeTimeout)
    this.#systemd = new SystemdNotifier(this, process.env, log)
    this.#diagnostics = new Diagnostics(options.maxMemory)
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
    this.#guard = new OrphanGuard(this.log)
    this.#reports = reportDirectory()
    this.log.info({ workers: this.options.workers, port: this.options.port }, 'cluster starting')
    if (this.#passed > 0) {
      this.log.info({ fds: this.#passed }, `socket activation: serving the ${this.#passed} socket(s) systemd passed (fd ${FIRST_FD} on); port and host are not used`)
      // Not the workers': they listen through the primary (sd_listen_fds(3) unsets them too).
      for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) Reflect.deleteProperty(process.env, name)
    }
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
    this.#timers.push(setInterval(() => this.#watch(), WATCH_INTERVAL).unref())
    if (this.options.healthReportInterval > 0) {
      this.#timers.push(setInterval(() => this.#report(), this.options.healthReportInterval).unref())
    }
  }

  async #startMonitoring (): Promise<void> {
    if (this.options.monitoring === false) return
    // Loaded only when on: a primary without monitoring does not load Fastify at all.
    const { startMonitoring } = await import('./monitoring.js')
    this.#monitoring = await startMonitoring(this, this.options.monitoring, this.log)
  }

  stats (): ClusterStats {
    return buildStats(this.#slots, this.health(), this.#guard?.pid, this.#lastReload, this.#state.size())
  }

  health (): ClusterHealth {
    return buildHealth(this.#slots, this.options)
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
    if (this.#stopping !== undefined) throw new FCK_SHUTTING_DOWN()
    if (this.#reloading !== undefined) throw new FCK_RELOAD_IN_PROGRESS()
    this.#reloading = this.#rollingReload().finally(() => { this.#reloading = undefined })
    return this.#reloading
  }

  /** Each slot's current worker that listens: the ones traffic and scrapes go to. */
  servingWorkers (): Array<{ id: string, worker: Worker }> {
    return this.#slots.flatMap((slot) => slot.worker?.readyAt === undefined ? [] : [{ id: String(slot.id), worker: slot.worker.worker }])
  }

  /** One worker's metrics for a scrape; rejects when it does not answer in `timeout` ms or exits. */
  async workerMetrics (worker: Worker, timeout: number): Promise<MetricJSON[]> {
    return await this.#metricRequests.request((id) => sendToWorker(worker, { type: 'fck:metrics-request', id }), timeout,
      () => new Error(`no metrics within ${timeout} ms`), worker)
  }

  /** A CPU profile of slot `id`'s worker over `seconds`, or a heap snapshot, as a stream (see diagnostics.ts). */
  diagnose (id: string, what: 'profile' | 'heap', seconds = 0): Readable {
    return this.#diagnostics.take(this.#slots[Number(id)]?.worker, id, what, seconds)
  }

  /** The cluster's metrics as Prometheus text, for the monitoring server and `metrics.endpoint`. */
  async scrape (extra?: Series[]): Promise<string> {
    return await this.#scrapes.scrape(extra)
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
      this.#lastReload = { at: new Date().toISOString(), ok: true, durationMs: result.durationMs }
      this.log.info(result, 'rolling reload: done')
      this.emit('reload:done', result)
      return result
    } catch (error) {
      const result = { ok: false as const, durationMs: Date.now() - started, reason: (error as Error).message }
      this.#lastReload = { at: new Date().toISOString(), ...result }
      this.log.error(result, 'rolling reload failed; the workers not yet replaced keep serving')
      this.emit('reload:failed', result)
      return result
    }
  }

  /**
   * Starts a candidate for the slot and, once it listens, promotes it and retires the worker it
   * replaces, whatever that one is doing (starting, serving, draining on its own): in every state
   * the slot ends with the candidate as its one current worker.
   */
  async #replace (slot: Slot, reason: string, replaces?: WorkerEntry['replaces']): Promise<void> {
    if (this.#stopping !== undefined) throw new FCK_SHUTTING_DOWN()
    let candidate: WorkerEntry
    try {
      candidate = this.#fork(slot, 'candidate')
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
    if (this.#stopping !== undefined) throw new FCK_SHUTTING_DOWN()
    const old = slot.worker
    clearTimeout(slot.restartTimer)
    candidate.role = 'current'
    slot.worker = candidate
    slot.earlyCrashes = 0
    slot.apply('promote', { pid: candidate.worker.process.pid, reason })
    if (old !== undefined) await this.#retire(old, reason)
  }

  /** Drains a worker that is no longer its slot's current one; kills it if it outstays the drain. */
  async #retire (entry: WorkerEntry, reason: string): Promise<void> {
    entry.role = 'retiring'
    // A worker that does not listen yet has no drain to run: a plain SIGTERM ends it.
    if (entry.readyAt === undefined) entry.worker.process.kill('SIGTERM')
    else sendToWorker(entry.worker, { type: 'fck:shutdown', reason })
    const timer = setTimeout(() => entry.worker.process.kill('SIGKILL'), this.options.gracefulTimeout + KILL_MARGIN)
    await entry.exited
    clearTimeout(timer)
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
    // Only what the worker needs on top of the primary's environment, which cluster.fork() passes on.
    const env = {
      ...workerEnv({}, slot.id, this.options, !this.#starting),
      CLUSTER_BALANCING: this.#balancing,
      [WORKER_FDS]: String(this.#passed),
      [REPORT_DIR]: this.#reports?.path,
      ...(this.options.hangStack ? { NODE_OPTIONS: [process.env.NODE_OPTIONS, INSPECTOR_OPTION].filter(Boolean).join(' ') } : {})
    }
    const entry = forkWorker(slot, role, env, this.options.readyTimeout, this.log, {
      onMessage: (entry, message, handle) => this.#onMessage(entry, message, handle),
      onGone: (entry, code, signal) => {
        this.#entries.delete(entry)
        this.#updateGuard()
        this.#metricRequests.cancel(new Error('the worker exited'), entry.worker)
        this.#diagnostics.cancel(entry)
        this.#rescueConnections(entry)
        this.#onExit(entry, code, signal)
      }
    })
    this.#entries.add(entry)
    this.#updateGuard()
    this.#rescue.watch(entry.worker)
    const { pid } = entry.worker.process
    // Not on 'exit': messages the worker sent just before it may still be unread then.
    if (pid !== undefined) entry.worker.once('disconnect', () => this.#ledger.retire(pid))
    return entry
  }

  #updateGuard (): void {
    this.#guard?.update([...this.#entries].map((entry) => entry.worker.process.pid))
  }

  /** Hands a connection the dead worker never acknowledged to a live worker (see handoff.ts). */
  #rescueConnections (dead: WorkerEntry): void {
    const heir = [...this.#entries].find((entry) => entry.readyAt !== undefined && entry.role !== 'retiring' && entry.worker.isConnected())
    const count = this.#rescue.release(dead.worker, heir?.worker)
    if (count > 0) {
      this.log.warn({ workerId: String(dead.slot.id), workerPid: dead.worker.process.pid, heir: heir?.worker.process.pid },
        `${count} connection(s) being handed to the dead worker ${heir === undefined ? 'wait for the next ready worker' : 'sent to another worker'}`)
    }
  }

  #onMessage (entry: WorkerEntry, message: WorkerMessage, handle: unknown): void {
    const { slot } = entry
    const current = entry.role === 'current' && slot.worker === entry
    switch (message.type) {
      case 'fck:ready':
        this.#rescue.adopt(entry.worker)
        if (current) slot.apply('listening', { pid: message.pid })
        this.#sockets.ready(slot)
        break
      case 'fck:heartbeat':
        entry.lastHeartbeat = Date.now()
        entry.sample = message.sample
        if (entry.readyAt !== undefined) entry.heartbeats++
        this.#checkHealth(entry)
        break
      case 'fck:draining':
        if (current) slot.apply('drain', { pid: message.pid, reason: message.reason })
        break
      case 'fck:failed':
        entry.failure = `failed to start: ${message.error.message}`
        break
      case 'fck:metrics':
        this.#ledger.record(message.pid, String(slot.id), message.metrics)
        this.#metricRequests.settle(message.id, message.metrics)
        break
      case 'fck:metrics-final':
        this.#ledger.record(message.pid, String(slot.id), message.metrics)
        break
      case 'fck:scrape':
        this.scrape().catch(() => undefined).then((text) => sendToWorker(entry.worker, { type: 'fck:scrape-result', id: message.id, text }))
        break
      case 'fck:listener-request':
        this.#sockets.answer(entry)
        break
      case 'fck:listener-bound':
        this.#sockets.hold(entry, handle)
        break
      case 'fck:diagnosis-chunk':
      case 'fck:diagnosis-end':
        this.#diagnostics.receive(message)
        break
      case 'fck:state':
        sendToWorker(entry.worker, { type: 'fck:state-result', id: message.id, values: message.requests.map((request) => this.#state.handle(request)) })
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
    const explained = this.#stopping === undefined ? explainExit(entry, code, signal, this.#reports?.path ?? '') : undefined
    const incident = explained === undefined ? undefined : { at: new Date().toISOString(), id: String(slot.id), pid, ...explained }
    if (incident !== undefined) slot.record(incident)
    slot.apply(code === 0 && incident === undefined ? 'exit' : 'crash', { pid, code, signal, reason: incident?.reason ?? entry.failure, incident })
    // A failure before listening during the first start aborts the start (see start()).
    if (this.#stopping !== undefined || (this.#starting && entry.readyAt === undefined)) return
    if (slot.candidate !== undefined) return // a reload or recycle is already bringing up its successor
    this.#sockets.lost(slot, this.#restarts.afterExit(slot, entry.readyAt), this.#slots.map((other) => other.worker))
  }

  /** Recycles a worker the recycle policy says uses too much memory, if nothing else is replacing it. */
  #checkHealth (entry: WorkerEntry): void {
    const { slot } = entry
    if (entry.role !== 'current') return
    const memory = this.#recycling.afterHeartbeat(entry)
    const sick = memory === undefined ? this.#sick.afterHeartbeat(entry) : undefined
    const reason = memory ?? sick
    if (reason === undefined || slot.state !== 'ready' || slot.candidate !== undefined || this.#reloading !== undefined || entry.diagnosing || this.#sickPending.has(entry)) return
    slot.recycles++
    const pid = entry.worker.process.pid ?? 0
    this.log.warn({ workerId: String(slot.id), workerPid: pid, reason, recycles: slot.recycles }, memory === undefined ? `replacing sick worker ${slot.id}: ${reason}` : 'recycling worker: memory')
    this.emit('worker:recycle', { id: String(slot.id), pid, recycles: slot.recycles, reason })
    const replaced = memory === undefined ? this.#replaceSick(entry, reason) : this.#replace(slot, reason, 'memory')
    replaced.catch((error: Error) => this.log.error({ err: error }, `replacing worker ${slot.id} failed; it keeps serving`))
  }

  /** A CPU profile of the sick worker's last seconds, kept with its incident, then its replacement. */
  async #replaceSick (entry: WorkerEntry, reason: string): Promise<void> {
    const { slot } = entry
    const { profileSeconds, profileDir } = this.options.sick as NonNullable<ResolvedBootOptions['sick']>
    const pid = entry.worker.process.pid ?? 0
    this.#sickPending.add(entry)
    let profile: string | undefined
    if (profileSeconds > 0) {
      try {
        let text = ''
        for await (const chunk of this.#diagnostics.take(entry, String(slot.id), 'profile', profileSeconds)) text += String(chunk)
        profile = await keepProfile(profileDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-worker-${slot.id}-${pid}.cpuprofile`, text)
      } catch (error) {
        this.log.warn({ workerId: String(slot.id), workerPid: pid, err: error }, `no CPU profile of sick worker ${slot.id}: ${(error as Error).message}`)
      }
    }
    slot.record({ at: new Date().toISOString(), id: String(slot.id), pid, kind: 'sick', reason, frames: [], ...(profile === undefined ? {} : { profile }) })
    await this.#replace(slot, reason, 'sick')
  }

  /** Kills ready workers whose heartbeat stopped (a blocked event loop). */
  #watch (): void {
    const now = Date.now()
    for (const entry of this.#entries) {
      if (entry.readyAt === undefined || entry.role === 'retiring' || entry.failure !== undefined || entry.diagnosing) continue
      if (now - entry.lastHeartbeat <= this.options.heartbeatTimeout) continue
      entry.failure = `no heartbeat for ${now - entry.lastHeartbeat} ms (heartbeatTimeout ${this.options.heartbeatTimeout} ms)`
      killHung(entry, this.options.hangStack, this.log).catch((error: Error) => this.log.error({ err: error }, 'killing a hung worker failed'))
    }
  }

  #onTransition = (slot: Slot, from: SlotState, event: SlotEvent, detail: TransitionDetail): void => {
    const id = String(slot.id)
    const to = slot.state
    const { pid = 0, ...rest } = detail
    const fields = { workerId: id, workerPid: pid, from, to, event, ...rest }
    // A crash and a slot given up are what an operator filtering on warn must see; a replacement
    // taking over is news of its own, not a state change.
    if (event === 'promote') this.log.info(fields, `worker ${id}: pid ${pid} took over (${detail.reason ?? 'replacement'})`)
    else {
      // A worker failing the first start is said by the start's error; one the stop ends is no news.
      const news = (to === 'crashed' || to === 'given-up') && !this.#starting && this.#stopping === undefined
      this.log[news ? 'warn' : 'info'](fields, `worker ${id}: ${from} -> ${to}${exitText(detail)}`)
    }
    if (event === 'listening' || event === 'promote') this.emit('worker:ready', { id, pid })
    else if (to === 'crashed' || to === 'stopped') {
      this.emit('worker:exit', { id, pid, code: detail.code ?? null, signal: detail.signal ?? null, state: to, reason: detail.reason, ...(detail.incident === undefined ? {} : { incident: detail.incident }) })
    } else if (event === 'fork' && slot.restarts > 0) this.emit('worker:restart', { id, restarts: slot.restarts, delay: detail.delay ?? 0 })
    else if (to === 'given-up') {
      this.log.warn({ workerId: id, earlyCrashes: slot.earlyCrashes },
        `worker ${id}: restart limit reached (maxRestarts ${this.options.maxRestarts}); slot given up` +
        (this.options.givenUpRetryDelay > 0 ? `, tried again every ${this.options.givenUpRetryDelay} ms` : ''))
      this.emit('restart-limit', { id, earlyCrashes: slot.earlyCrashes })
    }
    if (event === 'drain') this.#health.checkSoon()
    else this.#health.check()
  }

  #report (): void {
    const stats = this.stats()
    this.log.info({ report: stats }, formatReport(stats))
    if (fewerThanHalfAlive(stats.alive, stats.expected)) this.log.warn(`only ${stats.alive} of ${stats.expected} workers alive`)
  }

  /** Drains every worker in parallel, kills stragglers; resolves true when all exited cleanly. */
  async #stop (): Promise<boolean> {
    this.#stopping ??= (async () => {
      this.#systemd.stopping()
      for (const timer of this.#timers) clearInterval(timer)
      this.#health.stop()
      this.#restarts.stop(this.#slots)
      this.#sockets.releaseAll()
      const entries = [...this.#entries]
      let clean = true
      for (const entry of entries) {
        entry.worker.once('exit', (code: number | null) => { if (code !== 0) clean = false })
        if (entry.readyAt !== undefined) sendToWorker(entry.worker, { type: 'fck:shutdown', reason: 'cluster shutdown' })
        else entry.worker.process.kill('SIGTERM')
      }
      const killer = setTimeout(() => {
        for (const entry of this.#entries) {
          this.log.error({ workerId: String(entry.slot.id), workerPid: entry.worker.process.pid }, 'killing worker: drain outlasted gracefulTimeout')
          entry.worker.process.kill('SIGKILL')
        }
      }, this.options.gracefulTimeout + KILL_MARGIN)
      await Promise.all(entries.map(async (entry) => await entry.exited))
      clearTimeout(killer)
      this.#rescue.discard()
      await this.#monitoring?.close()
      this.#state.stop()
      this.#guard?.stop()
      this.#uninstallSignals?.()
      await this.#systemd.stop()
      this.#reports?.remove()
      this.log.info({ clean }, 'cluster stopped')
      return clean
    })()
    return await this.#stopping
  }
}
