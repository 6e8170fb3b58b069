// What a worker measures and the primary reports, declared once: each schema below is the JSON
// schema the worker's /health and the primary's /cluster/stats serialize with, and its TypeScript
// type (FromSchema) is the shape of the heartbeat over IPC. Plain JSON Schema with a type-level
// mapper rather than a schema library: the primary and every worker load this module, and the
// library it would need cost each of them more memory and start-up time than all the rest of it
// (benchmarks/RESULTS.md, supervisor, 2026-12-02).

/** The TypeScript type of the (number and object only) JSON schemas declared here. */
export type FromSchema<S> = S extends { type: 'object', properties: infer P }
  ? { -readonly [K in keyof P]: FromSchema<P[K]> }
  : S extends { type: 'number' | 'integer' } ? number : never

const number = { type: 'number' } as const
const integer = { type: 'integer' } as const

/** Resident set size and V8 heap, bytes. */
export const MemorySchema = { type: 'object', properties: { rss: number, heapUsed: number, heapTotal: number } } as const

/** Event-loop delay over the window in milliseconds, and utilization (0..1). */
export const EventLoopSchema = { type: 'object', properties: { p50: number, p99: number, max: number, utilization: number } } as const

/**
 * Requests since start, those in flight at the end of the window, the window's p99 latency in ms
 * and the 5xx responses since start, both from the request histogram (0 with metrics off).
 */
export const RequestsSchema = { type: 'object', properties: { total: integer, inFlight: integer, latencyP99: number, errors: integer } } as const

/** What a worker measured over one heartbeat window; `cpu`: microseconds and percent of one core. */
export const WorkerSampleSchema = {
  type: 'object',
  properties: {
    ...MemorySchema.properties,
    cpu: { type: 'object', properties: { user: number, system: number, percent: number } },
    eventLoop: EventLoopSchema,
    requests: RequestsSchema
  }
} as const

export type WorkerSample = FromSchema<typeof WorkerSampleSchema>
