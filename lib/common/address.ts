import type { AddressInfo } from 'node:net'
import { FCK_PORT_IN_USE } from './errors.js'

/** `host:port`, with an IPv6 host in brackets (as in a URL). */
export function formatAddress (host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

/** What a server's `address()` gave, as `host:port` (a pipe's path as it is). */
export function describeAddress (address: AddressInfo | string | null): string {
  return address === null || typeof address === 'string' ? String(address) : formatAddress(address.address, address.port)
}

/** Listens; an address in use becomes FCK_PORT_IN_USE naming it and where its port came from. */
export async function listenOrExplain (listen: () => Promise<unknown>, host: string, port: number, source: string): Promise<void> {
  try {
    await listen()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new FCK_PORT_IN_USE(formatAddress(host, port), source)
    throw error
  }
}
