// `import 'fastify-cluster-kit/rate-limit'` in an app that uses clusterPlugin's `rateLimit` option:
// it brings @fastify/rate-limit's types (a route's `config.rateLimit`, `fastify.rateLimit()`) into
// the app. The main entry leaves them out, so an app without rate limits gets none of them.
export type { RateLimitOptions as RouteRateLimitOptions, RateLimitPluginOptions } from '@fastify/rate-limit'
