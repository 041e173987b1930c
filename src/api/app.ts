// The admin API as a fastify app that never listens (main.ts does): tests use app.inject().
// For now only GET /health; the full admin API is a later issue.

import Fastify, { type FastifyInstance } from 'fastify';
import type { VolumeInfo } from '../gateway/volume-registry.js';

export interface SessionInfo {
  initiatorName: string;
  targetName: string;
  isid: string;
  tsih: number;
  connections: number;
}

export interface AppDeps {
  volumes(): VolumeInfo[];
  sessions(): SessionInfo[];
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/health', async () => ({
    status: 'ok' as const,
    volumes: deps.volumes(),
    sessions: deps.sessions(),
  }));
  return app;
}
