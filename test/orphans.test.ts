import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { isAlive, pidsWithMarker, procStat, startCluster, waitGone } from './helpers/cluster.js'
import { get } from './helpers/http.js'

/** A process busy on a CPU (state R) in two reads 100 ms apart: its event loop is in a busy loop. */
async function busy (pid: number): Promise<boolean> {
  if (procStat(pid)[0] !== 'R') return false
  await sleep(100)
  return procStat(pid)[0] === 'R'
}

t.test('kill -9 of the primary while a worker\'s event loop is blocked: no orphan 5 s later, in 5 of 5 runs', async (t) => {
  for (let run = 1; run <= 5; run++) {
    const marker = randomUUID()
    // The primary must not kill the blocked worker itself first: a heartbeat timeout far away.
    const cluster = await startCluster(t, { FIXTURE_RUN: marker }, { heartbeatTimeout: 120_000 })
    const pids = pidsWithMarker(marker)
    // A keep-alive socket learns which worker it reached, then blocks that worker through it.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const victim = Number((await get(cluster.port, '/', agent)).headers['x-worker-pid'])
    const blocked = get(cluster.port, '/block?ms=60000', agent).catch(() => {})
    for (let i = 0; !(await busy(victim)); i++) {
      if (i > 100) throw new Error(`worker ${victim} never blocked`)
      await sleep(50)
    }
    cluster.child.kill('SIGKILL')
    t.same(await waitGone(pids, 5000), [], `run ${run}: none of the cluster's ${pids.length} processes is left 5 s after kill -9 of the primary`)
    agent.destroy()
    await blocked
  }
})

t.test('SIGTERM to the whole process group, then kill -9 of the primary mid-drain: the blocked worker does not survive', async (t) => {
  const marker = randomUUID()
  const cluster = await startCluster(t, { FIXTURE_RUN: marker }, { heartbeatTimeout: 120_000 }, { detached: true })
  const pids = pidsWithMarker(marker)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const victim = Number((await get(cluster.port, '/', agent)).headers['x-worker-pid'])
  const blocked = get(cluster.port, '/block?ms=60000', agent).catch(() => {})
  for (let i = 0; !(await busy(victim)); i++) {
    if (i > 100) throw new Error(`worker ${victim} never blocked`)
    await sleep(50)
  }
  // What a process manager does: the group gets SIGTERM (the guard included), the primary drains,
  // the blocked worker cannot, and the primary is killed when its stop timeout runs out.
  const { guard } = (await cluster.call('stats')).primary
  process.kill(-(cluster.child.pid as number), 'SIGTERM')
  await sleep(500)
  t.same([cluster.child.pid, victim, guard].filter((pid) => !isAlive(pid as number)), [],
    'the drain is under way: the primary, the blocked worker and the guard still run')
  cluster.child.kill('SIGKILL')
  t.same(await waitGone(pids, 5000), [], 'none of the cluster\'s processes is left 5 s after the primary was killed')
  agent.destroy()
  await blocked
})
