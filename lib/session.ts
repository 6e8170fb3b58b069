// `import 'fastify-cluster-kit/session'` in an app that uses clusterPlugin's `session` option:
// it brings @fastify/session's and @fastify/cookie's types (`request.session`, `reply.setCookie`,
// the `Session` interface to extend) into the app. The main entry leaves them out, so an app
// without sessions gets no `request.session` that would be undefined at run time.
export type { FastifySessionOptions, SessionStore } from '@fastify/session'
export type { CookieSerializeOptions } from '@fastify/cookie'
