import { readFileSync, realpathSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { Env } from '../common/config.js'

/** How much longer than the drain's own limit a runner must wait, so the kit's timer fires first and says what was still open. */
const MARGIN = 1000

/**
 * fastify-cli's `fastify start` runs the app in its own process and ends it through
 * close-with-grace, `--close-grace-delay` ms (default 500) after SIGTERM. The delay it was given
 * (a flag, or FASTIFY_CLOSE_GRACE_DELAY, which fastify-cli also reads from a .env file), or
 * undefined when this process is not `fastify start`. fastify-cli takes its arguments out of
 * process.argv, so they are read from the command line the process was started with.
 */
export function fastifyCliGraceDelay (argv: readonly string[] = commandLine(), env: Env = process.env): number | undefined {
  const at = argv.findIndex((arg, i) => i > 0 && /fastify-cli[\\/]cli\.js$/.test(realpath(arg)))
  const [command, ...args] = at < 0 ? [] : argv.slice(at + 1)
  if (command !== 'start') return undefined
  const { values } = parseArgs({ args, options: { 'close-grace-delay': { type: 'string', short: 'g' } }, strict: false, allowPositionals: true })
  const given = values['close-grace-delay'] ?? env.FASTIFY_CLOSE_GRACE_DELAY
  return typeof given === 'string' && given !== '' ? Number(given) : 500
}

/** This process's command line as it was started (Linux), else process.argv. */
function commandLine (): string[] {
  try {
    return readFileSync('/proc/self/cmdline', 'utf8').split('\0').slice(0, -1)
  } catch {
    return process.argv
  }
}

function realpath (path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

/**
 * What to tell the user at start under `fastify start`, whose close-with-grace ends the process on
 * a timer of its own after SIGTERM: the kit's drain goes on until fastify-cli's `fastify.close()`
 * returns (shutdown.ts), but not past that timer. Exactly the flag to set, or undefined when it is
 * set well or this is not fastify-cli (other handlers of the signal cannot be told apart from
 * passive ones such as signal-exit's: the README says what they must allow).
 */
export function runnerWarning (gracefulTimeout: number, graceDelay = fastifyCliGraceDelay()): string | undefined {
  const needed = gracefulTimeout + MARGIN
  if (graceDelay === undefined || graceDelay >= needed) return undefined
  return `fastify start ends the process ${graceDelay} ms after SIGTERM (--close-grace-delay), before the kit's drain, which may take up to gracefulTimeout (${gracefulTimeout} ms): ` +
    `requests in flight are cut. Run fastify start --close-grace-delay ${needed} (or lower GRACEFUL_SHUTDOWN_TIMEOUT)`
}
