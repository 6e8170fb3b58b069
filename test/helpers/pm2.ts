import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const run = promisify(execFile)
const pm2Bin = createRequire(import.meta.url).resolve('pm2/bin/pm2')

/**
 * A private PM2 (its own PM2_HOME and daemon, `env` over this process's environment), killed with
 * everything it started when the test ends.
 */
export function privatePm2 (t: Test, env: NodeJS.ProcessEnv = {}): (...args: string[]) => Promise<string> {
  const home = mkdtempSync(join(tmpdir(), 'fck-pm2-'))
  const pm2 = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(process.execPath, [pm2Bin, ...args], {
      env: { ...process.env, ...env, PM2_HOME: home, NODE_OPTIONS: '' },
      timeout: 60_000
    })
    return stdout
  }
  t.teardown(async () => {
    await pm2('kill').catch(() => {})
    rmSync(home, { recursive: true, force: true })
  })
  return pm2
}
