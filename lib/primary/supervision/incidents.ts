import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PrimaryLogger } from '../log.js'
import type { WorkerEntry } from './slot.js'
import { captureStack, frameText, stackFrames } from './stack-capture.js'
import type { Incident } from '../types.js'

export { INSPECTOR_OPTION } from './stack-capture.js'

/** The bound on taking a hung worker's stack; the kill follows either way. */
const STACK_TIMEOUT = 1000

const MB = 2 ** 20

/** How long before its exit a worker's word on what is ending it still explains the exit. */
const FATAL_FRESH = 10_000

/** The OOM kills the kernel has counted in a cgroup (an `oom_kill N` line), or undefined where it cannot be read. */
function oomKills (file: string): number | undefined {
  try {
    const match = /^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'))
    return match?.[1] === undefined ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

/**
 * Where a process's memory cgroup counts OOM kills, and the count now: read at fork, compared at
 * exit. cgroup v1's memory controller (memory.oom_control) where it is mounted, else v2's memory.events.
 */
export function oomKillCounter (pid: number): WorkerEntry['oomKills'] {
  try {
    const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    const v1 = /^\d+:memory:(.*)$/m.exec(cgroups)?.[1]
    const v2 = /^0::(.*)$/m.exec(cgroups)?.[1]
    const trim = (path: string): string => path === '/' ? '' : path
    const file = v1 !== undefined ? `/sys/fs/cgroup/memory${trim(v1)}/memory.oom_control` : v2 !== undefined ? `/sys/fs/cgroup${trim(v2)}/memory.events` : undefined
    if (file === undefined) return undefined
    const before = oomKills(file)
    return before === undefined ? undefined : { file, before }
  } catch {
    return undefined
  }
}

/** The incident of a worker's exit (see explainExit), stamped with when, which slot and which pid; undefined for a clean exit. */
export function incidentOf (entry: WorkerEntry, code: number | null, signal: string | null, reportDir: string): Incident | undefined {
  const explained = explainExit(entry, code, signal, reportDir)
  return explained === undefined ? undefined : { at: new Date().toISOString(), id: String(entry.slot.id), pid: entry.worker.process.pid ?? 0, ...explained }
}

/**
 * Why a worker that ended otherwise than by a clean exit was lost, from what the primary knows:
 * the stack it took before killing a hung worker, what the worker said was ending it, the report
 * Node wrote when it aborted, its cgroup's OOM kills. Undefined for exit code 0.
 */
function explainExit (entry: WorkerEntry, code: number | null, signal: string | null, reportDir: string): Omit<Incident, 'at' | 'id' | 'pid'> | undefined {
  if (entry.hungAt !== undefined) {
    const [top] = entry.hungAt
    return { kind: 'hang', reason: `${entry.failure ?? 'no heartbeat'}${top === undefined ? '' : `; its main thread was in ${frameText(top)}`}`, frames: entry.hungAt }
  }
  const fatal = entry.fatal
  if (fatal !== undefined && Date.now() - fatal.at < FATAL_FRESH) {
    const frames = stackFrames(fatal.stack)
    const [top] = frames
    return { kind: 'crash', reason: `${fatal.name}: ${fatal.message}${top === undefined ? '' : ` at ${top.file}:${top.line}`}`, frames }
  }
  if (code === 0) return undefined
  if (entry.failure !== undefined) return { kind: 'exit', reason: entry.failure, frames: [] }
  if (signal === 'SIGABRT') return aborted(entry, reportDir)
  if (signal === 'SIGKILL' && entry.oomKills !== undefined && (oomKills(entry.oomKills.file) ?? 0) > entry.oomKills.before) {
    const rss = entry.sample === undefined ? '' : `; ${Math.round(entry.sample.rss / MB)} MB resident at the last heartbeat`
    return { kind: 'oom-kill', reason: `killed by the kernel's OOM killer (its cgroup counted an oom_kill in ${entry.oomKills.file}${rss})`, frames: [] }
  }
  if (signal !== null) return { kind: 'signal', reason: `killed by ${signal} from outside the kit`, frames: [] }
  return { kind: 'exit', reason: `exit code ${code ?? 'unknown'}`, frames: [] }
}

/**
 * Kills a worker whose heartbeat stopped (its `failure` says so), first taking where its main
 * thread is when `hangStack` allows: the stack goes in the kill's log line and, through
 * `hungAt`, in the exit's incident.
 */
export async function killHung (entry: WorkerEntry, hangStack: boolean, log: PrimaryLogger): Promise<void> {
  const pid = entry.worker.process.pid as number
  const fields = { workerId: String(entry.slot.id), workerPid: pid }
  if (hangStack) {
    const started = Date.now()
    try {
      entry.hungAt = await captureStack(pid, STACK_TIMEOUT)
    } catch (error) {
      entry.hungAt = []
      entry.failure += ` (stack not taken: ${(error as Error).message})`
    }
    const where = entry.hungAt.length === 0 ? '' : `; its main thread was in ${entry.hungAt.map(frameText).join(' < ')}`
    log.error({ ...fields, frames: entry.hungAt, captureMs: Date.now() - started }, `killing worker ${entry.slot.id}: ${entry.failure ?? ''}${where}`)
  } else {
    entry.hungAt = []
    log.error(fields, `killing worker ${entry.slot.id}: ${entry.failure ?? ''}`)
  }
  entry.worker.process.kill('SIGKILL')
}

/**
 * Where workers write the diagnostic report Node produces when it dies of a fatal error (see
 * reportFatalErrors in lib/worker/fatal.ts): one directory per primary, emptied as reports are
 * read, removed when the cluster stops.
 */
export function reportDirectory (): { path: string, remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'fastify-cluster-kit-reports-'))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

interface FatalReport { header?: { event?: string, trigger?: string }, javascriptStack?: { stack?: string[] }, javascriptHeap?: { usedMemory?: number } }

/** An aborted worker: what its fatal-error report says (read, then deleted), else what the primary saw. */
function aborted (entry: WorkerEntry, reportDir: string): Omit<Incident, 'at' | 'id' | 'pid'> {
  const pid = entry.worker.process.pid
  let report: FatalReport | undefined
  try {
    const file = readdirSync(reportDir).find((name) => name.includes(`.${pid}.`))
    if (file !== undefined) {
      report = JSON.parse(readFileSync(join(reportDir, file), 'utf8')) as FatalReport
      rmSync(join(reportDir, file), { force: true })
    }
  } catch {}
  const event = report?.header?.event
  const used = report?.javascriptHeap?.usedMemory
  if (report?.header?.trigger === 'OOMError' || event?.includes('heap out of memory') === true) {
    const heap = used === undefined ? '' : `; ${Math.round(used / MB)} MB of heap in use`
    return { kind: 'heap-oom', reason: `V8 heap out of memory (${event ?? 'aborted'}${heap}); raise --max-old-space-size or find what grows`, frames: [] }
  }
  if (event !== undefined) return { kind: 'crash', reason: `fatal error: ${event}`, frames: stackFrames((report?.javascriptStack?.stack ?? []).join('\n')) }
  const heap = entry.sample === undefined ? '' : `; heap ${Math.round(entry.sample.heapUsed / MB)} MB at the last heartbeat`
  return { kind: 'signal', reason: `aborted (SIGABRT): a fatal error of V8, Node or a native addon${heap}`, frames: [] }
}

/** Profiles kept in the sick policy's directory; older ones are deleted. */
const KEPT_PROFILES = 10

/** Writes a sick worker's CPU profile into `dir` and deletes the oldest past the newest KEPT_PROFILES; its path. */
export async function keepProfile (dir: string, name: string, profile: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const path = join(dir, name)
  await writeFile(path, profile)
  const kept = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile')).sort()
  // Names start with the time, so they sort oldest first.
  await Promise.all(kept.slice(0, Math.max(0, kept.length - KEPT_PROFILES)).map(async (file) => await rm(join(dir, file), { force: true })))
  return path
}
