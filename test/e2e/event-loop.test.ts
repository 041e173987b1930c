// Issue 11 item 3: no command monopolises the event loop. Against a real shelfgate process:
// INQUIRY to one target keeps answering promptly (p99 under 50 ms, the bound) while
// another target streams writes, and while a tape drive writes 999,999 filemarks (the issue's
// row: 76 s of work that blocked an INQUIRY for 34.8 s). The filemarks are written in bounded
// steps with bounded memory, and LOGICAL UNIT RESET ends the command. /metrics shows the
// event-loop lag histogram. The machine is shared: only the bounds are asserted.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import t, { type Test } from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import { TestInitiator, write16 } from '../helpers/initiator.js';
import { MiB, rssBytes, watchRss } from '../helpers/raw-connection.js';
import { loginTarget, moveMedium, mustBeGood, readPositionShort, rewind, shortPositionBlock } from '../helpers/tape-commands.js';

const TOKEN = 'event-loop-test-token-0123456789';
const INITIATOR = 'iqn.2026-11.test:event-loop';
const INQUIRY = Buffer.from([0x12, 0, 0, 0, 96, 0]);
const P99_BOUND_MS = 50;
/** AWS-Gateway-VTL element addresses: storage slot 1, drive 1 = element 10001. */
const SLOT = 1;
const DRIVE = 10001;

const configDir = await mkdtemp(join(tmpdir(), 'shelfgate-event-loop-'));
const configFile = join(configDir, 'shelfgate.yaml');
await writeFile(configFile, `api:\n  token: ${TOKEN}\n`);
const gateway = await startGateway({
  volumes: ['stream:2GiB', 'probe:1GiB'],
  configFile,
  extraArgs: ['--tapes', 'LOOP:2', '--log-level', 'warn'],
});
t.teardown(async () => {
  await gateway.dispose();
  await rm(configDir, { recursive: true, force: true });
});

/** INQUIRY latencies (ms) on `probe` until `done()` says stop, one at a time, 5 ms apart. */
async function probeLatencies(probe: TestInitiator, done: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  while (!done()) {
    const start = performance.now();
    mustBeGood('INQUIRY', await probe.scsi(INQUIRY, { readLength: 96 }));
    latencies.push(performance.now() - start);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return latencies;
}

/** The gateway's event-loop lag histogram: cumulative counts by upper bound (seconds). */
async function lagHistogram(): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${gateway.apiPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const text = await res.text();
  return new Map([...text.matchAll(/^shelfgate_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** The bucket bound under which 99 % of the lag samples taken between two histograms fell. */
function lagP99(before: Map<string, number>, after: Map<string, number>): string {
  const total = (after.get('+Inf') ?? 0) - (before.get('+Inf') ?? 0);
  for (const [le, count] of after) if (count - (before.get(le) ?? 0) >= 0.99 * total) return `${le} s over ${total} samples`;
  return 'no samples';
}

/**
 * Asserts the issue's latency bound. On a machine whose load is more than twice its cores (the
 * shared development machine: other engineers' builds and tests), a latency says nothing about
 * this code: the numbers are reported and the assertion is skipped with that reason; CI runs on
 * a machine of its own.
 */
function assertP99(t: Test, measured: number[], what: string): void {
  const message = `${what}: INQUIRY p99 ${p99(measured).toFixed(1)} ms (max ${Math.max(...measured).toFixed(1)} ms) < ${P99_BOUND_MS} ms`;
  const load = loadavg()[0]!;
  if (load > 2 * cpus().length) {
    t.ok(p99(measured) < P99_BOUND_MS, message, { skip: `load average ${load.toFixed(1)} on ${cpus().length} cores: timing not meaningful here` });
  } else t.ok(p99(measured) < P99_BOUND_MS, message);
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

t.test('EventLoop.InquiryWhileStreamingWrites: p99 under 50 ms', async (t) => {
  const writer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('stream'));
  const probe = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('probe'));
  t.teardown(() => {
    writer.destroy();
    probe.destroy();
  });
  const data = Buffer.alloc(1024 * 1024, 0x5a);
  let writtenBytes = 0;
  const streamUntil = performance.now() + 8000;
  // Four 1 MiB writes in flight at all times for 8 s.
  const streams = Array.from({ length: 4 }, async (_, s) => {
    for (let i = s; performance.now() < streamUntil; i += 4) {
      mustBeGood('WRITE(16)', await writer.scsi(write16((i * 2048) % (2 * 1024 * 1024 * 2 - 2048), 2048), { dataOut: data }));
      writtenBytes += data.length;
    }
  });
  let streaming = true;
  const lagBefore = await lagHistogram();
  const latencies = probeLatencies(probe, () => !streaming);
  await Promise.all(streams);
  streaming = false;
  const measured = await latencies;
  t.comment(`gateway event-loop lag p99 bucket: ${lagP99(lagBefore, await lagHistogram())}`);
  t.ok(writtenBytes >= 64 * MiB, `${writtenBytes / MiB} MiB written meanwhile`);
  t.ok(measured.length >= 50, `${measured.length} INQUIRYs measured`);
  assertP99(t, measured, 'streaming writes');
});

t.test('EventLoop.WriteFilemarks999999: bounded steps, INQUIRY elsewhere stays fast, LUN RESET ends it', async (t) => {
  const changer = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('mediachanger'));
  mustBeGood('MOVE MEDIUM slot->drive', await changer.scsi(moveMedium(SLOT, DRIVE)));
  const drive = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('tapedrive-01'));
  const probe = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('probe'));
  t.teardown(() => {
    changer.destroy();
    drive.destroy();
    probe.destroy();
  });
  mustBeGood('REWIND', await drive.scsi(rewind()));
  const before = rssBytes(gateway.pid);
  const rss = watchRss(gateway.pid);
  // SSC-4 WRITE FILEMARKS(6), IMMED=0, count 999,999 (0x0F423F).
  const filemarks = drive.scsi(Buffer.from([0x10, 0, 0x0f, 0x42, 0x3f, 0]));
  filemarks.catch(() => {}); // aborted: it gets no response of its own
  let finished = false;
  void filemarks.then(() => (finished = true), () => {});
  const probeUntil = performance.now() + 5000;
  const lagBefore = await lagHistogram();
  const measured = await probeLatencies(probe, () => finished || performance.now() > probeUntil);
  t.comment(`gateway event-loop lag p99 bucket: ${lagP99(lagBefore, await lagHistogram())}`);
  t.ok(measured.length >= 50, `${measured.length} INQUIRYs to another target meanwhile`);
  assertP99(t, measured, 'WRITE FILEMARKS 999,999');
  if (!finished) {
    const resetStart = performance.now();
    t.equal(await drive.lunReset(), 0, 'LOGICAL UNIT RESET: FUNCTION COMPLETE');
    t.ok(performance.now() - resetStart < 5000, `the reset waited ${Math.round(performance.now() - resetStart)} ms for the command to stop (< 5 s)`);
  } else {
    t.comment('all 999,999 filemarks were written within the probe window; nothing left to abort');
  }
  const peak = rss.stop();
  t.ok(peak - before < 128 * MiB, `RSS grew ${((peak - before) / MiB).toFixed(1)} MiB (< 128 MiB; 1.45 GB before the fix)`);
  // The drive serves the next command (after the reset's unit attention) and says where it is.
  let position = await drive.scsi(readPositionShort(), { readLength: 20 });
  if (position.status === 0x02) position = await drive.scsi(readPositionShort(), { readLength: 20 });
  mustBeGood('READ POSITION', position);
  const at = shortPositionBlock(position.dataIn);
  t.ok(at > 0 && at <= 999_999, `the drive is at object ${at}: the filemarks written before the reset stay`);
});

t.test('EventLoop.Metrics: the lag histogram is on /metrics', async (t) => {
  const res = await fetch(`http://127.0.0.1:${gateway.apiPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const text = await res.text();
  t.match(text, /# TYPE shelfgate_event_loop_lag_seconds histogram/);
  const count = Number(/^shelfgate_event_loop_lag_seconds_count (\d+)$/m.exec(text)?.[1] ?? 0);
  const inf = Number(/^shelfgate_event_loop_lag_seconds_bucket\{le="\+Inf"\} (\d+)$/m.exec(text)?.[1] ?? -1);
  t.ok(count > 0, `${count} samples`);
  t.equal(inf, count, 'the +Inf bucket holds every sample');
  const buckets = [...text.matchAll(/^shelfgate_event_loop_lag_seconds_bucket\{le="[^"]+"\} (\d+)$/gm)].map((m) => Number(m[1]));
  t.ok(buckets.every((v, i) => i === 0 || v >= buckets[i - 1]!), 'buckets are cumulative');
});
