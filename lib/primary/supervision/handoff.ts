import type { Worker } from 'node:cluster'

/**
 * Rescues connections that die with their worker.
 *
 * With round-robin scheduling the primary accepts each connection and sends it to a worker over
 * IPC, keeping its own copy until the worker acknowledges it. A worker that dies between the send
 * and the acknowledgement (kill -9, a crash, a hang killed by the heartbeat check) never answers,
 * and Node's primary then holds the connection forever: the client hangs until it gives up.
 *
 * This watches those hand-offs (Node's internal `newconn` message, one at a time per worker) and,
 * when a worker exits with one unanswered, sends the same message with the same connection to a
 * live worker. Node's own bookkeeping then completes as if the first worker had accepted it: the
 * acknowledgement carries the original sequence number. If Node ever changes this protocol the
 * watcher matches nothing and Node's behaviour is unchanged.
 */
interface Handoff {
  message: { cmd: 'NODE_CLUSTER', act: 'newconn', seq: number }
  handle: unknown
}

type Send = (message: unknown, handle?: unknown, ...rest: unknown[]) => boolean

function isHandoff (message: unknown): message is Handoff['message'] {
  const candidate = message as Partial<Handoff['message']> | null
  return candidate?.cmd === 'NODE_CLUSTER' && candidate.act === 'newconn' && typeof candidate.seq === 'number'
}

function isAck (message: unknown): message is { cmd: 'NODE_CLUSTER', ack: number } {
  const candidate = message as { cmd?: unknown, ack?: unknown } | null
  return candidate?.cmd === 'NODE_CLUSTER' && typeof candidate.ack === 'number'
}

export class HandoffRescue {
  #pending = new Map<Worker, Map<number, Handoff>>()
  #orphans: Handoff[] = []

  /** Starts watching a freshly forked worker. */
  watch (worker: Worker): void {
    const pending = new Map<number, Handoff>()
    this.#pending.set(worker, pending)
    const child = worker.process as unknown as { send: Send, on: (event: string, fn: (message: unknown) => void) => void }
    const send = child.send.bind(child)
    child.send = (message, handle, ...rest) => {
      if (handle !== undefined && handle !== null && isHandoff(message)) pending.set(message.seq, { message, handle })
      return send(message, handle, ...rest)
    }
    // Acknowledgements can come from any worker: a rescued hand-off is answered by its new worker.
    child.on('internalMessage', (message) => {
      if (!isAck(message)) return
      for (const map of this.#pending.values()) map.delete(message.ack)
    })
  }

  /** The worker exited: its unanswered hand-offs become orphans, to be sent to `next` or a later worker. */
  release (worker: Worker, next: Worker | undefined): number {
    const pending = this.#pending.get(worker)
    this.#pending.delete(worker)
    if (pending !== undefined) this.#orphans.push(...pending.values())
    const count = this.#orphans.length
    if (next !== undefined) this.adopt(next)
    return count
  }

  /** Sends every orphaned connection to a live worker. */
  adopt (worker: Worker): void {
    const orphans = this.#orphans.splice(0)
    for (const { message, handle } of orphans) worker.process.send(message as never, handle as never)
  }

  /** No worker will take them (the cluster stops): close them so their clients fail fast. */
  discard (): void {
    for (const { handle } of this.#orphans.splice(0)) (handle as { close?: () => void }).close?.()
  }
}
