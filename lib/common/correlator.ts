/**
 * Matches answers to requests sent over IPC: each request gets an id, its answer settles it,
 * and a request unanswered after `timeout` ms rejects. One instance per channel user, fed by the
 * one message listener of its side, so concurrent requests add no listeners.
 */
export class Correlator<T> {
  #sequence = 0
  readonly #pending = new Map<number, { resolve: (value: T) => void, reject: (error: Error) => void, timer: NodeJS.Timeout, group: unknown }>()

  /**
   * Sends through `send(id)` and resolves with the answer settled under that id. `group` names
   * what the request went to, so `cancel(group)` can fail every request to it at once.
   */
  async request (send: (id: number) => void, timeout: number, onTimeout: () => Error, group?: unknown): Promise<T> {
    const id = ++this.#sequence
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(onTimeout())
      }, timeout)
      this.#pending.set(id, { resolve, reject, timer, group })
      send(id)
    })
  }

  /** An answer; one that comes after its request timed out is dropped. */
  settle (id: number, value: T): void {
    const pending = this.#pending.get(id)
    if (pending === undefined) return
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    pending.resolve(value)
  }

  /** Rejects every request of `group` (a worker that exited), or every request when none is named. */
  cancel (error: Error, group?: unknown): void {
    for (const [id, pending] of this.#pending) {
      if (group !== undefined && pending.group !== group) continue
      this.#pending.delete(id)
      clearTimeout(pending.timer)
      pending.reject(error)
    }
  }
}
