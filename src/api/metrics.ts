// GET /metrics in the Prometheus text exposition format (version 0.0.4). Only what the gateway
// really measures is exported: iSCSI sessions, per-volume I/O counted at the block backend, tapes
// by status and per-drive throughput (counted at the drives' media), and — when the storage engine
// runs — cache, upload-buffer and upload figures. What is not measured is absent, never a fake zero.

import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { CloudOutage } from '../cloud/cloud-outage.js';
import { TapeStatus } from '../gateway/tape-status.js';
import { DRIVE_COUNT } from '../gateway/vtl-targets.js';
import type { AdminDeps } from './admin-deps.js';
import { EventLoopLagMonitor, LAG_BUCKETS_SECONDS } from './event-loop-lag.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  /** `suffix` (histograms: _bucket, _sum, _count) follows the family name. */
  samples: Array<{ suffix?: string; labels?: Record<string, string>; value: number }>;
}

export async function renderMetrics(deps: AdminDeps, lag?: EventLoopLagMonitor): Promise<string> {
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
  if (deps.tapes !== undefined) families.push(...(await tapeFamilies(deps.tapes)));
  if (deps.storage !== undefined) families.push(...storageFamilies(deps.storage));
  families.push(...cloudOutageFamilies([deps.storage?.uploader?.outage, deps.tapes?.archiver.outage]));
  if (deps.storeHealth !== undefined) {
    const health = deps.storeHealth;
    const kinds = ['disk-full', 'io-error'] as const;
    families.push(
      {
        name: 'shelfgate_store_episodes_total',
        type: 'counter',
        help: 'Episodes in which a store could not write (disk full, I/O error): refused commands, nothing acknowledged lost.',
        samples: kinds.map((kind) => ({ labels: { kind }, value: health.episodes[kind] })),
      },
      {
        name: 'shelfgate_store_refused_commands_total',
        type: 'counter',
        help: 'Commands refused with CHECK CONDITION because the store could not write them.',
        samples: kinds.map((kind) => ({ labels: { kind }, value: health.refusedCommands[kind] })),
      },
      { name: 'shelfgate_store_degraded', type: 'gauge', help: '1 while a store condition holds (see /health).', samples: [{ value: health.isDegraded() ? 1 : 0 }] },
    );
  }
  families.push(...iscsiFamilies(deps, lag));
  return families.map(formatFamily).join('');
}

async function tapeFamilies(tapes: NonNullable<AdminDeps['tapes']>): Promise<Family[]> {
  const byStatus = new Map<string, number>(Object.values(TapeStatus).map((status) => [status, 0]));
  for (const [status, count] of tapes.service.countByStatus()) byStatus.set(status, count);
  const drives = tapes.driveCounters.slice(0, DRIVE_COUNT).map((counters, i) => ({ drive: String(i + 1).padStart(2, '0'), counters }));
  const perDrive = (name: string, help: string, value: (c: (typeof drives)[number]['counters']) => number): Family => ({
    name,
    type: 'counter',
    help,
    samples: drives.map((d) => ({ labels: { drive: d.drive }, value: value(d.counters) })),
  });
  return [
    {
      name: 'shelfgate_tapes',
      type: 'gauge',
      help: 'Tapes by status (DELETED: barcodes deleted, which are never reused).',
      samples: [...byStatus].map(([status, count]) => ({ labels: { status }, value: count })),
    },
    {
      name: 'shelfgate_tape_drive_loaded',
      type: 'gauge',
      help: 'Whether a cartridge is loaded in the tape drive (1) or not (0).',
      samples: drives.map((d) => ({ labels: { drive: d.drive }, value: d.counters.loaded() !== undefined ? 1 : 0 })),
    },
    perDrive('shelfgate_tape_drive_read_bytes_total', 'Record bytes read through the tape drive.', (c) => c.readBytes),
    perDrive('shelfgate_tape_drive_read_records_total', 'Records read through the tape drive.', (c) => c.readRecords),
    perDrive('shelfgate_tape_drive_write_bytes_total', 'Record bytes written durably through the tape drive.', (c) => c.writeBytes),
    perDrive('shelfgate_tape_drive_write_records_total', 'Records written through the tape drive.', (c) => c.writeRecords),
  ];
}

function storageFamilies(storage: NonNullable<AdminDeps['storage']>): Family[] {
  const c = storage.counters();
  const gauge = (name: string, help: string, value: number): Family => ({ name, type: 'gauge', help, samples: [{ value }] });
  const counter = (name: string, help: string, value: number): Family => ({ name, type: 'counter', help, samples: [{ value }] });
  return [
    gauge('shelfgate_cache_size_bytes', 'Configured cache size.', c.cacheSizeBytes),
    gauge('shelfgate_cache_used_bytes', 'Cache bytes in use.', c.cacheUsedBytes),
    gauge('shelfgate_cache_hit_ratio', 'Reads of cached volumes served without an object store fetch, 0 to 1.', c.cacheHitPercent / 100),
    gauge('shelfgate_upload_buffer_size_bytes', 'Configured upload buffer size.', c.uploadBufferSizeBytes),
    gauge('shelfgate_upload_buffer_used_bytes', 'Upload buffer bytes holding data not yet uploaded (dirty).', c.uploadBufferUsedBytes),
    gauge('shelfgate_upload_backlog_chunks', 'Dirty chunks waiting for upload.', c.uploadBacklogChunks),
    counter('shelfgate_upload_bytes_total', 'Chunk bytes uploaded to the object store.', c.uploader.uploadedBytes),
    counter('shelfgate_upload_chunks_total', 'Chunk objects uploaded to the object store.', c.uploader.uploadedChunks),
    counter('shelfgate_upload_failed_attempts_total', 'Upload attempts that failed (retried).', c.uploader.failedAttempts),
  ];
}

export function registerMetrics(app: FastifyInstance, deps: AdminDeps, onRequest: onRequestHookHandler): void {
  const lag = new EventLoopLagMonitor();
  lag.start();
  app.addHook('onClose', async () => lag.stop());
  app.get('/metrics', { onRequest }, async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(await renderMetrics(deps, lag)));
}

function iscsiFamilies(deps: AdminDeps, lag: EventLoopLagMonitor | undefined): Family[] {
  const families: Family[] = [];
  if (lag !== undefined) {
    const h = lag.histogram();
    const bounds = [...LAG_BUCKETS_SECONDS.map(String), '+Inf'];
    families.push({
      name: 'shelfgate_event_loop_lag_seconds',
      type: 'histogram',
      help: 'How late a timer due every 20 ms fired: time the event loop was busy with one piece of work.',
      samples: [
        ...bounds.map((le, i) => ({ suffix: '_bucket', labels: { le }, value: h.buckets[i]! })),
        { suffix: '_sum', value: h.sumSeconds },
        { suffix: '_count', value: h.count },
      ],
    });
  }
  const stats = deps.iscsiStats?.();
  if (stats !== undefined) {
    families.push(
      {
        name: 'shelfgate_iscsi_login_failures_total',
        type: 'counter',
        help: 'iSCSI logins that failed with an initiator error (authentication, authorization, unknown target).',
        samples: [{ value: stats.loginFailures }],
      },
      {
        name: 'shelfgate_iscsi_login_refusals_total',
        type: 'counter',
        help: 'iSCSI logins refused because their initiator name or address failed too often (iscsi.loginThrottle).',
        samples: [{ value: stats.loginRefusals }],
      },
      {
        name: 'shelfgate_iscsi_pdus_received_total',
        type: 'counter',
        help: 'PDUs framed from initiators (decodable or not).',
        samples: [{ value: stats.pdusReceived }],
      },
      {
        name: 'shelfgate_iscsi_full_feature_logins_total',
        type: 'counter',
        help: 'iSCSI logins that reached full feature phase.',
        samples: [{ value: stats.fullFeatureLogins }],
      },
      {
        name: 'shelfgate_iscsi_limit_closes_total',
        type: 'counter',
        help: 'iSCSI connections closed for going past a limit (iscsi.limits), by limit.',
        samples: ['login', 'stall', 'output'].map((limit) => ({ labels: { limit }, value: stats.limitCloses[limit] ?? 0 })),
      },
      {
        name: 'shelfgate_iscsi_write_buffer_bytes',
        type: 'gauge',
        help: 'WRITE data buffers reserved by iSCSI connections (iscsi.limits.totalWriteBufferBytes).',
        samples: [{ value: stats.writeBufferBytes }],
      },
      {
        name: 'shelfgate_iscsi_response_bytes',
        type: 'gauge',
        help: 'Data-In reserved by iSCSI commands running or being answered (iscsi.limits.totalResponseBytes).',
        samples: [{ value: stats.responseBytes }],
      },
    );
  }
  return families;
}

/** The background workers' cloud state (src/cloud/cloud-outage.ts), labelled by worker. */
function cloudOutageFamilies(outages: ReadonlyArray<CloudOutage | undefined>): Family[] {
  const present = outages.filter((o): o is CloudOutage => o !== undefined);
  if (present.length === 0) return [];
  const family = (name: string, type: Family['type'], help: string, value: (o: CloudOutage) => number): Family => ({
    name,
    type,
    help,
    samples: present.map((o) => ({ labels: { worker: o.worker }, value: value(o) })),
  });
  return [
    family('shelfgate_cloud_failing', 'gauge', '1 while the worker\'s cloud calls fail (retrying with backoff), else 0.', (o) => (o.failing ? 1 : 0)),
    family('shelfgate_cloud_failed_attempts_total', 'counter', 'Cloud attempts of the worker that failed (each retried or ended).', (o) => o.counters.failedAttempts),
    family('shelfgate_cloud_outages_total', 'counter', 'Times the worker went from healthy to failing.', (o) => o.counters.outages),
  ];
}

function formatFamily(family: Family): string {
  let text = `# HELP ${family.name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${family.name} ${family.type}\n`;
  for (const sample of family.samples) {
    const labels = Object.entries(sample.labels ?? {});
    const labelText = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
    text += `${family.name}${sample.suffix ?? ''}${labelText} ${sample.value}\n`;
  }
  return text;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
