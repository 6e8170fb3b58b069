import { hostname } from 'node:os'

/**
 * The primary's logger: JSON lines in pino's format (level numbers, `time`, `pid`, `hostname`,
 * `msg`), so primary and worker logs read and parse alike. Hand-written because pino itself would
 * cost the primary resident memory out of proportion to a few lines a minute (benchmarks/RESULTS.md).
 */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const
export type LevelName = keyof typeof LEVELS
export const LEVEL_NAMES = Object.keys(LEVELS) as LevelName[]

type LogFn = (objOrMsg: object | string, msg?: string) => void
export type PrimaryLogger = Record<LevelName, LogFn> & { child: (bindings: object) => PrimaryLogger }

export function createLogger (level: LevelName, bindings: object = {}, write = (line: string) => process.stdout.write(line)): PrimaryLogger {
  const threshold = LEVELS[level]
  const base = { pid: process.pid, hostname: hostname(), ...bindings }
  const entry = (name: LevelName): LogFn => (objOrMsg, msg) => {
    if (LEVELS[name] < threshold) return
    const fields = typeof objOrMsg === 'string' ? { msg: objOrMsg } : { ...serialize(objOrMsg), ...(msg === undefined ? {} : { msg }) }
    write(JSON.stringify({ level: LEVELS[name], time: Date.now(), ...base, ...fields }) + '\n')
  }
  const logger = Object.fromEntries(Object.keys(LEVELS).map((name) => [name, entry(name as LevelName)])) as Record<LevelName, LogFn>
  return { ...logger, child: (more) => createLogger(level, { ...bindings, ...more }, write) }
}

function serialize (fields: object): object {
  const err = (fields as { err?: unknown }).err
  if (!(err instanceof Error)) return fields
  return { ...fields, err: { type: err.name, message: err.message, stack: err.stack, code: (err as { code?: unknown }).code } }
}
