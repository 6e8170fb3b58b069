import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { freePort } from './helpers/cluster.js'
import { fixturePath, spawnScript, waitForOutput } from './helpers/fixture.js'
import { get } from './helpers/http.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const NPM = { env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }, maxBuffer: 64 * 2 ** 20 }

/** Installed packages of a node_modules folder, scoped ones as `@scope/name`. */
function installed (dir: string): string[] {
  return readdirSync(join(dir, 'node_modules')).flatMap((name) => name.startsWith('@')
    ? readdirSync(join(dir, 'node_modules', name)).map((inner) => `${name}/${inner}`)
    : name.startsWith('.') ? [] : [name])
}

t.test('the packed tarball, installed into an empty project as a user would', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-consumer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const [packed] = JSON.parse((await run('npm', ['pack', '--json', '--pack-destination', dir], { ...NPM, cwd: ROOT })).stdout)
  const files: string[] = packed.files.map((file: { path: string }) => file.path)
  t.same(files.filter((file) => /^(test|benchmarks|examples|types|\.ci)\//.test(file)), [], 'no test, benchmark or example file in the package')
  t.ok(files.includes('dist/index.js') && files.includes('LICENSE') && files.includes('README.md'), 'the build, the licence and the README are')

  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  for (const file of ['app.ts', 'leaks.ts', 'opt-in.ts', 'require.cjs', 'missing-peer.mjs', 'tsconfig.json']) copyFileSync(fixturePath(`consumer/${file}`), join(dir, file))
  await run('npm', ['install', '--omit=dev', join(dir, packed.filename), 'fastify@5'], { ...NPM, cwd: dir })
  const production = installed(dir)
  for (const optional of ['@fastify/session', '@fastify/cookie', '@fastify/rate-limit', '@fastify/redis', 'ioredis', 'socket.io-client', 'yaml']) {
    t.notOk(production.includes(optional), `${optional} is not installed for an app that does not use it`)
  }
  t.ok(production.includes('fastify-cluster-kit') && production.includes('prom-client'))

  // Compiled as a user's strict NodeNext project; leaks.ts fails to compile if a plugin's types leak in.
  await run('npm', ['install', '--no-save', '@types/node@22'], { ...NPM, cwd: dir })
  const compile = async (...entries: string[]): Promise<string> => {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: './tsconfig.base.json', files: entries }))
    try {
      await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: dir })
      return 'ok'
    } catch (error) {
      return (error as { stdout: string }).stdout
    }
  }
  copyFileSync(fixturePath('consumer/tsconfig.json'), join(dir, 'tsconfig.base.json'))
  t.equal(await compile('app.ts', 'leaks.ts'), 'ok', 'the quick start compiles; no request.session, reply.setCookie or fastify.rateLimit without opting in')

  // The quick start runs, clustered.
  const port = await freePort()
  const { child, output, exited } = spawnScript(join(dir, 'dist/app.js'), { PORT: String(port), NODE_ENV: 'production', CLUSTER_WORKERS: '2', LOG_LEVEL: 'warn' }, false)
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  await waitForOutput(output, '"workers":2', 20_000)
  const response = await get(port, '/')
  t.equal(response.status, 200)
  t.match(JSON.parse(response.body), { hello: 'world', worker: /^[01]$/ })
  t.match(response.headers['x-worker-id'], /^[01]$/)
  child.kill('SIGTERM')
  t.same(await exited, { code: 0, signal: null }, 'a clean stop')

  const required = JSON.parse((await run(process.execPath, ['require.cjs'], { cwd: dir })).stdout)
  t.same(required, { default: 'function', bootCluster: 'function', status: 200, worker: 'single' }, 'require() from CommonJS works, inject() sees headers and readiness')

  const missing = JSON.parse((await run(process.execPath, ['missing-peer.mjs'], { cwd: dir })).stdout)
  t.same(missing, {
    code: 'FCK_MISSING_PEER',
    message: 'The @fastify/session and @fastify/cookie packages are needed for the session option and not installed: npm install @fastify/session @fastify/cookie'
  }, 'an option whose plugins are not installed names them all at once, with the install line')

  // Opting in brings @fastify/session's types, and the app can extend its Session.
  await run('npm', ['install', '--no-save', '@types/node@22', '@fastify/session@11', '@fastify/cookie@11'], { ...NPM, cwd: dir })
  t.equal(await compile('opt-in.ts'), 'ok', 'with fastify-cluster-kit/session, request.session is typed')
})
