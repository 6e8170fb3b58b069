import type { Server as HttpServer } from 'node:http'
import net from 'node:net'

/**
 * reuseport balancing: listening sockets of other slots this worker serves for a while. When a
 * slot's worker dies, the primary hands its socket to a live worker until the replacement
 * listens, so the connections the kernel keeps sending there are served at once instead of
 * waiting for the replacement to start. Connections accepted here go to the app's own server,
 * as if it had accepted them (its drain and connection tracking see them).
 */
export class AdoptedListeners {
  readonly #servers = new Map<string, net.Server>()
  #closed = false

  constructor (private readonly target: HttpServer) {}

  adopt (slot: string, handle: unknown): void {
    if (this.#closed || this.#servers.has(slot)) {
      (handle as { close?: () => void }).close?.()
      return
    }
    const server = net.createServer((socket) => this.target.emit('connection', socket))
    // A handle that cannot be listened on costs nothing but this slot's help.
    server.on('error', () => this.release(slot))
    server.listen(handle as net.ListenOptions)
    this.#servers.set(slot, server)
  }

  release (slot: string): void {
    this.#servers.get(slot)?.close()
    this.#servers.delete(slot)
  }

  /** Stops accepting on every adopted socket (the drain); adopts nothing after. */
  closeAll (): void {
    this.#closed = true
    for (const slot of [...this.#servers.keys()]) this.release(slot)
  }
}
