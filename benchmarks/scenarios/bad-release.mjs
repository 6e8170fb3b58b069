import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { fmt, freePort, interleavedRuns, median, sleep, startPm2, startServer } from '../lib.mjs'

// A deploy of a release that starts fine and answers 500 on every request: how many requests the
// bad release answers, and how many fail outright, in the WINDOW seconds after the deploy, under
// steady keep-alive load. bootCluster with canary rollouts (a canary bakes for BAKE_MS beside the
// old workers, is judged and retired), bootCluster's plain rolling reload, and `pm2 reload` of the
// same app. The release on disk changes just before the reload, as a deploy does.
const CONNECTIONS = 50
const WINDOW = 20
const BAKE_MS = 5000

const bootEnv = async (canary) => ({
  PORT: String(await freePort()),
  CLUSTER_WORKERS: '2',
  LOG_LEVEL: 'error',
  ...(canary ? { CLUSTER_CANARY: 'true', CLUSTER_CANARY_BAKE: String(BAKE_MS), CLUSTER_CANARY_MIN_REQUESTS: '100' } : {})
})

const reloadBoot = async (server) => {
  const ended = () => server.lines().filter((line) => line.event === 'reload:done' || line.event === 'reload:failed').length
  const before = ended()
  process.kill(server.child.pid, 'SIGHUP')
  while (ended() === before) await sleep(20)
}

const variants = {
  'bootCluster, canary': {
    start: async (release) => await startServer('release.mjs', ['boot'], { env: { ...await bootEnv(true), RELEASE_FILE: release }, cpus: '0-1' }),
    reload: reloadBoot
  },
  'bootCluster, rolling reload': {
    start: async (release) => await startServer('release.mjs', ['boot'], { env: { ...await bootEnv(false), RELEASE_FILE: release }, cpus: '0-1' }),
    reload: reloadBoot
  },
  'pm2 reload': {
    start: async (release) => await startPm2('release.mjs', [], 2, { RELEASE_FILE: release }),
    reload: async (server) => await server.pm2('reload', 'bench')
  }
}

async function once (variant) {
  const dir = await mkdtemp(join(os.tmpdir(), 'fck-bench-release-'))
  const release = join(dir, 'release.json')
  await writeFile(release, '{}')
  const server = await variants[variant].start(release)
  try {
    const load = autocannon({ url: `http://127.0.0.1:${server.port}/`, connections: CONNECTIONS, duration: 2 + WINDOW })
    await sleep(2000)
    await writeFile(release, JSON.stringify({ status: 500 }))
    const started = Date.now()
    await variants[variant].reload(server)
    const reloadMs = Date.now() - started
    const result = await load
    return { bad: result.non2xx, failed: result.errors + result.timeouts, total: result.requests.total, reloadMs }
  } finally {
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

export default {
  name: 'bad-release',
  description: `A release that answers 500 deployed under autocannon -c ${CONNECTIONS} (2 workers): requests the bad release answered and requests that failed in the ${WINDOW} s after the deploy; canary bake ${BAKE_MS} ms`,
  async run (scenario, { rounds }) {
    const runs = await interleavedRuns(Object.keys(variants), rounds, once,
      (name, run) => `bad-release ${name}: ${run.bad} answered by the bad release, ${run.failed} failed, of ${run.total}; reload took ${run.reloadMs} ms`)
    const lines = [
      `${scenario.description}. ${rounds} interleaved rounds.`,
      '',
      '| variant | answered by the bad release (median) | share of all requests (median) | min–max | failed outright (median) | requests per run (median) | reload ms (median) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |'
    ]
    for (const [name, list] of Object.entries(runs)) {
      const bad = list.map((run) => run.bad)
      lines.push(`| ${name} | ${fmt(median(bad))} | ${fmt(median(list.map((run) => 100 * run.bad / run.total)), 1)}% | ${fmt(Math.min(...bad))}–${fmt(Math.max(...bad))} | ` +
        `${fmt(median(list.map((run) => run.failed)))} | ${fmt(median(list.map((run) => run.total)))} | ${fmt(median(list.map((run) => run.reloadMs)))} |`)
    }
    return lines.join('\n')
  }
}
