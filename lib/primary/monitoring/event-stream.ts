import type { ServerResponse } from 'node:http'
import type { ClusterEvents, ClusterHandle } from '../types.js'

/** Every event of the supervisor the stream forwards, under the same name. */
const FORWARDED: Array<keyof ClusterEvents> = [
  'worker:ready', 'worker:exit', 'worker:restart', 'worker:recycle', 'restart-limit',
  'reload:start', 'reload:phase', 'reload:done', 'reload:failed', 'unhealthy', 'healthy'
]
/** Clients past this many are answered 503: each one costs the primary a socket and its buffer. */
export const MAX_CLIENTS = 100
/**
 * Bytes a client may leave unread in the primary (past what the kernel's socket buffers hold)
 * before it is disconnected: a stalled client cannot grow the primary's memory.
 */
export const MAX_UNREAD = 64 * 1024

/**
 * `GET /cluster/events`: Server-Sent Events to every connected client: the supervisor's events as
 * they happen, a `stats` sample (what `/cluster/stats` answers) on connect, and whatever the
 * monitoring server broadcasts (its periodic samples). Each message is rendered once and written
 * to every client.
 */
export class EventStream {
  readonly #clients = new Set<ServerResponse>()
  readonly #listeners: Array<[keyof ClusterEvents, (detail: unknown) => void]> = []
  /** Clients disconnected for leaving more than MAX_UNREAD bytes unread. */
  slowDisconnects = 0

  constructor (private readonly cluster: ClusterHandle) {
    for (const event of FORWARDED) {
      const listener = (detail: unknown): void => this.broadcast(event, detail)
      cluster.on(event, listener)
      this.#listeners.push([event, listener])
    }
  }

  get clients (): number {
    return this.#clients.size
  }

  /** Takes over a response (the route hijacked it, and turns clients past MAX_CLIENTS away). */
  add (response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Proxies that buffer responses (nginx) would hold the events back.
      'x-accel-buffering': 'no'
    })
    this.#clients.add(response)
    response.once('close', () => this.#clients.delete(response))
    // The browser's EventSource waits this long before it reconnects.
    this.#write(response, `retry: 2000\n${frame('stats', this.cluster.stats())}`)
  }

  close (): void {
    for (const [event, listener] of this.#listeners) this.cluster.off(event, listener)
    for (const client of this.#clients) client.destroy()
  }

  broadcast (event: string, detail: unknown): void {
    if (this.#clients.size === 0) return
    const text = frame(event, detail)
    for (const client of this.#clients) this.#write(client, text)
  }

  #write (client: ServerResponse, text: string): void {
    client.write(text)
    if (client.writableLength > MAX_UNREAD) {
      // Out of the set at once: 'close' comes later, and a write before it must not count it twice.
      this.#clients.delete(client)
      this.slowDisconnects++
      client.destroy()
    }
  }
}

function frame (event: string, detail: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(detail)}\n\n`
}
