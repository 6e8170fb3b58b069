import { FCK_INVALID_ENV, FCK_INVALID_OPTION } from './errors.js'

// Settings are declared once each, as a `Setting` (option name, environment variable, kind,
// default, docs); the resolvers read them with `read()`, the CLI reads the monitoring ones, and
// the README's configuration table is generated from the same declarations (a unit test fails
// when it differs). An option given in code wins over the environment, the environment over the
// default. A bad value throws an error naming the option or variable, the value and what is
// expected; nothing starts half-configured.

export type Env = Record<string, string | undefined>

/** What values a setting takes. */
export interface Kind<T> {
  /** What a good value looks like: the end of an error message, and the README's "accepts" column. */
  expected: string
  /** What code may pass, when it is more than the environment's text can hold (ioredis options besides a URL). */
  expectedInCode?: string
  /** The value, or undefined when `raw` is not one; `fromEnv`: `raw` is an environment variable's text. */
  parse: (raw: unknown, fromEnv: boolean) => T | undefined
}

export interface Setting<T> {
  /** The option's name in code, dotted when nested (`monitoring.port`); none for a variable-only setting. */
  option?: string
  /** The environment variable it is also read from. */
  env?: string
  /** The variables as the README names them, when more than `env` is read (`REDIS_URL`, else ...). */
  envText?: string
  kind: Kind<T>
  default: T
  /** A default that depends on the environment (the worker count on NODE_ENV). */
  defaultFrom?: (env: Env) => T
  /** The default as the README states it. */
  shown: string
  /** One line for the README: what it does. */
  doc: string
  /** Its value is never printed (a token, a URL that may hold a password). */
  secret?: boolean
}

/** The setting's value: `value` from code, else its variable in `env`, else its default. `kind` narrows it where bounds depend on other settings. */
export function read<T> (setting: Setting<T>, value: unknown, env: Env, kind: Kind<T> = setting.kind): T {
  const fromEnv = value === undefined
  const raw = fromEnv && setting.env !== undefined ? env[setting.env] : value
  if (raw === undefined || (fromEnv && raw === '')) return setting.defaultFrom?.(env) ?? setting.default
  const parsed = kind.parse(raw, fromEnv)
  if (parsed !== undefined) return parsed
  return invalid(setting, fromEnv, raw, fromEnv ? kind.expected : kind.expectedInCode ?? kind.expected)
}

/**
 * The settings of `table` set both in code (`given`, keyed as the table is) and by their variable:
 * the option wins, so a variable a platform sets (PORT, HOST) would be ignored without a word.
 * Returns one warning line for each whose values differ; a variable whose value is bad fails
 * as if no option were given (FCK_INVALID_ENV), rather than waiting for the day the option goes.
 */
export function overriddenVariables (table: Record<string, Setting<any>>, given: object | undefined, env: Env): string[] {
  const lines: string[] = []
  for (const [key, setting] of Object.entries(table)) {
    const value = (given as Record<string, unknown> | undefined)?.[key]
    const raw = setting.env === undefined ? undefined : env[setting.env]
    if (value === undefined || raw === undefined || raw === '') continue
    const fromEnv = setting.kind.parse(raw, true)
    if (fromEnv === undefined) invalid(setting, true, raw, setting.kind.expected)
    if (JSON.stringify(fromEnv) === JSON.stringify(setting.kind.parse(value, false))) continue
    lines.push(setting.secret === true
      ? `${setting.env as string} is set but ignored: the ${setting.option ?? key} option wins`
      : `${setting.env as string}=${raw} is ignored: the ${setting.option ?? key} option (${JSON.stringify(value)}) wins`)
  }
  return lines
}

/** A warning of the kit's where no logger of the primary's is at hand: one line on stderr, which no log level hides. */
export function warnLine (line: string): void {
  process.stderr.write(`fastify-cluster-kit: warning: ${line}\n`)
}

/** The error for a bad value of `setting`, naming the variable when the value came from it. */
export function invalid (setting: Setting<unknown>, fromEnv: boolean, value: unknown, expected: string): never {
  const shown = typeof value === 'string' || Array.isArray(value) ? JSON.stringify(value) : String(value)
  if (fromEnv && setting.env !== undefined) throw new FCK_INVALID_ENV(setting.env, shown, expected)
  throw new FCK_INVALID_OPTION(setting.option ?? setting.env ?? 'options', shown, expected)
}

function toNumber (raw: unknown): number {
  if (typeof raw === 'number') return raw
  if (typeof raw === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(raw)) return Number(raw)
  return Number.NaN
}

/** A whole number from `min` to `max`. */
export function integer (min: number, max = Number.MAX_SAFE_INTEGER, expected = max === Number.MAX_SAFE_INTEGER
  ? `a whole number >= ${min}`
  : `a whole number >= ${min} and <= ${max}`): Kind<number> {
  return {
    expected,
    parse: (raw) => {
      const n = toNumber(raw)
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined
    }
  }
}

/** No setting in milliseconds may be longer than a day: a longer one is a typo (seconds as ms, an extra zero). */
export const MAX_MS = 86_400_000

/** A whole number of milliseconds from `min` to `max`. */
export function ms (min: number, max = MAX_MS): Kind<number> {
  return integer(min, max, `a whole number of milliseconds >= ${min} and <= ${max}`)
}

export function port (min = 0): Kind<number> {
  return integer(min, 65535, `a port number from ${min} to 65535`)
}

/** In code a boolean; the environment accepts true/false/1/0/yes/no. */
export const boolean: Kind<boolean> = {
  expected: 'true or false',
  parse: (raw, fromEnv) => {
    if (typeof raw === 'boolean') return raw
    const text = fromEnv && typeof raw === 'string' ? raw.trim().toLowerCase() : undefined
    if (text === 'true' || text === '1' || text === 'yes') return true
    if (text === 'false' || text === '0' || text === 'no') return false
    return undefined
  }
}

/** A non-empty string: `expected` says what it names. */
export function text (expected: string): Kind<string> {
  return { expected, parse: (raw) => typeof raw === 'string' && raw.trim() !== '' ? raw : undefined }
}

/** A share between 0 (excluded) and 1, such as an event-loop utilisation. */
export const fraction: Kind<number> = {
  expected: 'a number above 0 and at most 1 (e.g. 0.95)',
  parse: (raw) => {
    const n = toNumber(raw)
    return n > 0 && n <= 1 ? n : undefined
  }
}

/** How many times another value, at least 1 (the canary's verdict ratio). */
export const ratio: Kind<number> = {
  expected: 'a number from 1 to 1000 (e.g. 2)',
  parse: (raw) => {
    const n = toNumber(raw)
    return n >= 1 && n <= 1000 ? n : undefined
  }
}

/** A non-empty string, or `false` to turn the thing off. */
export const nameOrOff: Kind<string | false> = {
  expected: 'a non-empty string or false',
  parse: (raw) => raw === false || (typeof raw === 'string' && raw.trim() !== '') ? raw : undefined
}

const PATH = /^(\/[^/\s]+)+\/?$/

/** A URL path (a trailing slash dropped), or `false` to add no route. */
export function pathOrOff (example: string): Kind<string | false> {
  return {
    expected: `a path like "${example}" or false`,
    parse: (raw) => raw === false ? false : typeof raw === 'string' && PATH.test(raw) ? raw.replace(/\/$/, '') : undefined
  }
}

/** One of a few strings. */
export function oneOf<T extends string> (values: readonly T[], expected = values.map((v) => `'${v}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')): Kind<T> {
  return { expected, parse: (raw) => values.find((value) => value === raw) }
}

const BYTE_UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, KB: 2 ** 10, M: 2 ** 20, MB: 2 ** 20, G: 2 ** 30, GB: 2 ** 30 }

/** A size in bytes, at least `min`: a number, or a string like `512M`, `1G`, `300MB`. */
export function bytes (min = 1): Kind<number | undefined> {
  return {
    expected: `bytes as a whole number or with a unit K, M or G (e.g. 512M, 1G), at least ${formatBytes(min)}`,
    parse: (raw) => {
      if (typeof raw === 'number') return Number.isSafeInteger(raw) && raw >= min ? raw : undefined
      const match = typeof raw === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*$/i.exec(raw) : null
      const scale = match === null ? undefined : BYTE_UNITS[(match[2] ?? '').toUpperCase()]
      if (match === null || scale === undefined) return undefined
      const n = Math.round(Number(match[1]) * scale)
      return n >= min ? n : undefined
    }
  }
}

function formatBytes (n: number): string {
  return n % 2 ** 20 === 0 ? `${n / 2 ** 20}M` : `${n} bytes`
}

/**
 * The drain limit: bootCluster's kill timer for a draining worker and the worker's own exit
 * timer, one value (bootCluster passes it to each worker in this variable).
 */
export const GRACEFUL_TIMEOUT: Setting<number> = {
  option: 'gracefulTimeout',
  env: 'GRACEFUL_SHUTDOWN_TIMEOUT',
  kind: ms(1),
  default: 30_000,
  shown: '30000',
  doc: 'a drain that takes longer exits 1, logging what was still open; bootCluster passes its value to the workers (a plugin value that differs is refused) and kills stragglers 2 s after it'
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

/** `options` is an object (or undefined): what a nested option (`monitoring`, `metrics`, `primaryStore`) must be. */
export function checkObject (name: string, options: unknown, expected = 'an object'): void {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new FCK_INVALID_OPTION(name, String(options), expected)
}
