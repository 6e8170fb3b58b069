import { Server as NetServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Identity } from '../common/identity.js'
import type { ResolvedOptions } from './options.js'
import { sendToPrimary } from '../common/protocol.js'
import type { WorkerChannel } from './channel.js'
import type { AdoptedListeners } from './adopted.js'
import type { Traffic } from './traffic.js'

const SIGNALS = ['SIGTERM', 'SIGINT'] as const

type Close = FastifyInstance['close']

/**
 * The worker's graceful exit, started by SIGTERM/SIGINT, by our primary's `fck:shutdown` message
 * or by PM2's `shutdown` message:
 *
 * 1. readiness answers 503 and every response carries `Connection: close`;
 * 2. `shutdownDelay` passes (load balancers stop routing here);
 * 3. the listener closes, in-flight requests finish, keep-alive sockets close (see Traffic);
 * 4. `fastify.close()` runs the onClose hooks, and the process exits 0.
 *
 * Past `gracefulTimeout` the process exits 1 with a log line naming what was still open;
 * a second signal exits 1 at once.
 *
 * Where another handler of the signal calls `fastify.close()` too (fastify-cli's close-with-grace,
 * an app's own), that close waits for the drain before Fastify closes: Fastify's own close answers
 * 503 to every new request at once. One drain, whoever asked; but a handler that exits the process
 * on a timer of its own must give the drain time (see runner.ts).
 */
export class Shutdown {
  #drain: Promise<void> | undefined
  #stage = 'draining connections'
  #installed = false

  constructor (
    private readonly fastify: FastifyInstance,
    private readonly traffic: Traffic,
    private readonly options: ResolvedOptions,
    private readonly identity: Identity,
    private readonly adopted: AdoptedListeners
  ) {
    const close = fastify.close.bind(fastify) as Close
    // Only once a drain has begun does close() wait for it: a close() of the app's own (a test's
    // teardown) keeps Fastify's behaviour.
    fastify.close = ((done?: (error?: Error) => void) => {
      if (this.#drain === undefined) return done === undefined ? close() : close(done)
      const closed = this.#drain.then(() => close())
      if (done === undefined) return closed
      closed.then(() => done(), done)
      return fastify
    }) as Close
  }

  /**
   * Listen for signals and shutdown messages (ours, PM2's); called once the server listens.
   * Prepended: a signal must start the drain before another handler calls `fastify.close()`.
   */
  install (channel: WorkerChannel): void {
    if (this.#installed) return
    this.#installed = true
    if (this.options.handleSignals) for (const signal of SIGNALS) process.prependListener(signal, this.#onSignal)
    channel.on('fck:shutdown', ({ reason }) => this.#start(reason))
  }

  uninstall (): void {
    for (const signal of SIGNALS) process.removeListener(signal, this.#onSignal)
  }

  #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#drain !== undefined) {
      this.fastify.log.error({ signal }, `second ${signal} during graceful shutdown: forcing exit`)
      process.exit(1)
    }
    this.#start(signal)
  }

  #start (reason: string): void {
    this.run(reason).catch(this.#failed)
  }

  #failed = (error: unknown): void => {
    this.fastify.log.error({ err: error }, 'graceful shutdown failed')
    process.exit(1)
  }

  async run (reason: string): Promise<void> {
    if (this.#drain !== undefined) return
    await this.#startDrain(reason)
    this.#stage = 'running onClose hooks'
    await this.fastify.close()
    this.fastify.log.info('graceful shutdown: done')
    process.exit(0)
  }

  /** Steps 1-3; `fastify.close()` waits for them from now on. */
  #startDrain (reason: string): Promise<void> {
    this.#drain = this.#drainConnections(reason)
    return this.#drain
  }

  async #drainConnections (reason: string): Promise<void> {
    const { fastify, traffic, options } = this
    // The app's logger names the worker already (plugin.ts sets it on its bindings).
    fastify.log.info({ reason }, 'graceful shutdown: draining')
    sendToPrimary({ type: 'fck:draining', workerId: this.identity.workerId, pid: process.pid, reason })
    // Deliberately ref'd: if everything else is closed but the drain is stuck, this ends it.
    setTimeout(() => {
      fastify.log.error(
        `graceful shutdown timed out after ${options.gracefulTimeout} ms while ${this.#stage}: ${traffic.describeOpen()}`
      )
      process.exit(1)
    }, options.gracefulTimeout)

    traffic.startDrain()
    if (options.shutdownDelay > 0) await sleep(options.shutdownDelay)
    // Stop accepting without http.Server#close(), which would also destroy idle keep-alive
    // sockets at once (see Traffic for why they get a grace period instead).
    if (fastify.server.listening) NetServer.prototype.close.call(fastify.server)
    this.adopted.closeAll()
    await traffic.drained()
  }
}
