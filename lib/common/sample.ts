import { Type, type Static } from '@sinclair/typebox'

// What a worker measures and the primary reports, declared once: each schema is the TypeScript
// type (Static), the shape of the heartbeat over IPC, and the JSON schema the worker's /health
// and the primary's /cluster/stats serialize with.

export const MemorySchema = Type.Object({
  /** Resident set size, bytes. */
  rss: Type.Number(),
  heapUsed: Type.Number(),
  heapTotal: Type.Number()
})

/** Event-loop delay over the window in milliseconds, and utilization (0..1). */
export const EventLoopSchema = Type.Object({ p50: Type.Number(), p99: Type.Number(), max: Type.Number(), utilization: Type.Number() })

/** Requests since start, and those in flight at the end of the window. */
export const RequestsSchema = Type.Object({ total: Type.Integer(), inFlight: Type.Integer() })

/** What a worker measured over one heartbeat window. */
export const WorkerSampleSchema = Type.Object({
  ...MemorySchema.properties,
  /** CPU time over the window: microseconds, and percent of one core. */
  cpu: Type.Object({ user: Type.Number(), system: Type.Number(), percent: Type.Number() }),
  eventLoop: EventLoopSchema,
  requests: RequestsSchema
})

export type WorkerSample = Static<typeof WorkerSampleSchema>
