import { freemem } from 'node:os'
import { PassThrough, type Readable } from 'node:stream'
import { FCK_DIAGNOSIS_RUNNING, FCK_NO_READY_WORKER, FCK_SNAPSHOT_NO_ROOM } from '../../common/errors.js'
import { sendToWorker, type WorkerMessage } from '../../common/protocol.js'
import type { WorkerEntry } from './slot.js'

const MB = 2 ** 20

/** Profiles last 1 to this many seconds. */
export const MAX_PROFILE_SECONDS = 300

/** Time a worker has to answer beyond the profile's own seconds (a heap snapshot of a big heap takes a while). */
const ANSWER_MARGIN = 120_000

interface Running { entry: WorkerEntry, stream: PassThrough, bytes: number, limit: number, timer: NodeJS.Timeout }

/**
 * CPU profiles and heap snapshots of workers on demand (`POST /cluster/workers/:id/profile`,
 * `.../heap-snapshot`), taken inside the worker (lib/worker/diagnose.ts) and streamed through the
 * primary. One at a time per worker; a heap snapshot only where there is room for it; while a
 * worker gives one, its missing heartbeats do not count (a heap snapshot blocks its event loop).
 */
export class Diagnostics {
  #sequence = 0
  readonly #running = new Map<number, Running>()

  constructor (private readonly maxMemory: number | undefined) {}

  /** The stream of the profile or snapshot of `entry` (slot `id`); throws with a status code when it cannot be had. */
  take (entry: WorkerEntry | undefined, id: string, what: 'profile' | 'heap', seconds: number): Readable {
    if (entry?.readyAt === undefined) throw new FCK_NO_READY_WORKER(id)
    const name = what === 'profile' ? 'CPU profile' : 'heap snapshot'
    if ([...this.#running.values()].some((running) => running.entry === entry)) throw new FCK_DIAGNOSIS_RUNNING(id)
    const heap = entry.sample?.heapUsed ?? 0
    // Writing a snapshot takes native memory of about the heap's size again, and the IPC queue holds what is not sent yet.
    const needed = 2 * heap
    if (what === 'heap' && this.maxMemory !== undefined && (entry.sample?.rss ?? 0) + needed > this.maxMemory) {
      throw new FCK_SNAPSHOT_NO_ROOM(id, Math.round(needed / MB), ` more, which would take it past maxMemory (${Math.round(this.maxMemory / MB)} MB)`)
    }
    if (what === 'heap' && needed > freemem()) {
      throw new FCK_SNAPSHOT_NO_ROOM(id, Math.round(needed / MB), `; the machine has ${Math.round(freemem() / MB)} MB free`)
    }
    const request = ++this.#sequence
    const stream = new PassThrough()
    const timer = setTimeout(() => this.#end(request, `worker ${id} gave no ${name} within ${(seconds * 1000 + ANSWER_MARGIN) / 1000} s`), seconds * 1000 + ANSWER_MARGIN)
    // A profile is small; a snapshot is a few times the heap at most.
    this.#running.set(request, { entry, stream, bytes: 0, limit: what === 'profile' ? 512 * MB : 4 * heap + 256 * MB, timer })
    entry.diagnosing = true
    sendToWorker(entry.worker, { type: 'fck:diagnose', id: request, what, seconds })
    return stream
  }

  /** A worker's chunk or end of an answer. */
  receive (message: Extract<WorkerMessage, { type: 'fck:diagnosis-chunk' | 'fck:diagnosis-end' }>): void {
    const running = this.#running.get(message.id)
    if (running === undefined) return
    if (message.type === 'fck:diagnosis-end') return this.#end(message.id, message.error)
    running.bytes += message.chunk.length
    if (running.bytes > running.limit) return this.#end(message.id, `it grew past ${Math.round(running.limit / MB)} MB`)
    running.stream.write(message.chunk)
  }

  /** Fails what a worker that exited was giving. */
  cancel (entry: WorkerEntry): void {
    for (const [request, running] of this.#running) if (running.entry === entry) this.#end(request, 'the worker exited')
  }

  #end (request: number, error: string | undefined): void {
    const running = this.#running.get(request)
    if (running === undefined) return
    this.#running.delete(request)
    clearTimeout(running.timer)
    running.entry.diagnosing = false
    // Its heartbeats may have paused meanwhile: count from now.
    running.entry.lastHeartbeat = Math.max(running.entry.lastHeartbeat, Date.now())
    if (error === undefined) running.stream.end()
    else running.stream.destroy(new Error(error))
  }
}
