import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import clusterPlugin, { type ClusterPluginOptions } from '../../dist/index.js'

/**
 * An app with clusterPlugin listening on a real ephemeral port in this process, closed when the
 * test ends. `env` is applied while the plugin registers (it reads the environment then);
 * `before` runs before the plugin registers (e.g. to register a plugin it should find).
 */
export async function listenApp (
  t: Test, options: ClusterPluginOptions = {}, setup?: (app: FastifyInstance) => void, env: NodeJS.ProcessEnv = {},
  before?: (app: FastifyInstance) => Promise<void>
): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await before?.(app)
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]))
  Object.assign(process.env, env)
  try {
    await app.register(clusterPlugin, { handleSignals: false, ...options })
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) Reflect.deleteProperty(process.env, key)
      else process.env[key] = value
    }
  }
  app.get('/', async () => ({ hello: 'world' }))
  app.get('/boom', async () => { throw new Error('boom') })
  setup?.(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP')
  return { app, port: address.port }
}
