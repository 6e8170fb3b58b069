import type { EventEmitter } from 'node:events'
import type { EventLoopSchema, FromSchema, MemorySchema, RequestsSchema } from '../common/sample.js'
import type { SlotState } from './supervision/slot.js'

export interface WorkerStats {
  /** Slot id, `0..N-1`, kept by replacements. */
  id: string
  pid: number | null
  state: SlotState
  /** Seconds since this worker was forked. */
  uptime: number
  /** Workers started in this slot after its worker exited (a crash, an exit, a kill); a reload's or a recycle's replacement is not one. */
  restarts: number
  /** Workers of this slot replaced for using more than maxMemory. */
  recycles: number
  /** Why memory recycling is stopped for this slot (its workers start above maxMemory); null while it runs. */
  recyclingStopped: string | null
  /** The first and the latest worker this slot lost, and why (a crash loop keeps both); null before any. */
  incidents: { first: Incident, last: Incident } | null
  /** From the last heartbeat, bytes; null before the first. */
  memory: FromSchema<typeof MemorySchema> | null
  /** Percent of one core over the last heartbeat window. */
  cpu: number | null
  /** Event-loop delay (ms) and utilization over the last heartbeat window. */
  eventLoop: FromSchema<typeof EventLoopSchema> | null
  requests: FromSchema<typeof RequestsSchema> | null
}

export interface ClusterStats {
  /** `guard`: pid of the orphan guard, the one other process the primary keeps (see README, "Operations"). */
  primary: { pid: number, uptime: number, memory: FromSchema<typeof MemorySchema>, guard: number | null }
  workers: WorkerStats[]
  /** Slots whose worker is ready. */
  alive: number
  expected: number
  healthy: boolean
  warnings: string[]
  /** How the last rolling reload ended (`at`: ISO time), null before the first. */
  lastReload: LastReload | null
  /** Where the reload that runs is (a canary's bake, its verdict, the roll), null when none runs. */
  rollout: RolloutProgress | null
  /** The primary's shared store (sessions and rate-limit counters of the `primary` backend). */
  store: StoreStats
}

export interface StoreStats {
  sessions: number
  /** Of `sessions`, those holding nothing but their cookie. */
  emptySessions: number
  /** Client addresses holding at least one session. */
  clients: number
  sessionBytes: number
  counters: number
  /** Sessions evicted since start: by a client over `maxSessionsPerClient` (its own), or by a full store. */
  evictions: { clientLimit: number, storeFull: number }
}

export type LastReload = { at: string } & ({ ok: true, durationMs: number } | { ok: false, durationMs: number, reason: string })

export interface ClusterHealth {
  /**
   * `degraded` when fewer than half the expected workers are alive, a slot gave up, a slot's
   * memory recycling or sick-worker replacement stopped, or the release on disk failed its canary.
   */
  status: 'ok' | 'degraded'
  healthy: boolean
  alive: number
  expected: number
  warnings: string[]
}

/** `canary`: the verdict on the canaries when canary rollouts are on (see CanaryVerdict). */
export type ReloadResult =
  | { ok: true, durationMs: number, workers: Array<{ id: string, pid: number }>, canary?: CanaryVerdict }
  | { ok: false, durationMs: number, reason: string, canary?: CanaryVerdict }

/** What one side (the canaries, or the old workers) did over a canary's bake. */
export interface BakeSide {
  requests: number
  /** 5xx responses over requests, 0 to 1. */
  errorShare: number
  /** Request p99 in ms: the p99s of the heartbeat windows, weighted by their requests. */
  latencyP99: number
  /** Event-loop delay p99 in ms: the mean of the heartbeat windows'. */
  loopP99: number
}

/** How the canaries were judged, in words (`reason`) and numbers. */
export interface CanaryVerdict {
  passed: boolean
  reason: string
  bakeMs: number
  canary: BakeSide
  old: BakeSide
}

/**
 * A canary rollout's phases: `surge` (the canaries start beside the old workers), `bake` (they
 * serve), `judge`, then `roll` (the old workers are replaced one by one) or `abort` (the canaries
 * are retired; the old workers keep serving).
 */
export type RolloutPhase = 'surge' | 'bake' | 'judge' | 'roll' | 'abort'

export interface RolloutProgress {
  phase: RolloutPhase
  /** When the phase began (ISO time). */
  since: string
  /** In words, with its numbers: `baking 1 canary worker(s): 140 of 100 requests, 18 s left`. */
  message: string
  /** The canary workers, extra to the configured ones until the roll gives each a slot. */
  canaries: Array<{ id: string, pid: number }>
}

export interface WorkerEvent {
  id: string
  pid: number
}

/** One JavaScript frame (1-based line and column; the file relative to the working directory, source-mapped where a map exists). */
export interface Frame { function: string, file: string, line: number, column: number }

/**
 * Why a worker was lost, with the evidence the primary had when it happened.
 * - `hang`: killed for a stopped heartbeat; `frames` is where its main thread was
 * - `crash`: an uncaught exception or unhandled rejection; `frames` is the error's stack
 * - `heap-oom`: V8 aborted it for running out of heap
 * - `oom-kill`: the kernel's OOM killer ended it (its memory cgroup counted an oom_kill)
 * - `signal`: a signal from outside the kit (SIGKILL, SIGTERM...)
 * - `sick`: replaced by the `sick` policy; `profile` is the CPU profile of its last seconds
 * - `exit`: it exited with a non-zero code and said nothing more
 */
export interface Incident {
  at: string
  id: string
  pid: number
  kind: 'hang' | 'crash' | 'heap-oom' | 'oom-kill' | 'signal' | 'exit' | 'sick'
  /** In words: `TypeError: Cannot read properties of undefined (reading 'id') at routes/users.js:42`. */
  reason: string
  frames: Frame[]
  /** The path of a CPU profile kept with the incident. */
  profile?: string
}

export interface ClusterEvents {
  'worker:ready': [WorkerEvent]
  /** `incident`: why, when the worker was lost rather than stopped (a crash, a hang, a kill). */
  'worker:exit': [WorkerEvent & { code: number | null, signal: string | null, state: SlotState | 'retired', reason?: string, incident?: Incident }]
  'worker:restart': [{ id: string, restarts: number, delay: number }]
  /** A worker is being replaced for using more than maxMemory. */
  'worker:recycle': [WorkerEvent & { recycles: number, reason: string }]
  'restart-limit': [{ id: string, earlyCrashes: number }]
  'reload:start': [{ slots: number }]
  'reload:done': [Extract<ReloadResult, { ok: true }>]
  'reload:failed': [Extract<ReloadResult, { ok: false }>]
  /** A canary rollout entered a phase (and, during the bake, its progress every few seconds). */
  'reload:phase': [RolloutProgress]
  unhealthy: [ClusterHealth]
  healthy: [ClusterHealth]
}

/** What `bootCluster()` resolves to in the primary. */
export interface ClusterHandle extends EventEmitter<ClusterEvents> {
  stats: () => ClusterStats
  health: () => ClusterHealth
  /** Rolling reload, one slot at a time; rejects with FCK_RELOAD_IN_PROGRESS while one runs. */
  reload: () => Promise<ReloadResult>
  /** Drains every worker in parallel; stragglers are killed after gracefulTimeout. */
  shutdown: () => Promise<void>
}
