/** A batch sent as one is cut here, so one call cannot hold Redis or the primary for long. */
const MAX_BATCH = 256

interface Waiting<I, O> { item: I, resolve: (value: O) => void, reject: (error: Error) => void }

/**
 * Gathers the calls made while the event loop handles one round of I/O and sends them with one
 * `send`: under load many requests are in flight at once, and one round trip (one write, one read,
 * one parse) for all of them costs a fraction of one each. The flush runs in `setImmediate`, after
 * the poll phase has handled every socket that was ready, so a lone call waits no longer than that.
 * `send` answers item by item, in order; if it fails, every call of the batch fails with its error.
 */
export function batched<I, O> (send: (items: I[]) => Promise<O[]>): (item: I) => Promise<O> {
  let queue: Array<Waiting<I, O>> = []
  const flush = (): void => {
    const taken = queue
    queue = []
    for (let start = 0; start < taken.length; start += MAX_BATCH) {
      const part = taken.slice(start, start + MAX_BATCH)
      const items = part.map((waiting) => waiting.item)
      new Promise<O[]>((resolve) => resolve(send(items))).then(
        (results) => { part.forEach((waiting, i) => waiting.resolve(results[i] as O)) },
        (error: Error) => { for (const waiting of part) waiting.reject(error) }
      )
    }
  }
  // Not an async function: its own promise would cost every call a few more microtask turns.
  return (item) => new Promise<O>((resolve, reject) => {
    if (queue.length === 0) setImmediate(flush)
    queue.push({ item, resolve, reject })
  })
}
