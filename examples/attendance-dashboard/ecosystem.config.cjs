// PM2 cluster mode for the attendance dashboard: `pm2 start ecosystem.config.cjs [--env staging]`.
// Under PM2 the kit forks nothing itself: PM2 runs one worker per instance, the plugin sends
// 'ready' once listening (wait_ready) and drains on SIGINT. Without REDIS_URL, sessions, rate
// limits and live updates are per worker (PM2 has no primary of ours to share them): set REDIS_URL.
const GRACEFUL_SHUTDOWN_TIMEOUT = 30_000

module.exports = {
  apps: [{
    name: 'attendance-dashboard',
    script: './dist/server.js',
    cwd: __dirname,
    exec_mode: 'cluster',
    instances: 'max',
    max_memory_restart: '1G',
    // Ready when the worker listens (the plugin sends 'ready'), not when it is forked.
    wait_ready: true,
    listen_timeout: 15_000,
    // PM2 sends SIGINT, waits kill_timeout, then SIGKILL: leave the drain its whole time.
    kill_timeout: GRACEFUL_SHUTDOWN_TIMEOUT + 5_000,
    out_file: './logs/out.log',
    error_file: './logs/error.log',
    merge_logs: true,
    time: true,
    env: {
      NODE_ENV: 'production',
      PORT: process.env.PORT ?? 3000,
      GRACEFUL_SHUTDOWN_TIMEOUT
    },
    env_production: {
      NODE_ENV: 'production',
      PORT: 3000
    },
    env_staging: {
      NODE_ENV: 'production',
      PORT: 3100,
      LOG_LEVEL: 'debug'
    }
  }]
}
