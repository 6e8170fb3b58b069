import { EventLoopSchema, MemorySchema, RequestsSchema } from '../../common/sample.js'

// Response schemas of the monitoring server: they document the JSON shapes (README, "Monitoring
// API") and let Fastify serialize them fast. They describe the types in types.ts; the sample's
// parts are the ones lib/common/sample.ts declares.

const nullable = (schema: Record<string, unknown>): Record<string, unknown> => ({ anyOf: [schema, { type: 'null' }] })

const memory = MemorySchema

const warnings = { type: 'array', items: { type: 'string' } }

export const healthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded'] },
    healthy: { type: 'boolean' },
    alive: { type: 'integer' },
    expected: { type: 'integer' },
    warnings
  }
}

const frame = { type: 'object', properties: { function: { type: 'string' }, file: { type: 'string' }, line: { type: 'integer' }, column: { type: 'integer' } } }

export const incident = {
  type: 'object',
  properties: {
    at: { type: 'string' },
    id: { type: 'string' },
    pid: { type: 'integer' },
    kind: { type: 'string' },
    reason: { type: 'string' },
    frames: { type: 'array', items: frame },
    profile: { type: 'string' }
  }
}

const worker = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    pid: nullable({ type: 'integer' }),
    state: { type: 'string' },
    uptime: { type: 'number' },
    restarts: { type: 'integer' },
    recycles: { type: 'integer' },
    recyclingStopped: nullable({ type: 'string' }),
    incidents: nullable({ type: 'object', properties: { first: incident, last: incident } }),
    memory: nullable(memory),
    cpu: nullable({ type: 'number' }),
    eventLoop: nullable(EventLoopSchema),
    requests: nullable(RequestsSchema)
  }
}

const bakeSide = {
  type: 'object',
  properties: { requests: { type: 'integer' }, errorShare: { type: 'number' }, latencyP99: { type: 'number' }, loopP99: { type: 'number' } }
}

const canaryVerdict = {
  type: 'object',
  properties: { passed: { type: 'boolean' }, reason: { type: 'string' }, bakeMs: { type: 'integer' }, canary: bakeSide, old: bakeSide }
}

const rolloutProgress = {
  type: 'object',
  properties: {
    phase: { type: 'string', enum: ['surge', 'bake', 'judge', 'roll', 'abort'] },
    since: { type: 'string' },
    message: { type: 'string' },
    canaries: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, pid: { type: 'integer' } } } }
  }
}

export const statsSchema = {
  type: 'object',
  properties: {
    primary: { type: 'object', properties: { pid: { type: 'integer' }, uptime: { type: 'number' }, memory, guard: nullable({ type: 'integer' }) } },
    workers: { type: 'array', items: worker },
    alive: { type: 'integer' },
    expected: { type: 'integer' },
    healthy: { type: 'boolean' },
    warnings,
    lastReload: nullable({
      type: 'object',
      properties: { at: { type: 'string' }, ok: { type: 'boolean' }, durationMs: { type: 'integer' }, reason: { type: 'string' } }
    }),
    rollout: nullable(rolloutProgress),
    store: {
      type: 'object',
      properties: {
        sessions: { type: 'integer' },
        emptySessions: { type: 'integer' },
        clients: { type: 'integer' },
        sessionBytes: { type: 'integer' },
        counters: { type: 'integer' },
        evictions: { type: 'object', properties: { clientLimit: { type: 'integer' }, storeFull: { type: 'integer' } } }
      }
    }
  }
}

export const reloadAcceptedSchema = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['reloading'] }, workers: { type: 'integer' } }
}

export const reloadResultSchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    durationMs: { type: 'integer' },
    workers: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, pid: { type: 'integer' } } } },
    reason: { type: 'string' },
    canary: canaryVerdict
  }
}
