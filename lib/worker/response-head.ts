import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'

/** `performance.now()` when the response's request arrived, for the request histogram. */
export const kArrivedAt = Symbol('fastify-cluster-kit.arrivedAt')
/** What the route's handler stamped on the response (its metrics series); null before. */
export const kRoute = Symbol('fastify-cluster-kit.route')

/** A response the tap follows: set on each response as it arrives, so it keeps one shape after. */
export type TappedResponse = ServerResponse & { [kArrivedAt]: number, [kRoute]: unknown }

export interface Tap {
  untap: () => void
  /** Whether the tap follows this response (not so an injected one). */
  sees: (response: ServerResponse) => boolean
}

export interface ResponseTap {
  /** Runs for every request the server emits, before Fastify's own listener. */
  onRequest: (request: IncomingMessage, response: ServerResponse) => void
  /** Lower-case names and values added to every response head. */
  headers: ReadonlyArray<readonly [string, string]>
  /** Runs once a response head is written, with the status code that went out. */
  onHead: ((response: TappedResponse, statusCode: number) => void) | undefined
}

/**
 * The plugin's per-request work, done on the HTTP server instead of in Fastify hooks: a hook
 * costs a hook runner per request, this a listener and one wrapped `writeHead` per response — the
 * technique of the `on-headers` package (what it saves: benchmarks/RESULTS.md, paired CPU).
 * Every response head goes through `writeHead` (Fastify's replies, its 404s, errors and 503s, a
 * hijacked reply's `res.end()`), so each carries the headers and is observed.
 *
 * Everything the tap keeps per request lives on the response, set at once as it arrives: the
 * request object keeps the shape Node gave it, and the response one shape from then on, with the
 * few fields one small backing store holds (benchmarks/RESULTS.md, "Issue 29").
 * `fastify.inject()` bypasses the server: injected requests are neither tapped nor observed.
 */
export function tapResponses (server: Server, { onRequest, headers, onHead }: ResponseTap): Tap {
  const wraps = headers.length > 0 || onHead !== undefined

  function writeHead (this: TappedResponse, statusCode: number, reasonOrHeaders?: unknown, maybeHeaders?: unknown): ServerResponse {
    const given = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders
    if (typeof given === 'object' && given !== null && !Array.isArray(given) && Object.isExtensible(given)) {
      // Fastify's reply headers: adding to the object keeps Node on its fast path, where a header set
      // on the response beforehand sends every header through setHeader(), a slower path.
      for (let i = 0; i < headers.length; i++) (given as OutgoingHttpHeaders)[headers[i]![0]] = headers[i]![1]
    } else if (!this.headersSent) {
      for (let i = 0; i < headers.length; i++) this.setHeader(headers[i]![0], headers[i]![1])
    }
    // The class's own writeHead (the tap's listener runs first, so nothing replaced it before),
    // with the caller's own arguments.
    const response = Object.getPrototypeOf(this).writeHead.apply(this, arguments) as ServerResponse
    onHead?.(this, this.statusCode)
    return response
  }

  const tap = (request: IncomingMessage, response: TappedResponse): void => {
    onRequest(request, response)
    if (onHead !== undefined) {
      response[kArrivedAt] = performance.now()
      response[kRoute] = null
    }
    if (wraps) response.writeHead = writeHead as TappedResponse['writeHead']
  }
  // Before Fastify's listener, which may run a synchronous handler. When Fastify's is the server's
  // one 'request' listener, the tap takes its place and calls it: an emitter with one listener
  // calls it directly, with two it copies its listener array on every request.
  const [only, ...others] = server.listeners('request') as Array<(request: IncomingMessage, response: ServerResponse) => void>
  const listener = only !== undefined && others.length === 0
    ? function (this: Server, request: IncomingMessage, response: TappedResponse) { tap(request, response); only.call(this, request, response) }
    : tap
  if (listener === tap) server.prependListener('request', tap)
  else server.removeListener('request', only as never).on('request', listener)
  return {
    untap: () => {
      server.removeListener('request', listener)
      if (listener !== tap) server.on('request', only as never)
    },
    sees: (response) => response.writeHead === writeHead
  }
}

type Injected = { headers: Record<string, unknown> }

/**
 * `fastify.inject()` — how most Fastify apps are tested — never reaches the HTTP server, so the
 * server-level tap (response-head.ts) does not see it: its responses get the worker headers here,
 * by wrapping `inject` itself, which costs real traffic nothing.
 */
export function decorateInjected (fastify: FastifyInstance, headers: ReadonlyArray<readonly [string, string]>): void {
  if (headers.length === 0) return
  const inject = fastify.inject.bind(fastify) as (...args: unknown[]) => any
  const tag = <T>(response: T): T => {
    if (response !== undefined && response !== null) for (const [name, value] of headers) (response as unknown as Injected).headers[name] ??= value
    return response
  }
  const tagged = (callback: (error: unknown, response?: unknown) => void) => (error: unknown, response?: unknown) => callback(error, tag(response))
  fastify.inject = function (options?: unknown, callback?: (error: unknown, response?: unknown) => void) {
    if (options === undefined) {
      // The chained form: fastify.inject().get('/').end()
      const chain = inject()
      const end = chain.end.bind(chain)
      chain.end = (done?: (error: unknown, response?: unknown) => void) => done === undefined ? end().then(tag) : end(tagged(done))
      return chain
    }
    return callback === undefined ? inject(options).then(tag) : inject(options, tagged(callback))
  } as FastifyInstance['inject']
}
