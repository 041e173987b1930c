// The HTTP settings every AWS SDK client of shelfgate uses (S3, S3 archive, Glacier): bounded
// connect, request and idle deadlines so a stopped endpoint fails an attempt (our retry.ts decides
// what happens next) instead of hanging, and keep-alive agents with a socket limit.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/** The deadlines and socket limit a store's config may set. */
export interface SdkHttpLimits {
  /** TCP (and TLS) connect deadline per attempt. */
  connectionTimeoutMs?: number;
  /** Whole request + response deadline per attempt. */
  requestTimeoutMs?: number;
  /** A socket idle this long fails the attempt (a hung server). */
  socketIdleTimeoutMs?: number;
  maxSockets?: number;
  /** PEM CA certificates trusted for an endpoint with a private certificate (replaces the system
   *  store for that client). */
  caBundle?: string;
}

/** The SDK client's `requestHandler` options; `defaults` fill what `limits` leave unset. */
export function sdkRequestHandler(limits: SdkHttpLimits, defaults: { requestTimeoutMs: number; socketIdleTimeoutMs: number }) {
  const maxSockets = limits.maxSockets ?? 16;
  return {
    connectionTimeout: limits.connectionTimeoutMs ?? 5_000,
    requestTimeout: limits.requestTimeoutMs ?? defaults.requestTimeoutMs,
    throwOnRequestTimeout: true,
    socketTimeout: limits.socketIdleTimeoutMs ?? defaults.socketIdleTimeoutMs,
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets, ...(limits.caBundle !== undefined ? { ca: limits.caBundle } : {}) }),
  };
}
