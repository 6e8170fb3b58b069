import http from 'node:http'

export interface Response {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One GET over a fresh connection (or over `agent`'s), with the whole body read. */
export async function get (port: number, path: string, agent: http.Agent | false = false): Promise<Response> {
  return await send(port, { path, agent })
}

/**
 * One request over a fresh connection (or over `agent`'s), with the whole body read; to `host`
 * (127.0.0.1 unless told), from `localAddress` if given.
 */
export async function send (
  port: number,
  { method = 'GET', path, headers = {}, body, agent = false, host = '127.0.0.1', localAddress }: {
    method?: string, path: string, headers?: http.OutgoingHttpHeaders, body?: string, agent?: http.Agent | false, host?: string, localAddress?: string
  }
): Promise<Response> {
  return await new Promise((resolve, reject) => {
    const request = http.request({ host, port, method, path, headers, agent, localAddress }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
      response.on('error', reject)
    })
    request.on('error', reject)
    request.end(body)
  })
}

export type Request = Parameters<typeof send>[1]

/**
 * Sends `request` over fresh connections (so round-robin moves on) until worker `id` answers it,
 * or, with `not`, until any other worker does; each attempt is a real request to the app.
 */
export async function onWorker (port: number, id: string, request: Request, not = false): Promise<Response> {
  for (let i = 0; i < 50; i++) {
    const response = await send(port, request)
    if ((response.headers['x-worker-id'] === id) !== not) return response
  }
  throw new Error(`no answer from ${not ? 'a worker other than' : 'worker'} ${id}`)
}

/** `name=value` of the first cookie a response sets, ready for a `cookie` request header. */
export function sessionCookie (response: Response): string {
  return String(response.headers['set-cookie']?.[0]).split(';')[0] as string
}

export interface LoadResult {
  sent: number
  ok: number
  non2xx: number
  errors: Record<string, number>
  /** Connections the server asked to close (`Connection: close`). */
  closedByServer: number
}

/**
 * Steady keep-alive load: `connections` clients, each on its own keep-alive socket, each sending
 * its next request as soon as the previous response ends, the way a busy upstream does. A client
 * whose response says `Connection: close` stops (the server asked it to go elsewhere), so every
 * request counted here was sent on a connection the server had accepted.
 */
export function keepAliveLoad (port: number, connections: number, path = '/'): { stop: () => Promise<LoadResult> } {
  const result: LoadResult = { sent: 0, ok: 0, non2xx: 0, errors: {}, closedByServer: 0 }
  const state = { running: true }
  const clients = Array.from({ length: connections }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      while (state.running) {
        result.sent++
        try {
          const response = await get(port, path, agent)
          if (response.status >= 200 && response.status < 300) result.ok++
          else result.non2xx++
          if (response.headers.connection === 'close') {
            result.closedByServer++
            return
          }
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
          result.errors[code] = (result.errors[code] ?? 0) + 1
          return
        }
      }
    } finally {
      agent.destroy()
    }
  })
  return {
    stop: async () => {
      state.running = false
      await Promise.all(clients)
      return result
    }
  }
}

/**
 * `concurrency` clients each sending GET / over a new connection (`Connection: close`) until
 * `stop()`, which resolves with the responses counted by status and the failures by error code.
 */
export function closeLoad (port: number, concurrency = 50): { stop: () => Promise<{ ok: number, non2xx: number, errors: Record<string, number> }> } {
  const state = { running: true }
  const counts = { ok: 0, non2xx: 0, errors: {} as Record<string, number> }
  const client = async (): Promise<void> => {
    while (state.running) {
      await new Promise<void>((resolve) => {
        http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } }, (response) => {
          response.resume()
          response.on('end', () => {
            if (response.statusCode === 200) counts.ok++
            else counts.non2xx++
            resolve()
          })
        }).on('error', (error: NodeJS.ErrnoException) => {
          counts.errors[error.code ?? error.message] = (counts.errors[error.code ?? error.message] ?? 0) + 1
          resolve()
        })
      })
    }
  }
  const clients = Array.from({ length: concurrency }, client)
  return {
    async stop () {
      state.running = false
      await Promise.all(clients)
      return counts
    }
  }
}
