import { spawn } from 'node:child_process'
import type { Env } from '../../common/config.js'
import type { PrimaryLogger } from '../log.js'
import type { ClusterHandle } from '../types.js'

/**
 * sd_notify for a primary run by systemd with `Type=notify`: READY=1 once every worker listens,
 * STATUS= a person reads in `systemctl status`, RELOADING=1 ... READY=1 around a rolling reload,
 * STOPPING=1 when the drain starts, WATCHDOG=1 at half of WatchdogSec while the primary's event
 * loop runs.
 *
 * Node has no unix datagram sockets, and the kit ships no compiled addon: each message goes
 * through Debian's `systemd-notify` (package systemd), which waits until systemd has read it
 * (so it cannot be lost when the sender exits). Being a child of the primary, it needs
 * `NotifyAccess=all` in the unit; `--pid` names the primary as the service's main process
 * (ExecStart may be a wrapper). Messages go one at a time, in order; a status waiting behind
 * another is replaced by a newer one.
 */
export class SystemdNotifier {
  readonly #socket: string | undefined
  readonly #watchdogUsec: number
  #chain: Promise<void> = Promise.resolve()
  #pendingStatus: string | undefined
  #watchdog: NodeJS.Timeout | undefined
  #failed = false
  readonly #listeners: Array<[string, (...args: any[]) => void]> = []

  constructor (private readonly cluster: ClusterHandle, env: Env, private readonly log: PrimaryLogger) {
    this.#socket = env.NOTIFY_SOCKET === '' ? undefined : env.NOTIFY_SOCKET
    // WATCHDOG_PID names who must ping; a wrapper's pid (npm) means the primary is not asked to.
    const forUs = env.WATCHDOG_PID === undefined || env.WATCHDOG_PID === String(process.pid)
    this.#watchdogUsec = forUs ? Number(env.WATCHDOG_USEC ?? 0) : 0
    if (this.#socket === undefined) return
    const on = (event: string, listener: (...args: any[]) => void): void => {
      cluster.on(event as 'healthy', listener)
      this.#listeners.push([event, listener])
    }
    on('reload:start', () => this.#send({ RELOADING: '1', MONOTONIC_USEC: monotonicUsec(), STATUS: this.#status('rolling reload') }))
    on('reload:done', (result) => this.#send({ READY: '1', STATUS: this.#status(`reload ok in ${result.durationMs} ms`) }))
    on('reload:failed', (result) => this.#send({ READY: '1', STATUS: this.#status(`reload failed: ${result.reason}`) }))
    on('worker:exit', (event) => this.#statusSoon(`worker ${event.id} ${event.state === 'retired' ? 'retired' : event.state}`))
    on('worker:ready', (event) => this.#statusSoon(`worker ${event.id} ready (pid ${event.pid})`))
    on('restart-limit', (event) => this.#statusSoon(`worker ${event.id} given up`))
  }

  /** The cluster serves: READY=1, and the watchdog pings from now on. */
  ready (): void {
    if (this.#socket === undefined) return
    this.#send({ READY: '1', STATUS: this.#status('started') })
    if (this.#watchdogUsec > 0) {
      // Half the interval, as sd_watchdog_enabled(3) advises; the timer runs only while the loop does.
      this.#watchdog = setInterval(() => this.#send({ WATCHDOG: '1' }), Math.max(1, Math.floor(this.#watchdogUsec / 2000))).unref()
    }
  }

  /** The drain begins. */
  stopping (): void {
    if (this.#socket === undefined) return
    clearInterval(this.#watchdog)
    this.#send({ STOPPING: '1', STATUS: this.#status('stopping: draining workers') })
  }

  /** Resolves once every message sent so far was delivered (or failed). */
  async stop (): Promise<void> {
    clearInterval(this.#watchdog)
    for (const [event, listener] of this.#listeners) this.cluster.off(event as 'healthy', listener)
    await this.#chain
  }

  #status (last: string): string {
    const { alive, expected } = this.cluster.health()
    return `${alive}/${expected} workers ready; last: ${last}`
  }

  /** A STATUS= line; one already waiting to be sent is replaced rather than queued behind. */
  #statusSoon (last: string): void {
    const queued = this.#pendingStatus !== undefined
    this.#pendingStatus = last
    if (queued) return
    this.#chain = this.#chain.then(async () => {
      const text = this.#pendingStatus as string
      this.#pendingStatus = undefined
      await this.#deliver({ STATUS: this.#status(text) })
    })
  }

  #send (fields: Record<string, string>): void {
    this.#chain = this.#chain.then(async () => await this.#deliver(fields))
  }

  async #deliver (fields: Record<string, string>): Promise<void> {
    if (this.#failed) return
    const args = [`--pid=${process.pid}`, ...Object.entries(fields).map(([name, value]) => `${name}=${value.replace(/\n/g, ' ')}`)]
    const outcome = await new Promise<{ code: number | null, error?: Error, stderr: string }>((resolve) => {
      const child = spawn('systemd-notify', args, { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
      child.once('error', (error) => resolve({ code: null, error, stderr }))
      child.once('close', (code) => resolve({ code, stderr }))
    })
    if (outcome.code === 0) return
    // Said once: every later message would fail the same way.
    this.#failed = true
    const why = (outcome.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
      ? 'systemd-notify is not installed (Debian package systemd)'
      : `systemd-notify failed (${outcome.error?.message ?? `exit code ${outcome.code ?? '?'}`}${outcome.stderr.trim() === '' ? '' : `: ${outcome.stderr.trim()}`})`
    this.log.warn({ notifySocket: this.#socket }, `NOTIFY_SOCKET is set but nothing reaches it: ${why}; systemd hears no READY=1 (Type=notify times out), use Type=exec or install it`)
  }
}

/** CLOCK_MONOTONIC in microseconds, which systemd compares a RELOADING=1 with. */
function monotonicUsec (): string {
  return String(process.hrtime.bigint() / 1000n)
}
