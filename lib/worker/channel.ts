import { Correlator } from '../common/correlator.js'
import { FCK_STORE_UNAVAILABLE } from '../common/errors.js'
import { isPrimaryMessage, PM2_SHUTDOWN_MESSAGE, sendToPrimary, type PrimaryMessage, type StateRequest } from '../common/protocol.js'

type Handler<T extends PrimaryMessage['type']> = (message: Extract<PrimaryMessage, { type: T }>, handle?: unknown) => void

/** Where the plugin leaves its channel on the Fastify instance, for bootCluster's listen (lib/boot.ts). */
export const kChannel = Symbol('fastify-cluster-kit.channel')

/**
 * A worker's one listener on its IPC channel: what the primary (or PM2) sends is dispatched by
 * type to the part of the plugin that handles it, and requests to the primary's store are matched
 * to their answers. Listening starts with the first handler and ends with `close()`.
 */
export class WorkerChannel {
  readonly #handlers = new Map<string, (message: any, handle?: unknown) => void>()
  readonly #requests = new Correlator<unknown[]>()
  readonly #scrapes = new Correlator<string | undefined>()
  #listening = false
  /**
   * Set by bootCluster just before it listens: a worker is announced to the primary only when
   * bootCluster opened it, never by a listen() the app's factory made itself (which bootCluster
   * then refuses, so the primary sees a failed start rather than a ready worker that exits).
   */
  bootListens = false

  /** One handler per message type; PM2's plain `shutdown` string counts as `fck:shutdown`. */
  on<T extends PrimaryMessage['type']>(type: T, handler: Handler<T>): void {
    this.#handlers.set(type, handler)
    if (!this.#listening && process.send !== undefined) {
      this.#listening = true
      process.on('message', this.#dispatch)
    }
  }

  /** Asks the primary's shared store; fails with FCK_STORE_UNAVAILABLE after `timeout` ms. */
  async request (requests: StateRequest[], timeout: number): Promise<unknown[]> {
    if (process.send === undefined || !process.connected) throw new FCK_STORE_UNAVAILABLE('primary', 'no IPC channel to the primary')
    // Listening only from the first request: a listener keeps the IPC channel, and so the process, alive.
    if (!this.#handlers.has('fck:state-result')) this.on('fck:state-result', (message) => this.#requests.settle(message.id, message.values))
    return await this.#requests.request((id) => { sendToPrimary({ type: 'fck:state', id, requests }).catch(() => {}) }, timeout,
      () => new FCK_STORE_UNAVAILABLE('primary', `no answer within ${timeout} ms`))
  }

  /** The cluster's metrics as Prometheus text, from the primary; undefined when its scrape failed. */
  async scrape (timeout: number): Promise<string | undefined> {
    if (!this.#handlers.has('fck:scrape-result')) this.on('fck:scrape-result', (message) => this.#scrapes.settle(message.id, message.text))
    return await this.#scrapes.request((id) => { sendToPrimary({ type: 'fck:scrape', id }).catch(() => {}) }, timeout,
      () => new Error(`the primary sent no metrics within ${timeout} ms`))
  }

  /**
   * reuseport balancing: the slot's socket the primary holds (a raw handle to listen on), or
   * undefined when the worker is to open one; rejects after `timeout` ms without an answer.
   */
  async heldListener (workerId: string, timeout: number): Promise<unknown> {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the primary did not answer fck:listener-request within ${timeout} ms`)), timeout)
      this.on('fck:listener', ({ held }, handle) => {
        clearTimeout(timer)
        resolve(held ? handle : undefined)
      })
      sendToPrimary({ type: 'fck:listener-request', workerId, pid: process.pid }).catch(reject)
    })
  }

  close (): void {
    process.removeListener('message', this.#dispatch)
    this.#listening = false
    this.#requests.cancel(new FCK_STORE_UNAVAILABLE('primary', 'the plugin closed'))
    this.#scrapes.cancel(new Error('the plugin closed'))
  }

  #dispatch = (message: unknown, handle: unknown): void => {
    if (message === PM2_SHUTDOWN_MESSAGE) this.#handlers.get('fck:shutdown')?.({ type: 'fck:shutdown', reason: 'pm2 shutdown message' })
    else if (isPrimaryMessage(message)) this.#handlers.get(message.type)?.(message, handle)
  }
}
