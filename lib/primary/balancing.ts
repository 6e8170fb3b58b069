import { readFileSync } from 'node:fs'
import net from 'node:net'
import { listenOrExplain } from '../common/address.js'
import type { Balancing } from './settings.js'

export type Mode = 'round-robin' | 'reuseport'

/** Node's net.Server#listen takes `reusePort` from these versions on; older ones ignore it. */
const REUSEPORT_SINCE: [number, number] = [22, 12]

/**
 * The balancing a cluster runs with, and why when it is not the one asked for. `auto` is
 * reuseport wherever it works; reuseport where it cannot work falls back to round-robin.
 */
export function chooseBalancing (
  requested: Balancing, { port, host }: { port: number, host: string }, platform = process.platform, node = process.versions.node
): { mode: Mode, reason?: string } {
  if (requested === 'round-robin') return { mode: 'round-robin' }
  const [major = 0, minor = 0] = node.split('.').map(Number)
  const [sinceMajor, sinceMinor] = REUSEPORT_SINCE
  let reason: string | undefined
  if (platform !== 'linux') reason = `SO_REUSEPORT balancing needs Linux (this is ${platform})`
  else if (major < sinceMajor || (major === sinceMajor && minor < sinceMinor)) reason = `reusePort needs Node >= ${sinceMajor}.${sinceMinor} (this is ${node})`
  else if (port === 0) reason = 'port 0 would give each worker a port of its own'
  else if (host === 'localhost') reason = 'host "localhost" makes Fastify bind a second address; give an address (127.0.0.1, ::1, 0.0.0.0)'
  return reason === undefined ? { mode: 'reuseport' } : { mode: 'round-robin', reason: `balancing ${requested}: ${reason}; using round-robin` }
}

/**
 * `net.ipv4.tcp_migrate_req`: 1 makes Linux move the connections queued on a closing SO_REUSEPORT
 * socket to another socket of its group instead of resetting them. Undefined where unreadable.
 */
export function tcpMigrateReq (): string | undefined {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim()
  } catch {
    return undefined
  }
}

/**
 * Fails with FCK_PORT_IN_USE when something already listens on the address: workers listening
 * with SO_REUSEPORT would otherwise join another process's sockets (a second copy of the app,
 * say) without a word, where round-robin's one listener would fail.
 */
export async function checkPortFree (port: number, host: string, source: string): Promise<void> {
  const probe = net.createServer()
  await listenOrExplain(async () => await new Promise<void>((resolve, reject) => {
    probe.once('error', reject).listen({ port, host, exclusive: true }, resolve)
  }), host, port, source)
  await new Promise((resolve) => probe.close(resolve))
}

/** A raw listening socket handle, as it crosses IPC (`net.Native`). */
export interface SocketHandle { close: () => void }

/**
 * Each slot's listening socket in reuseport mode, held by the primary without accepting on it:
 * handed to the slot's next worker, the socket (and the connections queued on it) outlives the
 * worker that opened it. Closing the last descriptor of a SO_REUSEPORT socket resets what is
 * queued on it unless tcp_migrate_req is set; holding it means that happens only when a slot is
 * left without a worker for a while (back-off, given up) or the cluster stops.
 */
export class HeldSockets {
  readonly #bySlot = new Map<number, SocketHandle>()

  hold (slot: number, handle: SocketHandle): void {
    const previous = this.#bySlot.get(slot)
    if (previous === handle) return
    previous?.close()
    this.#bySlot.set(slot, handle)
  }

  get (slot: number): SocketHandle | undefined {
    return this.#bySlot.get(slot)
  }

  release (slot: number): void {
    this.#bySlot.get(slot)?.close()
    this.#bySlot.delete(slot)
  }

  releaseAll (): void {
    for (const slot of [...this.#bySlot.keys()]) this.release(slot)
  }
}
