import type { PrimaryLogger } from '../log.js'
import type { WorkerEntry } from './slot.js'

/**
 * When a worker is recycled for memory. Above `maxMemory` a ready worker is replaced gracefully. A
 * replacement that is itself above it at its first heartbeat starts above it: recycling again would
 * loop, so recycling stops for that slot (and health says why) until a worker of the slot starts
 * below the limit.
 */
export class RecyclePolicy {
  constructor (private readonly maxMemory: number | undefined, private readonly log: PrimaryLogger, private readonly onChange: () => void) {}

  /** After a heartbeat of a slot's current worker: why to recycle it now, or undefined. */
  afterHeartbeat (entry: WorkerEntry): string | undefined {
    const { maxMemory } = this
    const { slot, sample } = entry
    if (maxMemory === undefined || sample === undefined || entry.readyAt === undefined) return undefined
    const over = sample.rss > maxMemory
    if (entry.heartbeats === 1 && over && entry.replaces === 'memory' && slot.recyclingStopped === undefined) {
      slot.stop('recycling', `starts above maxMemory (rss ${sample.rss} > ${maxMemory} bytes)`)
      this.log.error({ workerId: String(slot.id), workerPid: entry.worker.process.pid, rss: sample.rss, maxMemory },
        `worker ${slot.id} ${slot.recyclingStopped}: memory recycling stopped for it, since every replacement would be recycled again; raise maxMemory`)
      this.onChange()
    } else if (entry.heartbeats === 1 && !over && slot.recyclingStopped !== undefined) {
      slot.stop('recycling', undefined)
      this.log.info({ workerId: String(slot.id) }, `worker ${slot.id} starts below maxMemory again: memory recycling resumed`)
      this.onChange()
    }
    if (!over || slot.recyclingStopped !== undefined) return undefined
    return `rss ${sample.rss} bytes above maxMemory ${maxMemory}`
  }
}
