import type { PrimaryLogger } from '../log.js'
import type { ResolvedBootOptions } from '../options.js'
import type { Slot } from '../supervision/slot.js'
import type { StoreSize } from '../../shared-state/primary-store.js'
import type { Rollout } from '../supervision/rollout.js'
import type { ClusterHealth, ClusterStats, WorkerStats } from '../types.js'

const MB = 2 ** 20

function workerStats (slot: Slot, now: number): WorkerStats {
  const entry = slot.worker
  const sample = entry?.sample
  return {
    id: String(slot.id),
    pid: entry?.worker.process.pid ?? null,
    state: slot.state,
    uptime: entry === undefined ? 0 : Math.round((now - entry.forkedAt) / 100) / 10,
    restarts: slot.restarts,
    recycles: slot.recycles,
    recyclingStopped: slot.recyclingStopped ?? null,
    incidents: slot.incidents ?? null,
    memory: sample === undefined ? null : { rss: sample.rss, heapUsed: sample.heapUsed, heapTotal: sample.heapTotal },
    cpu: sample?.cpu.percent ?? null,
    eventLoop: sample?.eventLoop ?? null,
    requests: sample?.requests ?? null
  }
}

/** The line under which the cluster counts as degraded and the report warns. */
export function fewerThanHalfAlive (alive: number, expected: number): boolean {
  return alive * 2 < expected
}

/** `rollout`: the rollout's warning after the release on disk failed its canary. */
export function buildHealth (slots: readonly Slot[], { maxRestarts }: Pick<ResolvedBootOptions, 'maxRestarts'>, rollout?: string): ClusterHealth {
  const alive = slots.filter((slot) => slot.alive).length
  const expected = slots.length
  const warnings: string[] = []
  for (const slot of slots) {
    // Still given up while a retry of it is starting: health turns ok only once a worker is ready,
    // rather than flapping at every retry.
    const givenUp = slot.state === 'given-up' || (slot.earlyCrashes > maxRestarts && slot.state !== 'ready')
    if (givenUp) warnings.push(`worker ${slot.id} gave up after ${maxRestarts} restarts (early crashes in a row)`)
    if (slot.recyclingStopped !== undefined) warnings.push(`worker ${slot.id} ${slot.recyclingStopped}: memory recycling stopped`)
    if (slot.sickStopped !== undefined) warnings.push(`worker ${slot.id} ${slot.sickStopped}: sick-worker replacement stopped`)
  }
  if (fewerThanHalfAlive(alive, expected)) warnings.push(`only ${alive} of ${expected} workers alive`)
  if (rollout !== undefined) warnings.push(rollout)
  const healthy = warnings.length === 0
  return { status: healthy ? 'ok' : 'degraded', healthy, alive, expected, warnings }
}

export function buildStats (
  slots: readonly Slot[], health: ClusterHealth, guard: number | undefined, rollout: Pick<Rollout, 'last' | 'progress'>, store: StoreSize
): ClusterStats {
  const now = Date.now()
  const memory = process.memoryUsage()
  return {
    primary: {
      pid: process.pid,
      uptime: Math.round(process.uptime() * 10) / 10,
      memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal },
      guard: guard ?? null
    },
    workers: slots.map((slot) => workerStats(slot, now)),
    alive: health.alive,
    expected: health.expected,
    healthy: health.healthy,
    warnings: health.warnings,
    lastReload: rollout.last ?? null,
    rollout: rollout.progress ?? null,
    store: {
      sessions: store.sessions + store.emptySessions,
      emptySessions: store.emptySessions,
      clients: store.clients,
      sessionBytes: store.sessionBytes,
      counters: store.counters,
      evictions: {
        clientLimit: store.evictions.session.client_limit + store.evictions.empty_session.client_limit,
        storeFull: store.evictions.session.store_full + store.evictions.empty_session.store_full
      }
    }
  }
}

/** The periodic "Cluster Health Report" log line. */
export function formatReport (stats: ClusterStats): string {
  const lines = [
    `Cluster Health Report: primary pid ${stats.primary.pid}, uptime ${stats.primary.uptime}s, ` +
    `workers ${stats.alive}/${stats.expected} alive, primary rss ${Math.round(stats.primary.memory.rss / MB)} MB`
  ]
  for (const worker of stats.workers) {
    const rss = worker.memory === null ? '?' : `${Math.round(worker.memory.rss / MB)} MB`
    lines.push(`  worker ${worker.id}: pid ${worker.pid ?? '-'}, ${worker.state}, uptime ${worker.uptime}s, restarts ${worker.restarts}, rss ${rss}`)
  }
  for (const warning of stats.warnings) lines.push(`  warning: ${warning}`)
  return lines.join('\n')
}

/** The periodic "Cluster Health Report" line every `interval` ms, and a warning while fewer than half the workers are alive. */
export function startReports (interval: number, stats: () => ClusterStats, log: PrimaryLogger): NodeJS.Timeout {
  return setInterval(() => {
    const now = stats()
    log.info({ report: now }, formatReport(now))
    if (fewerThanHalfAlive(now.alive, now.expected)) log.warn(`only ${now.alive} of ${now.expected} workers alive`)
  }, interval).unref()
}
