import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export const fixturePath = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Fixture {
  child: ChildProcess
  port: number
  /** Every IPC message the fixture sent, from the start. */
  messages: any[]
  /** Everything the fixture printed so far (stdout and stderr). */
  output: () => string
  /** Resolves when the process has exited. */
  exited: Promise<Exit>
}

/**
 * Starts a fixture script (with an IPC channel unless `ipc: false`) and waits for the
 * `{"listening":port}` line. The process is killed when the test ends if it is still alive.
 */
export async function startFixture (
  t: Test, script: string, options: { env?: NodeJS.ProcessEnv, ipc?: boolean } = {}
): Promise<Fixture> {
  const child = spawn(process.execPath, [fixturePath(script)], {
    env: { ...process.env, ...options.env },
    stdio: options.ipc === false ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', 'ipc']
  })
  let text = ''
  const messages: any[] = []
  child.on('message', (message) => messages.push(message))
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }) as Exit)
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      text += chunk.toString()
      const match = /\{"listening":(\d+)/.exec(text)
      if (match?.[1] !== undefined) resolve(Number(match[1]))
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    exited.then((exit) => reject(new Error(`fixture ${script} exited (${JSON.stringify(exit)}) before listening:\n${text}`)))
  })
  return { child, port, messages, output: () => text, exited }
}

/** Runs a fixture to its exit (killing it after `ms`) and returns the exit and all it printed. */
export async function runFixture (script: string, env: NodeJS.ProcessEnv, ms = 20_000): Promise<Exit & { output: string }> {
  const child = spawn(process.execPath, [fixturePath(script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), ms)
  const [code, signal] = await once(child, 'exit')
  clearTimeout(timer)
  return { code, signal, output }
}
