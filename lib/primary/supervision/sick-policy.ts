import type { WorkerSample } from '../../common/sample.js'
import type { PrimaryLogger } from '../log.js'
import type { ResolvedSick } from '../options.js'
import type { WorkerEntry } from './slot.js'

const MB = 2 ** 20

/** Which limit a heartbeat's sample is over, in words, or undefined. */
function overLimit (sample: WorkerSample, limits: ResolvedSick): string | undefined {
  const { loopDelay, utilization, heapUsed } = limits
  if (loopDelay !== undefined && sample.eventLoop.p99 > loopDelay) return `event-loop delay p99 ${Math.round(sample.eventLoop.p99)} ms above ${loopDelay} ms`
  if (utilization !== undefined && sample.eventLoop.utilization > utilization) return `event-loop utilisation ${sample.eventLoop.utilization.toFixed(2)} above ${utilization}`
  if (heapUsed !== undefined && sample.heapUsed > heapUsed) return `heap in use ${Math.round(sample.heapUsed / MB)} MB above ${Math.round(heapUsed / MB)} MB`
  return undefined
}

/**
 * When a worker is sick, not dead (the `sick` option): over a limit for `heartbeats` heartbeats in
 * a row. A replacement for a sick worker that turns sick before it had `heartbeats` healthy ones is
 * sick from its start (the code, not the process): replacing it again would loop, so the policy
 * stops for that slot (health says why) until a worker of the slot is healthy for its first
 * `heartbeats` heartbeats.
 */
export class SickPolicy {
  constructor (private readonly limits: ResolvedSick | undefined, private readonly log: PrimaryLogger, private readonly onChange: () => void) {}

  /** After a heartbeat of a slot's current worker: why to replace it now, or undefined. */
  afterHeartbeat (entry: WorkerEntry): string | undefined {
    const { limits } = this
    const { slot, sample } = entry
    if (limits === undefined || sample === undefined || entry.readyAt === undefined) return undefined
    const over = overLimit(sample, limits)
    if (over === undefined) {
      entry.sickBeats = 0
      entry.healthyBeats++
      if (slot.sickStopped !== undefined && entry.healthyBeats === limits.heartbeats && entry.heartbeats === limits.heartbeats) {
        slot.stop('sick', undefined)
        this.log.info({ workerId: String(slot.id) }, `worker ${slot.id} starts healthy again: sick-worker replacement resumed`)
        this.onChange()
      }
      return undefined
    }
    entry.sickBeats++
    if (entry.sickBeats < limits.heartbeats || slot.sickStopped !== undefined) return undefined
    if (entry.replaces === 'sick' && entry.healthyBeats < limits.heartbeats) {
      slot.stop('sick', `is sick from its start (${over})`)
      this.log.error({ workerId: String(slot.id), workerPid: entry.worker.process.pid },
        `worker ${slot.id} ${slot.sickStopped}: sick-worker replacement stopped for it, since every replacement would be replaced again`)
      this.onChange()
      return undefined
    }
    return `${over} for ${entry.sickBeats} heartbeats in a row`
  }
}
