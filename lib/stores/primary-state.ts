import { FCK_STORE_UNAVAILABLE } from '../errors.js'
import { isPrimaryMessage, sendToPrimary, type StateRequest } from '../protocol.js'

/**
 * A worker's line to the primary's shared state (lib/primary/state.ts): each request is answered
 * by an `fck:state-result` with its id, or fails with FCK_STORE_UNAVAILABLE after `timeout` ms.
 */
export class PrimaryState {
  #sequence = 0
  readonly #pending = new Map<number, { resolve: (value: unknown) => void, timer: NodeJS.Timeout }>()

  constructor (private readonly timeout: number) {
    process.on('message', this.#onMessage)
  }

  async request (request: StateRequest): Promise<unknown> {
    if (process.send === undefined || !process.connected) throw new FCK_STORE_UNAVAILABLE('primary', 'no IPC channel to the primary')
    const id = ++this.#sequence
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new FCK_STORE_UNAVAILABLE('primary', `no answer within ${this.timeout} ms`))
      }, this.timeout)
      this.#pending.set(id, { resolve, timer })
      sendToPrimary({ type: 'fck:state', id, request }).catch(() => {})
    })
  }

  #onMessage = (message: unknown): void => {
    if (!isPrimaryMessage(message) || message.type !== 'fck:state-result') return
    const pending = this.#pending.get(message.id)
    if (pending === undefined) return // answered after its timeout
    this.#pending.delete(message.id)
    clearTimeout(pending.timer)
    pending.resolve(message.value)
  }

  stop (): void {
    process.removeListener('message', this.#onMessage)
    for (const { timer } of this.#pending.values()) clearTimeout(timer)
    this.#pending.clear()
  }
}
