import type { FastifyInstance } from 'fastify'
import { FCK_CHECK_FAILED, FCK_CHECK_TIMEOUT, FCK_DUPLICATE_CHECK, FCK_INVALID_OPTION } from '../common/errors.js'
import type { Identity } from '../common/identity.js'
import { EventLoopSchema, MemorySchema, RequestsSchema } from '../common/sample.js'
import type { RequestCounters, Sampler } from './sampler.js'
import type { SharedStateBackend } from '../shared-state/options.js'

/** A readiness check: throwing, rejecting or resolving to `false` means not ready. */
export type ReadinessCheck = () => unknown

export interface CheckResult {
  status: 'ok' | 'fail'
  durationMs: number
  error?: string
}

export type HealthStatus = 'ok' | 'draining' | 'fail'

interface Registered {
  fn: ReadinessCheck
  timeout: number
}

/** The readiness checks of one worker; each runs against its own timeout so a probe never hangs. */
export class Checks {
  #checks = new Map<string, Registered>()

  constructor (private readonly defaultTimeout: number) {}

  add (name: string, fn: ReadinessCheck, options: { timeout?: number } = {}): void {
    if (typeof name !== 'string' || name === '') throw new FCK_INVALID_OPTION('addCheck name', String(name), 'a non-empty string')
    if (typeof fn !== 'function') throw new FCK_INVALID_OPTION(`addCheck ${name} fn`, String(fn), 'a function')
    const timeout = options.timeout ?? this.defaultTimeout
    if (!Number.isSafeInteger(timeout) || timeout < 1) {
      throw new FCK_INVALID_OPTION(`addCheck ${name} timeout`, String(timeout), 'a whole number of milliseconds >= 1')
    }
    if (this.#checks.has(name)) throw new FCK_DUPLICATE_CHECK(name)
    this.#checks.set(name, { fn, timeout })
  }

  async run (): Promise<Record<string, CheckResult>> {
    const entries = [...this.#checks].map(async ([name, check]) => [name, await runOne(name, check)] as const)
    return Object.fromEntries(await Promise.all(entries))
  }
}

async function runOne (name: string, { fn, timeout }: Registered): Promise<CheckResult> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new FCK_CHECK_TIMEOUT(name, timeout)), timeout)
  })
  try {
    const outcome = await Promise.race([Promise.resolve().then(fn), timedOut])
    if (outcome === false) throw new FCK_CHECK_FAILED(name)
    return { status: 'ok', durationMs: elapsed(started) }
  } catch (error) {
    return { status: 'fail', durationMs: elapsed(started), error: error instanceof Error ? error.message : String(error) }
  } finally {
    clearTimeout(timer)
  }
}

function elapsed (started: number): number {
  return Math.round((performance.now() - started) * 100) / 100
}

export interface HealthDeps {
  prefix: string
  identity: Identity
  checks: Checks
  sampler: Sampler
  counters: RequestCounters
  sharedState: SharedStateBackend
  isDraining: () => boolean
}

const checkSchema = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    properties: { status: { type: 'string' }, durationMs: { type: 'number' }, error: { type: 'string' } }
  }
}
const statusSchema = { type: 'object', properties: { status: { type: 'string' }, checks: checkSchema } }
const reportSchema = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    workerId: { type: 'string' },
    pid: { type: 'integer' },
    manager: { type: 'string' },
    sharedState: { type: 'string' },
    uptime: { type: 'number' },
    memory: { type: 'object', properties: { ...MemorySchema.properties, external: { type: 'number' } } },
    cpu: { type: 'object', properties: { percent: { type: 'number' } } },
    eventLoop: EventLoopSchema,
    requests: RequestsSchema,
    checks: checkSchema
  }
}

/**
 * `GET prefix/live` (the event loop answers), `GET prefix/ready` (listening, not draining, every
 * check passes) and `GET prefix` (a JSON report). Returns their paths.
 */
export function registerHealthRoutes (fastify: FastifyInstance, deps: HealthDeps): string[] {
  const { prefix, identity, checks, sampler, counters, sharedState, isDraining } = deps
  // Probes are not app traffic: kept out of the logs' info level and out of the request metrics.
  const routeOptions = { logLevel: 'warn' as const, config: { metrics: false as const, rateLimit: false as const } }

  async function evaluate (): Promise<{ status: HealthStatus, checks: Record<string, CheckResult> }> {
    if (isDraining()) return { status: 'draining', checks: {} }
    const results = await checks.run()
    if (Object.values(results).some((result) => result.status === 'fail')) return { status: 'fail', checks: results }
    // No 'starting': before the server listens only fastify.inject() can ask, and it should see
    // what a real request will (inject waits for every plugin to load, as listen does).
    return { status: 'ok', checks: results }
  }

  fastify.get(`${prefix}/live`, { ...routeOptions, schema: { response: { 200: statusSchema } } }, async () => ({ status: 'ok' }))

  fastify.get(`${prefix}/ready`, { ...routeOptions, schema: { response: { '2xx': statusSchema, 503: statusSchema } } },
    async (_request, reply) => {
      const verdict = await evaluate()
      return reply.code(verdict.status === 'ok' ? 200 : 503).send(verdict)
    })

  fastify.get(prefix, { ...routeOptions, schema: { response: { '2xx': reportSchema, 503: reportSchema } } },
    async (_request, reply) => {
      const verdict = await evaluate()
      const sample = sampler.latest()
      const memory = process.memoryUsage()
      return reply.code(verdict.status === 'ok' ? 200 : 503).send({
        status: verdict.status,
        workerId: identity.workerId,
        pid: process.pid,
        manager: identity.manager,
        sharedState,
        uptime: Math.round(process.uptime() * 1000) / 1000,
        memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external },
        cpu: { percent: sample.cpu.percent },
        eventLoop: sample.eventLoop,
        requests: { total: counters.total, inFlight: counters.inFlight, latencyP99: sample.requests.latencyP99, errors: sample.requests.errors },
        checks: verdict.checks
      })
    })
  return [`${prefix}/live`, `${prefix}/ready`, prefix]
}
