import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
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

/** Resolves once `output()` includes `text` (a log line, say); throws naming the text after `ms`. */
export async function waitForOutput (output: () => string, text: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} in the output within ${ms} ms`)
    await sleep(20)
  }
}

export interface SpawnOptions {
  /** A command that runs Node in its place, with Node and the script as its last arguments (`sh -c '...; exec "$@"'`). */
  prefix?: string[]
  /** A process group of its own, so a test can signal the whole group as a terminal's Ctrl-C does. */
  detached?: boolean
  /** Arguments after the script's path. */
  args?: string[]
  cwd?: string
}

/** Runs a script with Node, `env` over this process's environment, collecting what it prints. */
export function spawnScript (
  path: string, env: NodeJS.ProcessEnv = {}, ipc = true, { prefix = [], detached = false, args: after = [], cwd }: SpawnOptions = {}
): { child: ChildProcess, output: () => string, exited: Promise<Exit> } {
  const [command = process.execPath, ...args] = [...prefix, process.execPath, path, ...after]
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    detached
  })
  let text = ''
  const collect = (chunk: Buffer): void => { text += chunk.toString() }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }) as Exit)
  return { child, output: () => text, exited }
}

/** When the test ends: `signal` to the child if it still runs, wait for its exit, then `cleanup`. */
export function stopWithTest (t: Test, child: ChildProcess, signal: NodeJS.Signals, cleanup = async (): Promise<void> => {}): void {
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal)
      await exited
    }
    await cleanup()
  })
}

/**
 * Starts a fixture script (with an IPC channel unless `ipc: false`) and waits for the
 * `{"listening":port}` line. The process is killed when the test ends if it is still alive.
 */
export async function startFixture (
  t: Test, script: string, options: { env?: NodeJS.ProcessEnv, ipc?: boolean } & SpawnOptions = {}
): Promise<Fixture> {
  const { child, output, exited } = spawnScript(fixturePath(script), options.env, options.ipc !== false, options)
  const messages: any[] = []
  child.on('message', (message) => messages.push(message))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (): void => {
      const match = /\{"listening":(\d+)/.exec(output())
      if (match?.[1] !== undefined) resolve(Number(match[1]))
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    exited.then((exit) => reject(new Error(`fixture ${script} exited (${JSON.stringify(exit)}) before listening:\n${output()}`)))
  })
  return { child, port, messages, output, exited }
}

/** Runs a fixture (or the script at an absolute path) to its exit (killing it after `ms`) and returns the exit and all it printed. */
export async function runFixture (script: string, env: NodeJS.ProcessEnv, ms = 20_000, options: SpawnOptions = {}): Promise<Exit & { output: string }> {
  const { child, output, exited } = spawnScript(script.startsWith('/') ? script : fixturePath(script), env, false, options)
  const timer = setTimeout(() => child.kill('SIGKILL'), ms)
  const exit = await exited
  clearTimeout(timer)
  return { ...exit, output: output() }
}
