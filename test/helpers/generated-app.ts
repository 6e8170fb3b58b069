import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const FASTIFY_CLI = join(ROOT, 'node_modules/fastify-cli/cli.js')

/** What a generated app needs from node_modules, and the kit itself (this repository's build). */
const PACKAGES = ['fastify', 'fastify-plugin', '@fastify/autoload', '@fastify/sensible', 'fastify-cli']

/**
 * An app made by the real `fastify generate NAME --esm` (app.js, plugins/, routes/ loaded by
 * @fastify/autoload), plus `files` (path → source). Its node_modules links to this repository's,
 * with `fastify-cluster-kit` linking to this repository. Removed when the test ends.
 */
export async function generatedApp (t: Test, files: Record<string, string> = {}): Promise<string> {
  const parent = mkdtempSync(join(tmpdir(), 'fck-generated-'))
  t.teardown(() => rmSync(parent, { recursive: true, force: true }))
  await run(process.execPath, [FASTIFY_CLI, 'generate', 'myapp', '--esm'], { cwd: parent })
  const dir = join(parent, 'myapp')
  for (const name of PACKAGES) {
    mkdirSync(dirname(join(dir, 'node_modules', name)), { recursive: true })
    symlinkSync(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name))
  }
  symlinkSync(ROOT, join(dir, 'node_modules/fastify-cluster-kit'))
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), source)
  }
  return dir
}

/** A route that answers after `?ms=` milliseconds (800 by default), naming the worker when there is one. */
export const SLOW_ROUTE = `export default async function (fastify) {
  fastify.get('/', async (request) => {
    await new Promise((resolve) => setTimeout(resolve, Number(request.query.ms ?? 800)))
    return { slow: true, worker: fastify.cluster?.workerId ?? null }
  })
}
`
