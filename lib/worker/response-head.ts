import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'

const kWriteHead = Symbol('fastify-cluster-kit.writeHead')

type TappedResponse = ServerResponse & { [kWriteHead]: ServerResponse['writeHead'] }

export interface ResponseTap {
  /** Runs for every request the server emits, before Fastify's own listener. */
  onRequest: (request: IncomingMessage, response: ServerResponse) => void
  /** Lower-case names and values added to every response head. */
  headers: ReadonlyArray<readonly [string, string]>
  /** Runs once a response head is written, with the status code that went out. */
  onHead: ((request: IncomingMessage, statusCode: number) => void) | undefined
}

/**
 * The plugin's per-request work, done on the HTTP server instead of in Fastify hooks: a hook
 * costs a hook runner per request, this a listener and one wrapped `writeHead` per response — the
 * technique of the `on-headers` package (what it saves: benchmarks/RESULTS.md, paired CPU).
 * Every response head goes through `writeHead` (Fastify's replies, its 404s, errors and 503s, a
 * hijacked reply's `res.end()`), so each carries the headers and is observed.
 * `fastify.inject()` bypasses the server: injected requests are neither tapped nor observed.
 * Returns the function that removes the tap.
 */
export function tapResponses (server: Server, { onRequest, headers, onHead }: ResponseTap): () => void {
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
    // The caller's own arguments, passed on unchanged.
    const response = this[kWriteHead].apply(this, arguments as unknown as Parameters<ServerResponse['writeHead']>)
    onHead?.(this.req, this.statusCode)
    return response
  }

  // Prepended: it must stamp a request before Fastify's listener runs a synchronous handler.
  const listener = (request: IncomingMessage, response: ServerResponse): void => {
    onRequest(request, response)
    if (wraps) {
      (response as TappedResponse)[kWriteHead] = response.writeHead
      response.writeHead = writeHead as ServerResponse['writeHead']
    }
  }
  server.prependListener('request', listener)
  return () => { server.removeListener('request', listener) }
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
