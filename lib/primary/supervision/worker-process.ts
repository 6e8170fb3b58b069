import cluster, { type Worker } from 'node:cluster'
import { WORKER_FDS } from '../../common/activation.js'
import { workerEnv } from '../../common/identity.js'
import { isWorkerMessage, REPORT_DIR, type WorkerMessage } from '../../common/protocol.js'
import type { ResolvedBootOptions } from '../options.js'
import type { PrimaryLogger } from '../log.js'
import { INSPECTOR_OPTION, oomKillCounter } from './incidents.js'
import type { Slot, WorkerEntry } from './slot.js'

/** How long an exited worker's last messages are waited for. */
const DISCONNECT_WAIT = 500

export interface WorkerHooks {
  /** Every typed message of the worker; `fck:ready` has already marked the entry ready. */
  onMessage: (entry: WorkerEntry, message: WorkerMessage, handle: unknown) => void
  /** The worker exited, or could not be forked (code and signal null); once per entry. */
  onGone: (entry: WorkerEntry, code: number | null, signal: string | null) => void
}

/**
 * Only what a worker needs on top of the primary's environment, which cluster.fork() passes on:
 * its identity and settings, the balancing mode, the sockets systemd passed, where a fatal-error
 * report goes, and the inspector flag that lets a hung worker's stack be taken.
 */
export function workerEnvironment (
  slot: Slot, options: ResolvedBootOptions, { restarted, balancing, passed, reports }: { restarted: boolean, balancing: string, passed: number, reports: string | undefined }
): Record<string, string | undefined> {
  return {
    ...workerEnv({}, slot.id, options, restarted),
    CLUSTER_BALANCING: balancing,
    [WORKER_FDS]: String(passed),
    [REPORT_DIR]: reports,
    ...(options.hangStack ? { NODE_OPTIONS: [process.env.NODE_OPTIONS, INSPECTOR_OPTION].filter(Boolean).join(' ') } : {})
  }
}

/**
 * Forks one worker for `slot` with `env` on top of the primary's environment and follows it:
 * ready once it says it listens, killed as a failed start past `readyTimeout`, gone once it exits.
 * A fork the system refuses at once (ENOMEM) throws; one it refuses later (EAGAIN under a pids
 * limit) emits 'error' and never 'exit', and ends the entry like an exit: a failed start of the
 * slot, never an unhandled 'error' that would take the primary down.
 */
export function forkWorker (
  slot: Slot, role: WorkerEntry['role'], env: Record<string, string | undefined>, readyTimeout: number, log: PrimaryLogger, hooks: WorkerHooks
): WorkerEntry {
  let worker: Worker
  try {
    worker = cluster.fork(env)
  } catch (error) {
    const message = `could not be forked: ${(error as Error).message}`
    log.error({ err: error, workerId: String(slot.id) }, `worker ${slot.id} ${message}`)
    throw new Error(message)
  }
  let onReady!: () => void
  let onFailed!: (error: Error) => void
  let onExited!: () => void
  const entry: WorkerEntry = {
    worker,
    slot,
    role,
    forkedAt: Date.now(),
    readyAt: undefined,
    lastHeartbeat: 0,
    heartbeats: 0,
    replaces: undefined,
    sickBeats: 0,
    healthyBeats: 0,
    sample: undefined,
    failure: undefined,
    fatal: undefined,
    hungAt: undefined,
    lost: undefined,
    diagnosing: false,
    oomKills: worker.process.pid === undefined ? undefined : oomKillCounter(worker.process.pid),
    ready: new Promise((resolve, reject) => { onReady = resolve; onFailed = reject }),
    exited: new Promise((resolve) => { onExited = resolve })
  }
  entry.ready.catch(() => {}) // whoever waits for it hears the failure; nobody else must
  const readyTimer = setTimeout(() => {
    entry.failure = `did not listen within readyTimeout (${readyTimeout} ms)`
    worker.process.kill('SIGKILL')
  }, readyTimeout)
  let ended = false
  const gone = (code: number | null, signal: string | null): void => {
    clearTimeout(readyTimer)
    if (ended) return
    ended = true
    if (entry.readyAt === undefined) {
      onFailed(new Error(entry.failure ?? `exited (${signal === null ? `code ${code}` : `signal ${signal}`}) before listening`))
    }
    hooks.onGone(entry, code, signal)
    onExited()
  }
  worker.on('message', (message: unknown, handle: unknown) => {
    if (!isWorkerMessage(message)) return
    if (message.type === 'fck:ready') {
      clearTimeout(readyTimer)
      entry.readyAt = entry.lastHeartbeat = Date.now()
      onReady()
    } else if (message.type === 'fck:fatal') {
      entry.fatal = { at: Date.now(), ...message.error }
    }
    hooks.onMessage(entry, message, handle)
  })
  // What a worker sends just before it dies (what is ending it) can still be unread at 'exit':
  // the channel's end comes after its last message, so wait for it (briefly: a channel a
  // grandchild inherited may stay open).
  worker.once('exit', (code: number | null, signal: string | null) => {
    if (!worker.isConnected()) return gone(code, signal)
    const timer = setTimeout(() => gone(code, signal), DISCONNECT_WAIT)
    worker.once('disconnect', () => { clearTimeout(timer); gone(code, signal) })
  })
  worker.on('error', (error: Error) => {
    if (worker.process.pid !== undefined) {
      log.warn({ err: error, workerId: String(slot.id), workerPid: worker.process.pid }, `worker ${slot.id}: ${error.message}`)
      return
    }
    entry.failure = `could not be forked: ${error.message}`
    log.error({ err: error, workerId: String(slot.id) }, `worker ${slot.id} ${entry.failure}`)
    gone(null, null)
  })
  return entry
}
