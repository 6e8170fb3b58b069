import type { EventEmitter } from 'node:events'
import type { PrimaryLogger } from '../log.js'
import type { ResolvedBootOptions } from '../options.js'
import type { ClusterEvents } from '../types.js'
import type { HealthWatch } from './health-watch.js'
import type { TransitionDetail, TransitionListener } from './slot.js'

/** How a worker's exit reads in a log line: ` (signal SIGKILL: no heartbeat for ...)`. */
function exitText ({ code, signal, reason }: TransitionDetail): string {
  const how = signal != null ? `signal ${signal}` : code != null ? `exit code ${code}` : undefined
  const text = [how, reason].filter((part) => part !== undefined).join(': ')
  return text === '' ? '' : ` (${text})`
}

export interface TransitionHost {
  log: PrimaryLogger
  events: Pick<EventEmitter<ClusterEvents>, 'emit'>
  options: Pick<ResolvedBootOptions, 'maxRestarts' | 'givenUpRetryDelay'>
  /** The first start or the stop runs: a worker failing then is said by the start's error, one the stop ends is no news. */
  quiet: () => boolean
  health: () => HealthWatch
}

/**
 * What every slot transition means to the outside: one log line (a crash and a give-up at warn,
 * so an operator filtering on warn sees them; normal transitions at info; a replacement taking
 * over said in words, not as a state change), the ClusterHandle event, and a health check.
 */
export function reportTransitions (host: TransitionHost): TransitionListener {
  return (slot, from, event, detail) => {
    const { log, events, options } = host
    const id = String(slot.id)
    const to = slot.state
    const { pid = 0, ...rest } = detail
    const fields = { workerId: id, workerPid: pid, from, to, event, ...rest }
    if (event === 'promote') log.info(fields, `worker ${id}: pid ${pid} took over (${detail.reason ?? 'replacement'})`)
    else log[(to === 'crashed' || to === 'given-up') && !host.quiet() ? 'warn' : 'info'](fields, `worker ${id}: ${from} -> ${to}${exitText(detail)}`)
    if (event === 'listening' || event === 'promote') events.emit('worker:ready', { id, pid })
    else if (to === 'crashed' || to === 'stopped') {
      events.emit('worker:exit', { id, pid, code: detail.code ?? null, signal: detail.signal ?? null, state: to, reason: detail.reason, ...(detail.incident === undefined ? {} : { incident: detail.incident }) })
    } else if (event === 'fork' && slot.restarts > 0) events.emit('worker:restart', { id, restarts: slot.restarts, delay: detail.delay ?? 0 })
    else if (to === 'given-up') {
      log.warn({ workerId: id, earlyCrashes: slot.earlyCrashes },
        `worker ${id}: restart limit reached (maxRestarts ${options.maxRestarts}); slot given up` +
        (options.givenUpRetryDelay > 0 ? `, tried again every ${options.givenUpRetryDelay} ms` : ''))
      events.emit('restart-limit', { id, earlyCrashes: slot.earlyCrashes })
    }
    if (event === 'drain') host.health().checkSoon()
    else host.health().check()
  }
}
