import { readFileSync } from 'node:fs'
import net from 'node:net'
import type { SendHandle } from 'node:child_process'
import { FIRST_FD, passedSockets } from '../../common/activation.js'
import { listenOrExplain } from '../../common/address.js'
import { sendToWorker } from '../../common/protocol.js'
import type { PrimaryLogger } from '../log.js'
import { portSource, type ResolvedBootOptions } from '../options.js'
import type { Balancing } from '../settings.js'
import type { Slot, WorkerEntry } from './slot.js'

export type Mode = 'round-robin' | 'reuseport'

/** Node's net.Server#listen takes `reusePort` from these versions on; older ones ignore it. */
const REUSEPORT_SINCE: [number, number] = [22, 12]

/**
 * The balancing a cluster runs with, and why when it is not the one asked for. `auto` is
 * reuseport wherever it works; reuseport where it cannot work falls back to round-robin.
 */
export function chooseBalancing (
  requested: Balancing, { port, host }: { port: number, host: string }, passed = 0, platform = process.platform, node = process.versions.node
): { mode: Mode, reason?: string } {
  if (requested === 'round-robin') return { mode: 'round-robin' }
  const [major = 0, minor = 0] = node.split('.').map(Number)
  const [sinceMajor, sinceMinor] = REUSEPORT_SINCE
  let reason: string | undefined
  if (passed > 0) reason = 'the socket systemd passed (socket activation) is one socket, which the primary serves to every worker'
  else if (platform !== 'linux') reason = `SO_REUSEPORT balancing needs Linux (this is ${platform})`
  else if (major < sinceMajor || (major === sinceMajor && minor < sinceMinor)) reason = `reusePort needs Node >= ${sinceMajor}.${sinceMinor} (this is ${node})`
  else if (port === 0) reason = 'port 0 would give each worker a port of its own'
  else if (host === 'localhost') reason = 'host "localhost" makes Fastify bind a second address; give an address (127.0.0.1, ::1, 0.0.0.0)'
  return reason === undefined ? { mode: 'reuseport' } : { mode: 'round-robin', reason: `balancing ${requested}: ${reason}; using round-robin` }
}

/**
 * The balancing this primary's workers use: says in the log what runs and why not what was asked;
 * for reuseport, checks first that nothing listens on the address.
 */
/**
 * The sockets systemd passed (socket activation), taken for the primary: logged, and their
 * variables removed so workers (which listen through the primary) do not see them, as
 * sd_listen_fds(3) unsets them too. How many there are.
 */
export function takePassedSockets (log: PrimaryLogger): number {
  const passed = passedSockets(process.env)
  if (passed === 0) return 0
  log.info({ fds: passed }, `socket activation: serving the ${passed} socket(s) systemd passed (fd ${FIRST_FD} on); port and host are not used`)
  for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) Reflect.deleteProperty(process.env, name)
  return passed
}

export async function settleBalancing (options: Pick<ResolvedBootOptions, 'balancing' | 'port' | 'host'>, passed: number, log: PrimaryLogger): Promise<Mode> {
  const { balancing, port, host } = options
  const { mode, reason } = chooseBalancing(balancing, { port, host }, passed)
  if (reason !== undefined) log[balancing === 'auto' ? 'info' : 'warn'](reason)
  if (mode === 'round-robin') return mode
  await checkPortFree(port, host, portSource())
  log.info({ balancing: mode, tcpMigrateReq: tcpMigrateReq() },
    'balancing: reuseport (each worker listens on its slot\'s SO_REUSEPORT socket, which the primary keeps across replacements)')
  return mode
}

/**
 * `net.ipv4.tcp_migrate_req`: 1 makes Linux move the connections queued on a closing SO_REUSEPORT
 * socket to another socket of its group instead of resetting them. Undefined where unreadable.
 */
function tcpMigrateReq (): string | undefined {
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
async function checkPortFree (port: number, host: string, source: string): Promise<void> {
  const probe = net.createServer()
  await listenOrExplain(async () => await new Promise<void>((resolve, reject) => {
    probe.once('error', reject).listen({ port, host, exclusive: true }, resolve)
  }), host, port, source)
  await new Promise((resolve) => probe.close(resolve))
}

/** A raw listening socket handle, as it crosses IPC (`net.Native`). */
interface SocketHandle { close: () => void }

/**
 * reuseport: each slot's listening socket, held by the primary without accepting on it and handed
 * to the slot's next worker, so the socket (and the connections queued on it) outlives the worker
 * that opened it. Closing the last descriptor of a SO_REUSEPORT socket resets what is queued on it
 * unless tcp_migrate_req is set; holding it means that happens only when a slot is left without a
 * worker for a while (back-off, given up) or the cluster stops. While a dead worker's replacement
 * starts, another ready worker accepts on the slot's socket (see lib/worker/adopted.ts).
 */
export class SlotSockets {
  readonly #held = new Map<number, SocketHandle>()
  readonly #adopters = new Map<number, WorkerEntry>()

  /** Answers a worker's `fck:listener-request`: its slot's socket goes with the answer when held. */
  answer (entry: WorkerEntry): void {
    const held = this.#held.get(entry.slot.id)
    sendToWorker(entry.worker, { type: 'fck:listener', held: held !== undefined }, held as SendHandle | undefined)
  }

  /** A worker opened its slot's socket (`fck:listener-bound`, the socket as `handle`). */
  hold (entry: WorkerEntry, handle: unknown): void {
    if (handle === undefined || entry.role === 'retiring') return
    const previous = this.#held.get(entry.slot.id)
    if (previous === handle) return
    previous?.close()
    this.#held.set(entry.slot.id, handle as SocketHandle)
  }

  /**
   * The slot's current worker is gone; its next starts in `delay` ms (undefined: never). Right
   * away: a ready worker of another slot accepts on the socket meanwhile. Later: the socket goes,
   * rather than keep the connections the kernel sends there waiting.
   */
  lost (slot: Slot, delay: number | undefined, workers: Array<WorkerEntry | undefined>): void {
    const held = this.#held.get(slot.id)
    if (held === undefined) return
    if (delay !== 0) {
      held.close()
      this.#held.delete(slot.id)
      return
    }
    const adopter = workers.find((entry) => entry !== undefined && entry.slot !== slot && entry.readyAt !== undefined && entry.worker.isConnected())
    if (adopter === undefined) return
    this.#adopters.set(slot.id, adopter)
    sendToWorker(adopter.worker, { type: 'fck:adopt', slot: String(slot.id) }, held as SendHandle)
  }

  /** The slot has a listening worker again: whoever accepted for it stops. */
  ready (slot: Slot): void {
    const adopter = this.#adopters.get(slot.id)
    this.#adopters.delete(slot.id)
    if (adopter !== undefined) sendToWorker(adopter.worker, { type: 'fck:release', slot: String(slot.id) })
  }

  /** The cluster stops: the workers' own descriptors keep each socket open until their drain closes it. */
  releaseAll (): void {
    for (const held of this.#held.values()) held.close()
    this.#held.clear()
  }
}
