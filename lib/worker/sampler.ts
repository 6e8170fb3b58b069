import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks'
import type { WorkerSample } from '../common/sample.js'

const NS_PER_MS = 1e6
const RESOLUTION_MS = 10

export interface RequestCounters {
  total: number
  inFlight: number
}

/** What the request histogram says at a window's end: its p99 in ms, and 5xx responses since start. */
export interface HistogramWindow { latencyP99: number, errors: number }

const NO_HISTOGRAM: HistogramWindow = { latencyP99: 0, errors: 0 }

/**
 * Measures one worker in windows of `interval` ms: CPU, event-loop delay and utilization, memory
 * and request counters. `onWindow` receives each closed window (the heartbeat). The timer is
 * unref'd: sampling never keeps a process alive.
 */
export class Sampler {
  #delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  #elu: EventLoopUtilization = performance.eventLoopUtilization()
  #cpu = process.cpuUsage()
  #windowStart = performance.now()
  #timer: NodeJS.Timeout | undefined
  #last: WorkerSample | undefined

  constructor (private readonly counters: RequestCounters, private readonly histogram: () => HistogramWindow = () => NO_HISTOGRAM) {}

  start (interval: number, onWindow: (sample: WorkerSample) => void): void {
    this.#delay.enable()
    this.#timer = setInterval(() => {
      this.#last = this.#measure(this.histogram())
      this.#reset()
      onWindow(this.#last)
    }, interval).unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#delay.disable()
  }

  /** The last closed window, or the open one before the first window closes. */
  latest (): WorkerSample {
    return this.#last ?? this.#measure(NO_HISTOGRAM)
  }

  /** The histogram is read by the window's timer only: reading it starts the next window's count. */
  #measure ({ latencyP99, errors }: HistogramWindow): WorkerSample {
    const elapsedMs = performance.now() - this.#windowStart
    const cpu = process.cpuUsage(this.#cpu)
    const memory = process.memoryUsage()
    const delay = this.#delay
    const hasDelay = delay.count > 0
    return {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      cpu: {
        user: cpu.user,
        system: cpu.system,
        percent: elapsedMs > 0 ? round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 100) : 0
      },
      eventLoop: {
        p50: hasDelay ? delayMs(delay.percentile(50)) : 0,
        p99: hasDelay ? delayMs(delay.percentile(99)) : 0,
        max: hasDelay ? delayMs(delay.max) : 0,
        utilization: round(performance.eventLoopUtilization(this.#elu).utilization, 4)
      },
      requests: { total: this.counters.total, inFlight: this.counters.inFlight, latencyP99: round(latencyP99), errors }
    }
  }

  #reset (): void {
    this.#delay.reset()
    this.#elu = performance.eventLoopUtilization()
    this.#cpu = process.cpuUsage()
    this.#windowStart = performance.now()
  }
}

// The histogram times its own sampling timer, so an idle loop reads as the resolution itself.
function delayMs (nanoseconds: number): number {
  return round(Math.max(0, nanoseconds / NS_PER_MS - RESOLUTION_MS))
}

function round (value: number, digits = 2): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}
