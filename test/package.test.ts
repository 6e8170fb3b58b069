import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
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

// Packed once for every test here: packing builds the package (prepack).
const packDir = mkdtempSync(join(tmpdir(), 'fck-pack-'))
t.teardown(() => rmSync(packDir, { recursive: true, force: true }))
const [packed] = JSON.parse((await run('npm', ['pack', '--json', '--pack-destination', packDir], { ...NPM, cwd: ROOT })).stdout)
const tarball = join(packDir, packed.filename)
const files: string[] = packed.files.map((file: { path: string }) => file.path)

t.test('the packed tarball, installed into an empty project as a user would', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-consumer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  t.same(files.filter((file) => /^(test|benchmarks|examples|types|\.ci)\//.test(file)), [], 'no test, benchmark or example file in the package')
  t.ok(files.includes('dist/index.js') && files.includes('LICENSE') && files.includes('README.md'), 'the build, the licence and the README are')
  t.ok(['deploy/systemd/fastify-app.service', 'deploy/k8s/attendance-dashboard.yaml', 'deploy/haproxy/haproxy.cfg', 'deploy/nginx/nginx.conf', 'deploy/grafana/fastify-cluster-kit.json']
    .every((file) => files.includes(file)), 'what an operator needs ships: deploy/')
  t.match(packed, { name: 'fastify-cluster-kit' })
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  t.match(manifest, { repository: { url: /github\.com/ }, homepage: /^https:/, bugs: { url: /^https:/ } }, 'repository, homepage and bugs are set')

  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  for (const file of ['app.ts', 'leaks.ts', 'opt-in.ts', 'require.cjs', 'missing-peer.mjs', 'tsconfig.json']) copyFileSync(fixturePath(`consumer/${file}`), join(dir, file))
  await run('npm', ['install', '--omit=dev', tarball, 'fastify@5'], { ...NPM, cwd: dir })
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
  writeFileSync(join(dir, 'readme.ts'), readmeBlock('typescript'))
  t.equal(await compile('readme.ts'), 'ok', 'the README\'s TypeScript section compiles as it is')
})

/** The code block that follows `<!-- NAME -->` in the README, as it is there. */
function readmeBlock (name: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const block = new RegExp(`<!-- ${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1]
  if (block === undefined) throw new Error(`no <!-- ${name} --> code block in README.md`)
  return block
}

t.test('the README\'s quick start, verbatim, in a fresh npm init -y project: ESM and CommonJS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-quick-start-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await run('npm', ['init', '-y'], { ...NPM, cwd: dir })
  await run('npm', ['install', tarball, 'fastify@5'], { ...NPM, cwd: dir })
  for (const [file, block] of [['app.mjs', 'quick-start:esm'], ['app.cjs', 'quick-start:cjs']] as const) {
    writeFileSync(join(dir, file), readmeBlock(block))
    const port = await freePort()
    // As the README runs it, on a free port (and a free monitoring port: 3003 may be taken here).
    const env = { NODE_ENV: 'production', CLUSTER_WORKERS: '2', PORT: String(port), CLUSTER_MONITORING_PORT: String(await freePort()) }
    const { child, output, exited } = spawnScript(join(dir, file), env, false, { cwd: dir })
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    await waitForOutput(output, '"msg":"cluster ready"', 20_000)
    const response = await get(port, '/')
    t.match(JSON.parse(response.body), { hello: 'world', worker: /^[01]$/ }, `${file}: serves on PORT`)
    t.match(response.headers, { 'x-worker-id': /^[01]$/, 'x-worker-pid': /^\d+$/ }, `${file}: with the worker headers`)
    process.kill(child.pid as number, 'SIGHUP')
    await waitForOutput(output, '"msg":"rolling reload: done"', 20_000)
    t.equal((await get(port, '/')).status, 200, `${file}: reloads on SIGHUP`)
    child.kill('SIGINT')
    t.same(await exited, { code: 0, signal: null }, `${file}: stops clean on SIGINT`)
    t.match(output(), /"msg":"cluster stopped".*|"clean":true/)
  }
})

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function slug (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

t.test('every relative link in the packed README and docs resolves against the packed files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fck-links-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await run('tar', ['-xzf', tarball, '-C', dir])
  const root = join(dir, 'package')
  const documents = files.filter((file) => file === 'README.md' || /^docs\/.*\.md$/.test(file))
  t.ok(documents.includes('docs/reference.md') && documents.includes('docs/migrating.md'))
  let checked = 0
  for (const document of documents) {
    const text = readFileSync(join(root, document), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:)/.test(target as string)) continue
      const [path = '', anchor] = (target as string).split('#')
      const file = path === '' ? document : join(dirname(document), path)
      t.ok(existsSync(join(root, file)), `${document}: ${target} is in the package`)
      if (anchor !== undefined && file.endsWith('.md') && existsSync(join(root, file))) {
        const headings = [...readFileSync(join(root, file), 'utf8').matchAll(/^#{1,6} (.*)$/gm)].map(([, heading]) => slug(heading as string))
        t.ok(headings.includes(anchor), `${document}: #${anchor} is a heading of ${file}`)
      }
      checked++
    }
  }
  t.ok(checked > 20, `${checked} links checked`)
})
