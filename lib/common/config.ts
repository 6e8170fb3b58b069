import { FCK_INVALID_ENV, FCK_INVALID_OPTION } from './errors.js'

// Reading settings: an option given in code wins over the environment, the environment over
// the default. Each reader validates once and throws an error naming the option or variable
// and the value it saw; nothing starts half-configured.

export type Env = Record<string, string | undefined>

/** Where a value came from, so the error can name it. */
interface Source {
  option: string
  env?: string
}

function fail (source: Source, fromEnv: boolean, value: unknown, expected: string): never {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value)
  if (fromEnv && source.env !== undefined) throw new FCK_INVALID_ENV(source.env, shown, expected)
  throw new FCK_INVALID_OPTION(source.option, shown, expected)
}

function pick (value: unknown, source: Source, env: Env): { raw: unknown, fromEnv: boolean } | undefined {
  if (value !== undefined) return { raw: value, fromEnv: false }
  const fromEnv = source.env === undefined ? undefined : env[source.env]
  if (fromEnv === undefined || fromEnv === '') return undefined
  return { raw: fromEnv, fromEnv: true }
}

function toNumber (raw: unknown): number {
  if (typeof raw === 'number') return raw
  if (typeof raw === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(raw)) return Number(raw)
  return Number.NaN
}

/** No setting in milliseconds may be longer than a day: a longer one is a typo (seconds as ms, an extra zero). */
export const MAX_MS = 86_400_000

/** A whole number of milliseconds from `min` to `max`. */
export function readMs (value: unknown, source: Source, env: Env, fallback: number, min = 0, max = MAX_MS): number {
  return readInteger(value, source, env, fallback, min, `a whole number of milliseconds >= ${min} and <= ${max}`, max)
}

/** A whole number >= `min` (counts, ports, ...). */
export function readInteger (
  value: unknown, source: Source, env: Env, fallback: number, min = 0,
  expected = `a whole number >= ${min}`, max = Number.MAX_SAFE_INTEGER
): number {
  const found = pick(value, source, env)
  if (found === undefined) return fallback
  const n = toNumber(found.raw)
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(source, found.fromEnv, found.raw, expected)
  return n
}

/** A boolean; the environment accepts true/false/1/0/yes/no. */
export function readBoolean (value: unknown, source: Source, env: Env, fallback: boolean): boolean {
  const found = pick(value, source, env)
  if (found === undefined) return fallback
  if (typeof found.raw === 'boolean') return found.raw
  if (found.fromEnv && typeof found.raw === 'string') {
    const text = found.raw.trim().toLowerCase()
    if (['true', '1', 'yes'].includes(text)) return true
    if (['false', '0', 'no'].includes(text)) return false
  }
  return fail(source, found.fromEnv, found.raw, 'true or false')
}

/** A non-empty string, or `false` where the setting can be turned off. */
export function readName (value: unknown, source: Source, fallback: string | false): string | false {
  if (value === undefined) return fallback
  if (value === false) return false
  if (typeof value === 'string' && value.trim() !== '') return value
  return fail(source, false, value, 'a non-empty string or false')
}

const BYTE_UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, KB: 2 ** 10, M: 2 ** 20, MB: 2 ** 20, G: 2 ** 30, GB: 2 ** 30 }

/** A size in bytes, at least `min`: a number, or a string like `512M`, `1G`, `300MB`; `fallback` when unset. */
export function readBytes (value: unknown, source: Source, env: Env, fallback: number | undefined, min = 1): number | undefined {
  const found = pick(value, source, env)
  if (found === undefined) return fallback
  const expected = `bytes as a whole number or with a unit K, M or G (e.g. 512M, 1G), at least ${formatBytes(min)}`
  if (typeof found.raw === 'number') {
    if (!Number.isSafeInteger(found.raw) || found.raw < min) fail(source, found.fromEnv, found.raw, expected)
    return found.raw
  }
  const match = typeof found.raw === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*$/i.exec(found.raw) : null
  const scale = match === null ? undefined : BYTE_UNITS[(match[2] ?? '').toUpperCase()]
  if (match === null || scale === undefined) return fail(source, found.fromEnv, found.raw, expected)
  const bytes = Math.round(Number(match[1]) * scale)
  if (bytes < min) fail(source, found.fromEnv, found.raw, expected)
  return bytes
}

function formatBytes (bytes: number): string {
  return bytes % 2 ** 20 === 0 ? `${bytes / 2 ** 20}M` : `${bytes} bytes`
}

/**
 * An options object's keys are all known ones: a typo (`gracefullTimeout`, `timewindow`) would
 * otherwise be ignored and its default used unseen. `prefix` names the object (`rateLimit.`).
 */
export function rejectUnknown (options: object, known: Iterable<string>, prefix = ''): void {
  const names = [...known]
  for (const key of Object.keys(options)) {
    if (!names.includes(key)) throw new FCK_INVALID_OPTION(`${prefix}${key}`, 'an unknown option', `one of ${names.join(', ')}`)
  }
}
