import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Redis } from 'ioredis'

export type Action = 'in' | 'out'

export interface Entry {
  person: string
  action: Action
  at: string
}

/** Where attendance lives: SQLite on one machine, Redis when several machines (pods) share it. */
export interface Records {
  record: (person: string, action: Action) => Promise<Entry>
  /** Everyone seen today (UTC), with whether they are in now. */
  today: () => Promise<Presence[]>
  close: () => Promise<void>
}

function midnight (now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())).toISOString()
}

export interface Presence {
  person: string
  status: Action
  /** ISO time of the person's last check-in or check-out today. */
  at: string
  /** ISO time of the first check-in today. */
  firstIn: string | null
}

/**
 * Attendance records in SQLite. Every worker opens the same file; WAL lets them read while one
 * writes, and busy_timeout makes a writer wait its turn instead of failing.
 */
export class SqliteRecords implements Records {
  readonly #db: Database.Database
  readonly #insert: Database.Statement<[string, Action, string]>
  readonly #today: Database.Statement<[{ midnight: string }], Presence>

  constructor (dataDir: string) {
    mkdirSync(dataDir, { recursive: true })
    this.#db = new Database(join(dataDir, 'attendance.db'))
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('busy_timeout = 5000')
    this.#db.exec(`create table if not exists attendance (
      id integer primary key autoincrement,
      person text not null,
      action text not null check (action in ('in', 'out')),
      at text not null
    );
    create index if not exists attendance_at on attendance (at)`)
    this.#insert = this.#db.prepare('insert into attendance (person, action, at) values (?, ?, ?)')
    this.#today = this.#db.prepare(`
      select person,
        (select action from attendance b where b.person = a.person and b.at >= @midnight order by b.at desc, b.id desc limit 1) as status,
        max(at) as at,
        min(case when action = 'in' then at end) as firstIn
      from attendance a where at >= @midnight group by person order by person`)
  }

  async record (person: string, action: Action): Promise<Entry> {
    const at = new Date().toISOString()
    this.#insert.run(person, action, at)
    return { person, action, at }
  }

  async today (): Promise<Presence[]> {
    return this.#today.all({ midnight: midnight() })
  }

  async close (): Promise<void> {
    this.#db.close()
  }
}

/** One Redis list of the day's entries (kept two days); the presence is folded from it. */
export class RedisRecords implements Records {
  constructor (private readonly redis: Redis) {}

  async record (person: string, action: Action): Promise<Entry> {
    const entry = { person, action, at: new Date().toISOString() }
    const key = `attendance:${midnight().slice(0, 10)}`
    await this.redis.multi().rpush(key, JSON.stringify(entry)).expire(key, 2 * 86_400).exec()
    return entry
  }

  async today (): Promise<Presence[]> {
    const entries = (await this.redis.lrange(`attendance:${midnight().slice(0, 10)}`, 0, -1)).map((text) => JSON.parse(text) as Entry)
    const people = new Map<string, Presence>()
    for (const { person, action, at } of entries) {
      const seen = people.get(person)
      people.set(person, { person, status: action, at, firstIn: seen?.firstIn ?? (action === 'in' ? at : null) })
    }
    return [...people.values()].sort((a, b) => a.person.localeCompare(b.person))
  }

  async close (): Promise<void> {}
}
