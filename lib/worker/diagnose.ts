import { Session } from 'node:inspector'
import { setTimeout as sleep } from 'node:timers/promises'
import { sendToPrimary } from '../common/protocol.js'
import type { WorkerChannel } from './channel.js'

/**
 * Answers the primary's `fck:diagnose`: a CPU profile of the next `seconds`, or a heap snapshot,
 * taken through node:inspector's in-process session (no port, no thread) and sent back in chunks
 * over IPC, ended by `fck:diagnosis-end` (with the error, if it failed). The primary allows one
 * at a time per worker.
 */
export function answerDiagnoses (channel: WorkerChannel): void {
  channel.on('fck:diagnose', ({ id, what, seconds }) => {
    const send = async (chunk: string): Promise<void> => await sendToPrimary({ type: 'fck:diagnosis-chunk', id, chunk })
    diagnose(what, seconds, send).then(
      async () => await sendToPrimary({ type: 'fck:diagnosis-end', id }),
      async (error: Error) => await sendToPrimary({ type: 'fck:diagnosis-end', id, error: error.message })
    ).catch(() => {})
  })
}

async function diagnose (what: 'profile' | 'heap', seconds: number, send: (chunk: string) => Promise<void>): Promise<void> {
  const session = new Session()
  session.connect()
  const post = async <T>(method: string, params?: object): Promise<T> => await new Promise((resolve, reject) => {
    session.post(method, params, (error, result) => error === null ? resolve(result as T) : reject(error))
  })
  try {
    if (what === 'profile') {
      await post('Profiler.enable')
      await post('Profiler.start')
      await sleep(seconds * 1000)
      const { profile } = await post<{ profile: object }>('Profiler.stop')
      await send(JSON.stringify(profile))
      return
    }
    // The snapshot is written synchronously, in chunks: each is handed to IPC as it comes.
    const sent: Array<Promise<void>> = []
    session.on('HeapProfiler.addHeapSnapshotChunk', ({ params }) => { sent.push(send(params.chunk)) })
    await post('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
    await Promise.all(sent)
  } finally {
    session.disconnect()
  }
}
