import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from './cluster.js'

/** A real Prometheus scraping the monitoring port every second; stopped with the test. */
export async function startPrometheus (t: Test, target: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'fck-prometheus-'))
  const port = await freePort()
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: cluster',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${target}']`
  ].join('\n'))
  const child = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'
  ], { stdio: 'ignore' })
  // A missing binary emits 'error' and never 'exit': fail the test here, where its teardowns
  // (the cluster's) still run, not in an uncaught exception that skips them.
  const failed = await new Promise<Error | undefined>((resolve) => { child.once('spawn', () => resolve(undefined)); child.once('error', resolve) })
  if (failed !== undefined) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`prometheus did not start (${failed.message}); .ci/run installs the Debian package prometheus`)
  }
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    child.kill('SIGTERM')
    await exited
    rmSync(dir, { recursive: true, force: true })
  })
  return port
}
