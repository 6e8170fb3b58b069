// `fastify-cluster start <entry>`: an app we did not write, clustered with no code change.
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import t, { type Test } from 'tap'
import { childrenOf, freePort, until, waitGone } from './helpers/cluster.js'
import { runFixture, spawnScript, waitForOutput } from './helpers/fixture.js'
import { generatedApp } from './helpers/generated-app.js'
import { get } from './helpers/http.js'

const CLI = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))

async function start (t: Test, dir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const port = await freePort()
  const monitoring = await freePort()
  const started = spawnScript(CLI, { NODE_ENV: 'production', CLUSTER_MONITORING_PORT: String(monitoring), ...env }, false,
    { args: ['start', '-p', String(port), '-a', '127.0.0.1', ...args], cwd: dir })
  t.teardown(() => { if (started.child.exitCode === null) started.child.kill('SIGKILL') })
  return { ...started, port, monitoring }
}

t.test('an app made by fastify generate, clustered with no code change', async (t) => {
  const dir = await generatedApp(t)
  const app = await start(t, dir, ['-w', '2', 'app.js'])
  await waitForOutput(app.output, '"msg":"cluster ready"', 20_000)

  const workers = new Set<string>()
  for (let i = 0; i < 20 && workers.size < 2; i++) {
    const response = await get(app.port, '/')
    t.equal(response.body, '{"root":true}', 'routes/root.js answers, loaded by @fastify/autoload')
    workers.add(String(response.headers['x-worker-id']))
  }
  t.same([...workers].sort(), ['0', '1'], 'two workers answer, with X-Worker-ID')
  t.equal((await get(app.port, '/example')).body, 'this is an example', 'routes/example too')
  t.equal((await get(app.port, '/health/ready')).status, 200, 'clusterPlugin is registered')

  const load = autocannon({ url: `http://127.0.0.1:${app.port}/`, connections: 20, duration: 5 })
  await sleep(1000)
  process.kill(app.child.pid as number, 'SIGHUP')
  await waitForOutput(app.output, '"msg":"rolling reload: done"', 20_000)
  const result = await load
  t.equal(result.errors + result.timeouts + result.non2xx, 0, `a rolling reload under load: 0 failed of ${result.requests.total}`)

  const pids = [app.child.pid as number, ...childrenOf(app.child.pid as number)]
  app.child.kill('SIGTERM')
  t.same(await app.exited, { code: 0, signal: null }, 'SIGTERM: exit 0')
  t.same(await waitGone(pids), [], 'nothing left running')
})

t.test('entries of every shape: a factory, an instance, CommonJS, TypeScript; --single', async (t) => {
  const dir = await generatedApp(t, {
    'factory.mjs': 'import Fastify from \'fastify\'\nexport default async function build () {\n  const app = Fastify()\n  app.get(\'/\', async () => ({ shape: \'factory\' }))\n  return app\n}\n',
    'instance.mjs': 'import Fastify from \'fastify\'\nconst app = Fastify()\napp.get(\'/\', async () => ({ shape: \'instance\' }))\nexport default app\n',
    'plugin.cjs': 'module.exports = async function (fastify) {\n  fastify.get(\'/\', async () => ({ shape: \'commonjs\' }))\n}\n',
    'typed.ts': 'import type { FastifyInstance } from \'fastify\'\nexport default async function (fastify: FastifyInstance): Promise<void> {\n  fastify.get(\'/\', async () => ({ shape: \'typescript\' }))\n}\n'
  })
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
  const stripsTypes = major > 22 || (major === 22 && minor >= 18)
  const entries: Array<[string, string]> = [['factory.mjs', 'factory'], ['instance.mjs', 'instance'], ['plugin.cjs', 'commonjs'], ...(stripsTypes ? [['typed.ts', 'typescript'] as [string, string]] : [])]
  for (const [entry, shape] of entries) {
    const app = await start(t, dir, ['--single', entry])
    await until(`${entry} to answer`, async () => await get(app.port, '/').then((response) => response.status === 200, () => false), 20_000)
    const response = await get(app.port, '/')
    t.same(JSON.parse(response.body), { shape }, `${entry}: served`)
    t.equal(response.headers['x-worker-id'], 'single', 'one process, with the worker headers')
    app.child.kill('SIGTERM')
    t.same(await app.exited, { code: 0, signal: null })
  }
})

t.test('what cannot start: one line, exit 1, nothing left', async (t) => {
  const dir = await generatedApp(t, {
    'nothing.mjs': 'export const answer = 42\n',
    'throws.mjs': "throw new Error('config missing')\n",
    'rejects.mjs': "export default async function (fastify) {\n  throw new Error('database unreachable')\n}\n",
    'returns.mjs': 'export default async function () {\n  return { not: "an app" }\n}\n'
  })
  const cases: Array<[string, RegExp]> = [
    ['missing.js', /^fastify-cluster: Cannot run missing\.js: no such file$/m],
    ['nothing.mjs', /Cannot run nothing\.mjs: it exports nothing usable: found exports \[answer\]; expected a default export that is a Fastify plugin/],
    ['throws.mjs', /Cannot run throws\.mjs: it threw while loading: config missing \(at .*throws\.mjs:1:\d+\)/],
    ['rejects.mjs', /Cannot run rejects\.mjs: its plugin failed to register: database unreachable \(at .*rejects\.mjs:2:\d+\)/],
    ['returns.mjs', /Cannot run returns\.mjs: its default export is a factory \(no argument\), but it returned exports \[not\], not a Fastify instance/]
  ]
  for (const [entry, message] of cases) {
    const run = await runFixture(CLI, { NODE_ENV: 'production', CLUSTER_WORKERS: '2', CLUSTER_MONITORING_PORT: 'false', PORT: String(await freePort()) }, 20_000, { args: ['start', entry], cwd: dir })
    t.equal(run.code, 1, `${entry}: exit 1`)
    t.match(run.output, message, `${entry}: says why in one line`)
    t.notMatch(run.output, /\n\s+at /, `${entry}: no stack trace`)
  }
  const flag = await runFixture(CLI, {}, 20_000, { args: ['start', '-p', 'eighty', 'app.js'], cwd: dir })
  t.match(flag.output, /Invalid option --port: got "eighty", expected a port number/)
  t.equal(flag.code, 1)
})
