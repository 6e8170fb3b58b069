import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { BOOT_SETTINGS, MONITORING_SETTINGS } from '../dist/primary/settings.js'
import { PLUGIN_SETTINGS } from '../dist/worker/options.js'
import Fastify from 'fastify'
import { checkTimings, HAPROXY_CONFIG, SHUTDOWN_DELAY } from './helpers/haproxy.js'

const BOOT = { port: BOOT_SETTINGS.port.default, gracefulTimeout: BOOT_SETTINGS.gracefulTimeout.default, monitoring: { port: MONITORING_SETTINGS.port.default } }
const PLUGIN = { healthPrefix: PLUGIN_SETTINGS.healthPrefix.default }
const ENDPOINT_PROPAGATION = 3000

// No Docker engine or Kubernetes here: the deployment files are parsed and checked against the
// code's own defaults (ports, probe paths, timeouts), so they cannot drift apart silently.
const root = (path: string): string => fileURLToPath(new URL(`../${path}`, import.meta.url))
const example = (path: string): string => root(`examples/attendance-dashboard/${path}`)

function manifests (file: string): any[] {
  return parseAllDocuments(readFileSync(root(file), 'utf8')).map((document) => {
    t.same(document.errors, [], `${file} parses`)
    return document.toJS()
  })
}

const env = (container: any): Record<string, any> => Object.fromEntries(container.env.map((variable: any) => [variable.name, variable.value ?? variable.valueFrom]))

t.test('Kubernetes: probes, ports, grace period and workers agree with the code', async (t) => {
  const [deployment, service] = manifests('deploy/k8s/attendance-dashboard.yaml')
  const [redisDeployment, redisService] = manifests('deploy/k8s/redis.yaml')
  t.equal(deployment.kind, 'Deployment')
  const pod = deployment.spec.template
  const container = pod.spec.containers[0]
  const vars = env(container)
  const ports = Object.fromEntries(container.ports.map((port: any) => [port.name, port.containerPort]))
  t.same(ports, { http: BOOT.port, monitoring: BOOT.monitoring.port }, 'container ports are the app\'s and the monitoring server\'s defaults')
  t.equal(Number(vars.PORT), BOOT.port)
  t.equal(container.livenessProbe.httpGet.path, `${PLUGIN.healthPrefix}/live`)
  t.equal(container.readinessProbe.httpGet.path, `${PLUGIN.healthPrefix}/ready`)
  t.equal(container.livenessProbe.httpGet.port, 'http')
  t.equal(container.readinessProbe.httpGet.port, 'http')
  const drainMs = Number(vars.GRACEFUL_SHUTDOWN_TIMEOUT) + Number(vars.GRACEFUL_SHUTDOWN_DELAY)
  t.equal(Number(vars.GRACEFUL_SHUTDOWN_TIMEOUT), BOOT.gracefulTimeout)
  t.ok(pod.spec.terminationGracePeriodSeconds * 1000 > drainMs, `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} s > gracefulTimeout + shutdownDelay (${drainMs} ms)`)
  // Traffic must stop before the listener closes: the probe sees the 503, then the endpoint change
  // travels to kube-proxy and ingresses (ENDPOINT_PROPAGATION, an allowance, not a measurement).
  const readiness = container.readinessProbe
  const noticedMs = readiness.periodSeconds * readiness.failureThreshold * 1000 + ENDPOINT_PROPAGATION
  t.ok(Number(vars.GRACEFUL_SHUTDOWN_DELAY) >= noticedMs, `GRACEFUL_SHUTDOWN_DELAY ${vars.GRACEFUL_SHUTDOWN_DELAY} ms >= readiness period x failureThreshold + ${ENDPOINT_PROPAGATION} ms propagation (${noticedMs} ms)`)
  t.equal(container.lifecycle?.preStop, undefined, 'no preStop sleep: the kit waits shutdownDelay itself, and a preStop would add to it')
  t.equal(vars.CLUSTER_WORKERS, String(container.resources.requests.cpu), 'CLUSTER_WORKERS matches the CPU request')
  t.same(pod.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(BOOT.monitoring.port), 'prometheus.io/path': '/metrics' })
  t.equal(vars.CLUSTER_MONITORING_HOST, '0.0.0.0')
  t.same(vars.CLUSTER_MONITORING_TOKEN, { secretKeyRef: { name: 'attendance-dashboard', key: 'monitoring-token' } }, 'a non-loopback monitoring host comes with a token')
  t.equal(service.kind, 'Service')
  t.equal(service.spec.ports[0].targetPort, 'http')
  t.same(service.spec.selector, pod.metadata.labels)
  const redisUrl = new URL(vars.REDIS_URL)
  t.equal(redisUrl.hostname, redisService.metadata.name, 'REDIS_URL names the Redis service')
  t.equal(Number(redisUrl.port), redisService.spec.ports[0].port)
  t.same(redisService.spec.selector, redisDeployment.spec.template.metadata.labels)
})

t.test('Docker: multi-stage, npm ci --omit=dev, not root, HEALTHCHECK on /health/live, STOPSIGNAL SIGTERM', async (t) => {
  const dockerfile = readFileSync(example('Dockerfile'), 'utf8')
  t.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage')
  t.match(dockerfile, /^RUN npm ci --omit=dev/m)
  t.match(dockerfile, /^USER node$/m)
  t.match(dockerfile, /^STOPSIGNAL SIGTERM$/m)
  t.match(dockerfile, new RegExp(`^HEALTHCHECK [^\\n]*\\n[^\\n]*${PLUGIN.healthPrefix}/live`, 'm'))
  t.match(dockerfile, new RegExp(`^EXPOSE ${BOOT.port} ${BOOT.monitoring.port}$`, 'm'))
  const cmd = /^CMD \["node", "([^"]+)"\]$/m.exec(dockerfile)?.[1]
  t.ok(cmd !== undefined && existsSync(root(cmd)), `CMD runs a built file (${cmd})`)
  const ignored = readFileSync(root('.dockerignore'), 'utf8').split('\n')
  for (const entry of ['.git', 'node_modules', 'dist']) t.ok(ignored.includes(entry), `.dockerignore leaves out ${entry}`)
})

t.test('PM2 ecosystem file: cluster mode, one per core, wait_ready, kill_timeout above the drain', async (t) => {
  const { apps: [app] } = createRequire(import.meta.url)(example('ecosystem.config.cjs'))
  t.match(app, { exec_mode: 'cluster', instances: 'max', max_memory_restart: '1G', wait_ready: true })
  t.ok(app.listen_timeout > 0)
  t.ok(app.kill_timeout > BOOT.gracefulTimeout, `kill_timeout ${app.kill_timeout} > gracefulTimeout ${BOOT.gracefulTimeout}`)
  t.equal(app.env.GRACEFUL_SHUTDOWN_TIMEOUT, BOOT.gracefulTimeout)
  t.ok(existsSync(example(app.script)), 'the script it starts is built')
  t.type(app.out_file, 'string')
  t.type(app.error_file, 'string')
  t.ok(app.env_production !== undefined && app.env_staging !== undefined, 'production and staging env blocks')
})

t.test('HAProxy: a draining host is out of rotation before its listener closes; the balancer drops idle connections before the host does', async (t) => {
  const { markedDownWithin, idleReuse } = checkTimings(readFileSync(HAPROXY_CONFIG, 'utf8'))
  t.ok(markedDownWithin < SHUTDOWN_DELAY, `marked down within ${markedDownWithin} ms < shutdownDelay ${SHUTDOWN_DELAY} ms (the value test/multi-host.test.ts runs it with)`)
  const keepAliveTimeout = Fastify().initialConfig.keepAliveTimeout as number
  t.ok(idleReuse < keepAliveTimeout, `HAProxy reuses an idle connection for ${idleReuse} ms < Fastify's keepAliveTimeout ${keepAliveTimeout} ms`)
  t.match(readFileSync(HAPROXY_CONFIG, 'utf8'), /^\s*option httpchk GET \/health\/ready$/m, 'checks readiness')
})
