// GET /metrics in the Prometheus text exposition format (version 0.0.4). Only what the gateway
// really measures today is exported: iSCSI sessions and per-volume I/O counted at the block
// backend. Cache, dirty and upload-buffer figures arrive with the S3 storage engine — until then
// they are absent rather than fake zeros.

import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './admin-deps.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: Array<{ labels?: Record<string, string>; value: number }>;
}

export function renderMetrics(deps: AdminDeps): string {
  const sessions = deps.volumes.sessions();
  const volumes = deps.volumes.list();
  const perVolume = (
    name: string,
    type: Family['type'],
    help: string,
    value: (v: (typeof volumes)[number]) => number,
  ): Family => ({ name, type, help, samples: volumes.map((v) => ({ labels: { volume: v.name }, value: value(v) })) });
  const families: Family[] = [
    { name: 'shelfgate_iscsi_sessions', type: 'gauge', help: 'Logged-in iSCSI sessions (normal and discovery).', samples: [{ value: sessions.length }] },
    {
      name: 'shelfgate_iscsi_connections',
      type: 'gauge',
      help: 'TCP connections of logged-in iSCSI sessions.',
      samples: [{ value: sessions.reduce((sum, s) => sum + s.connections, 0) }],
    },
    { name: 'shelfgate_volumes', type: 'gauge', help: 'Volumes served.', samples: [{ value: volumes.length }] },
    {
      name: 'shelfgate_volume_size_bytes',
      type: 'gauge',
      help: 'Volume capacity.',
      samples: volumes.map((v) => ({ labels: { volume: v.name, type: v.type }, value: v.sizeBytes })),
    },
    {
      name: 'shelfgate_volume_sessions',
      type: 'gauge',
      help: 'iSCSI sessions logged in to the volume target.',
      samples: volumes.map((v) => ({ labels: { volume: v.name }, value: sessions.filter((s) => s.targetName === v.targetName).length })),
    },
    perVolume('shelfgate_volume_read_bytes_total', 'counter', 'Bytes read from the volume by initiators.', (v) => v.counters.readBytes),
    perVolume('shelfgate_volume_read_ops_total', 'counter', 'Read operations completed.', (v) => v.counters.readOps),
    perVolume('shelfgate_volume_write_bytes_total', 'counter', 'Bytes written durably to the volume.', (v) => v.counters.writeBytes),
    perVolume('shelfgate_volume_write_ops_total', 'counter', 'Write operations completed.', (v) => v.counters.writeOps),
    perVolume('shelfgate_volume_unmap_bytes_total', 'counter', 'Bytes deallocated (UNMAP, WRITE SAME with UNMAP).', (v) => v.counters.unmapBytes),
    perVolume('shelfgate_volume_unmap_ops_total', 'counter', 'Unmap operations completed.', (v) => v.counters.unmapOps),
    perVolume('shelfgate_volume_io_errors_total', 'counter', 'Backend operations that failed.', (v) => v.counters.errors),
  ];
  const limit = deps.settings.bandwidthRateLimit();
  const configured = [
    ...(limit.averageUploadRateLimitInBitsPerSec !== undefined ? [{ labels: { direction: 'upload' }, value: limit.averageUploadRateLimitInBitsPerSec }] : []),
    ...(limit.averageDownloadRateLimitInBitsPerSec !== undefined
      ? [{ labels: { direction: 'download' }, value: limit.averageDownloadRateLimitInBitsPerSec }]
      : []),
  ];
  if (configured.length > 0) {
    families.push({
      name: 'shelfgate_bandwidth_rate_limit_bits_per_second',
      type: 'gauge',
      help: 'Configured average bandwidth rate limit (not yet enforced: nothing is uploaded before the S3 engine).',
      samples: configured,
    });
  }
  return families.map(formatFamily).join('');
}

export function registerMetrics(app: FastifyInstance, deps: AdminDeps): void {
  app.get('/metrics', async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(renderMetrics(deps)));
}

function formatFamily(family: Family): string {
  let text = `# HELP ${family.name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${family.name} ${family.type}\n`;
  for (const sample of family.samples) {
    const labels = Object.entries(sample.labels ?? {});
    const labelText = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
    text += `${family.name}${labelText} ${sample.value}\n`;
  }
  return text;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
