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
 */
export class Shutdown {
  #started = false
  #stage = 'draining connections'
  #installed = false

  constructor (
    private readonly fastify: FastifyInstance,
    private readonly traffic: Traffic,
    private readonly options: ResolvedOptions,
    private readonly identity: Identity,
    private readonly adopted: AdoptedListeners
  ) {}

  /** Listen for signals and shutdown messages (ours, PM2's); called once the server listens. */
  install (channel: WorkerChannel): void {
    if (this.#installed) return
    this.#installed = true
    if (this.options.handleSignals) for (const signal of SIGNALS) process.on(signal, this.#onSignal)
    channel.on('fck:shutdown', ({ reason }) => this.#start(reason))
  }

  uninstall (): void {
    for (const signal of SIGNALS) process.removeListener(signal, this.#onSignal)
  }

  #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#started) {
      this.fastify.log.error({ signal }, `second ${signal} during graceful shutdown: forcing exit`)
      process.exit(1)
    }
    this.#start(signal)
  }

  #start (reason: string): void {
    this.run(reason).catch((error: unknown) => {
      this.fastify.log.error({ err: error }, 'graceful shutdown failed')
      process.exit(1)
    })
  }

  async run (reason: string): Promise<void> {
    if (this.#started) return
    this.#started = true
    const { fastify, traffic, options } = this
    fastify.log.info({ reason, workerId: this.identity.workerId }, 'graceful shutdown: draining')
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
    this.#stage = 'running onClose hooks'
    await fastify.close()
    fastify.log.info('graceful shutdown: done')
    process.exit(0)
  }
}
