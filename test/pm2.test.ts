import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t from 'tap'
import { freePort } from './helpers/cluster.js'
import { fixturePath } from './helpers/fixture.js'
import { get } from './helpers/http.js'
import { privatePm2 } from './helpers/pm2.js'

async function workersAnswering (port: number): Promise<Map<string, string>> {
  const seen = new Map<string, string>()
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const response = await get(port, '/')
    seen.set(String(response.headers['x-worker-id']), String(response.headers['x-worker-pid']))
  }
  return seen
}

t.test('under real PM2 cluster mode: ids from NODE_APP_INSTANCE, pm2 reload under load drops no request', async (t) => {
  const pm2 = privatePm2(t)
  const port = await freePort()
  const ecosystem = join(tmpdir(), `fck-ecosystem-${process.pid}.json`)
  t.teardown(() => rmSync(ecosystem, { force: true }))
  writeFileSync(ecosystem, JSON.stringify({
    apps: [{
      name: 'fck-fixture',
      script: fixturePath('cluster.mjs'),
      exec_mode: 'cluster',
      instances: 2,
      wait_ready: true,
      listen_timeout: 10_000,
      kill_timeout: 10_000,
      env: { FIXTURE_BOOT_OPTIONS: JSON.stringify({ port, host: '127.0.0.1' }), NODE_ENV: 'production' }
    }]
  }))
  await pm2('start', ecosystem)
  let before = new Map<string, string>()
  for (let attempt = 0; attempt < 100 && before.size < 2; attempt++) {
    before = await workersAnswering(port).catch(() => new Map())
    if (before.size < 2) await sleep(100)
  }
  t.same([...before.keys()].sort(), ['0', '1'], 'X-Worker-ID is NODE_APP_INSTANCE')

  const load = autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, duration: 8 })
  await sleep(1000)
  await pm2('reload', 'fck-fixture')
  const result = await load
  t.equal(result.errors, 0, 'no connection error during pm2 reload')
  t.equal(result.timeouts, 0, 'no timeout')
  t.equal(result.non2xx, 0, 'no non-2xx answer')
  t.ok(result.requests.total > 1000, `${result.requests.total} requests`)
  const after = await workersAnswering(port)
  t.same([...after.keys()].sort(), ['0', '1'])
  t.equal([...after.values()].filter((pid) => [...before.values()].includes(pid)).length, 0, 'both workers were replaced')
  await pm2('delete', 'fck-fixture')
})
