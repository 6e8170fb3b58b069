import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { RequestCounters } from './sampler.js'

const kLastActive = Symbol('fastify-cluster-kit.lastActive')

/**
 * `_httpMessage` is the response a server socket is still writing (null once it finished). Node's
 * own `closeIdleConnections()` relies on it; reading it here keeps per-request bookkeeping (and
 * its cost) off the hot path.
 */
type TrackedSocket = Socket & { [kLastActive]?: number, _httpMessage?: ServerResponse | null }

const SWEEP_INTERVAL = 100

/**
 * The connections of one HTTP server and the connection side of a drain.
 *
 * A drain answers every response with `Connection: close` (see `onRequest`), so a busy keep-alive
 * client closes its socket after the response it is waiting for; an idle socket is closed only
 * once it has stayed idle for `idleGrace`: closing it at once, as `server.close()` does, resets a
 * client that is sending its next request at that moment. During a canary's bake one response in
 * a few does the same (`spread`), so connections clients hold open are dealt again, the canary
 * included.
 */
export class Traffic implements RequestCounters {
  total = 0
  /** One response in this many carries `Connection: close`: 1 while draining, 0 for none. One field, so the hot path reads one. */
  #closeEvery = 0
  #sockets = new Set<TrackedSocket>()
  #draining = false
  #sweeper: NodeJS.Timeout | undefined
  #onIdle: (() => void) | undefined

  constructor (private readonly server: Server, private readonly idleGrace: number) {
    server.on('connection', this.#onConnection)
  }

  get draining (): boolean {
    return this.#draining
  }

  get inFlight (): number {
    return this.#pending().length
  }

  /**
   * Counts a request (call it from the server's 'request' event); during a drain its response,
   * whoever writes it (Fastify, a hijacked reply), carries `Connection: close`.
   */
  onRequest (response: ServerResponse): void {
    this.total++
    if (this.#closeEvery !== 0 && this.total % this.#closeEvery === 0) response.setHeader('connection', 'close')
  }

  /** Closes the connection of one response in `every` (0: none); a drain closes every one whatever this says. */
  spread (every: number): void {
    if (!this.#draining) this.#closeEvery = every
  }

  #onConnection = (socket: TrackedSocket): void => {
    this.#sockets.add(socket)
    socket[kLastActive] = Date.now()
    socket.once('close', () => {
      this.#sockets.delete(socket)
      if (this.#draining && this.#sockets.size === 0) this.#onIdle?.()
    })
  }

  #pending (): ServerResponse[] {
    const pending: ServerResponse[] = []
    for (const socket of this.#sockets) if (socket._httpMessage != null) pending.push(socket._httpMessage)
    return pending
  }

  startDrain (): void {
    if (this.#draining) return
    this.#draining = true
    this.#closeEvery = 1
    const now = Date.now()
    for (const socket of this.#sockets) socket[kLastActive] = now
    for (const response of this.#pending()) {
      if (!response.headersSent) response.setHeader('connection', 'close')
    }
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL)
  }

  /** Resolves once every connection is closed (call after the listener stopped accepting). */
  async drained (): Promise<void> {
    if (this.#sockets.size === 0) return
    await new Promise<void>((resolve) => { this.#onIdle = resolve })
  }

  /** What is still open, for the log line of a drain that timed out. */
  describeOpen (): string {
    const requests = this.#pending().map((response) => `${response.req.method ?? '?'} ${response.req.url ?? '?'}`)
    return `${requests.length} request(s) in flight${requests.length > 0 ? ` [${requests.join(', ')}]` : ''}, ` +
      `${this.#sockets.size} connection(s) open`
  }

  stop (): void {
    clearInterval(this.#sweeper)
    this.server.removeListener('connection', this.#onConnection)
  }

  /** Closes sockets idle for `idleGrace`; a busy socket's idle time starts when its response ends. */
  #sweep (): void {
    const now = Date.now()
    for (const socket of this.#sockets) {
      if (socket._httpMessage != null) socket[kLastActive] = now
      else if (now - (socket[kLastActive] ?? 0) >= this.idleGrace) socket.destroy()
    }
  }
}
