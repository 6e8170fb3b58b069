import http from 'node:http'
import { fmt, freePort, median, sleep, startServer } from '../lib.mjs'

// A worker whose event loop blocks for good, again and again: how long the primary takes, once it
// sees the heartbeat stopped, to take the worker's stack through its inspector and kill it, and
// whether the stack names the function that blocked.
const HEARTBEAT_TIMEOUT = 1000

async function until (test) {
  for (;;) {
    const found = test()
    if (found) return found
    await sleep(10)
  }
}

export default {
  name: 'hang',
  description: `A 2-worker cluster (heartbeatTimeout ${HEARTBEAT_TIMEOUT} ms); one worker at a time takes GET /hang, which spins in spinForever until the worker is killed`,
  async run (scenario, { rounds }) {
    const hangs = Math.max(10, 2 * rounds)
    const port = await freePort()
    const server = await startServer('boot.mjs', [], {
      env: { PORT: String(port), CLUSTER_WORKERS: '2', LOG_LEVEL: 'warn', HEARTBEAT_TIMEOUT: String(HEARTBEAT_TIMEOUT) }, cpus: '0-1'
    })
    const runs = []
    try {
      for (let i = 0; i < hangs; i++) {
        const exits = server.lines().filter((line) => line.event === 'worker:exit').length
        const kills = server.lines().filter((line) => line.msg?.startsWith('killing worker')).length
        const blockedAt = Date.now()
        http.get({ host: '127.0.0.1', port, path: '/hang', agent: false }).on('error', () => {})
        const exit = await until(() => server.lines().filter((line) => line.event === 'worker:exit')[exits])
        const kill = await until(() => server.lines().filter((line) => line.msg?.startsWith('killing worker'))[kills])
        runs.push({ captureMs: kill.captureMs, toExitMs: exit.at - blockedAt, top: exit.incident?.frames?.[0]?.function })
        console.log(`  hang ${i + 1}: stack taken in ${kill.captureMs} ms (top frame ${runs.at(-1).top}), exit ${runs.at(-1).toExitMs} ms after the block began`)
        // Both workers serving again before the next hang (the first two ready before events were followed).
        await until(() => server.lines().filter((line) => line.event === 'worker:ready').length >= i + 1)
      }
    } finally {
      await server.stop()
    }
    const capture = runs.map((run) => run.captureMs)
    const toExit = runs.map((run) => run.toExitMs)
    const named = runs.filter((run) => run.top === 'spinForever').length
    return [
      `${scenario.description}. ${hangs} hangs, one after the other. Stack: from the heartbeat seen stopped (the primary checks every 250 ms) to the stack taken and the kill sent; exit: from the request that blocked to the worker's exit event (the check counts heartbeatTimeout from the last heartbeat, which came up to a heartbeat interval before the block; then the stack and the kill).`,
      '',
      '| measure | median | max |',
      '| --- | ---: | ---: |',
      `| stack taken, then kill (ms) | ${fmt(median(capture))} | ${fmt(Math.max(...capture))} |`,
      `| block → exit event (ms) | ${fmt(median(toExit))} | ${fmt(Math.max(...toExit))} |`,
      '',
      `- the top frame named spinForever in ${named} of ${hangs} hangs`
    ].join('\n')
  }
}
