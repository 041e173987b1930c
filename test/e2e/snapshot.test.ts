// Snapshots end to end: the real CLI (local object store), an iSCSI writer (our test initiator)
// rewriting 16 KiB slots with increasing generations while a snapshot is requested over the REST
// API. A volume created from the snapshot, read over iSCSI, must hold for every slot a generation
// acknowledged before the request was sent or started before the answer came back — nothing
// older, nothing newer. A second snapshot after 3 slot writes in 3 different 1 MiB chunks adds
// exactly 3 chunk objects to the store. Through the AWS SDK: CreateSnapshot, the stored volume's
// default daily schedule and UpdateSnapshotSchedule, a clone (CreateCachediSCSIVolume with
// SourceVolumeARN) and a stored volume from a snapshot, both read back over iSCSI.
// `shelfgate snapshots list` shows the snapshots.
import {
  CreateCachediSCSIVolumeCommand,
  CreateSnapshotCommand,
  CreateStorediSCSIVolumeCommand,
  DescribeSnapshotScheduleCommand,
  InvalidGatewayRequestException,
  ListGatewaysCommand,
  ListVolumesCommand,
  StorageGatewayClient,
  UpdateSnapshotScheduleCommand,
} from '@aws-sdk/client-storage-gateway';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { TestInitiator, read16, write16 } from '../helpers/initiator.js';
import { repoRoot, startGateway } from '../helpers/gateway-process.js';
import { runTool } from '../helpers/libiscsi.js';

const SOURCE = 'src';
const RESTORED = 'restored';
const BLOCK_SIZE = 512;
const SLOT_BLOCKS = 32; // 16 KiB: one Level chunk, so a write is all-or-nothing
const SLOTS = 1024; // 16 MiB = 16 object chunks
const SLOTS_PER_OBJECT_CHUNK = (1024 * 1024) / (SLOT_BLOCKS * BLOCK_SIZE);
const QUEUE_DEPTH = 8;
const SNAPSHOT_AFTER_ACKS = SLOTS + 500; // every slot written at least once
const WRITES_AFTER_SNAPSHOT = 600;
const INITIATOR = 'iqn.2026-11.test:snapshot-writer';
const WAIT_TIMEOUT_MS = 120_000;

/** Every block of the slot is stamped with (slot, generation), the rest derived from both. */
function slotPattern(slot: number, generation: number): Buffer {
  const buf = Buffer.alloc(SLOT_BLOCKS * BLOCK_SIZE);
  for (let block = 0; block < SLOT_BLOCKS; block++) {
    const offset = block * BLOCK_SIZE;
    buf.writeUInt32BE(slot, offset);
    buf.writeUInt32BE(generation, offset + 4);
    buf.fill((slot * 31 + generation * 7 + block) & 0xff, offset + 8, offset + BLOCK_SIZE);
  }
  return buf;
}

/** The generation a slot's bytes hold, or -1 when they are not a whole generation (0 = zeros). */
function generationOf(slot: number, bytes: Buffer): number {
  if (bytes.equals(Buffer.alloc(bytes.length))) return 0;
  const generation = bytes.readUInt32BE(4);
  return bytes.readUInt32BE(0) === slot && bytes.equals(slotPattern(slot, generation)) ? generation : -1;
}

async function loggedIn(port: number, targetName: string): Promise<TestInitiator> {
  const initiator = await TestInitiator.connect('127.0.0.1', port);
  await initiator.login({ initiatorName: INITIATOR, targetName });
  await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0])); // clears the power-on unit attention (SAM-5 5.14)
  return initiator;
}

interface Snapshot {
  snapshotId: string;
  status: string;
  progress: number;
  chunkCount: number;
  uploadedChunks: number;
}

const ACCESS_KEY = { accessKeyId: 'AKIASHELFGATESNAP001', secretAccessKey: 'snapshot/secret/key/0123456789abcdefghij' };
const configDir = await mkdtemp(join(tmpdir(), 'shelfgate-snapshot-e2e-'));
t.teardown(() => rm(configDir, { recursive: true, force: true }));
const configFile = join(configDir, 'shelfgate.json');
await writeFile(configFile, JSON.stringify({ api: { accessKeys: [ACCESS_KEY] }, volumes: [{ name: SOURCE, type: 'stored', size: '1GiB' }] }));
const gateway = await startGateway({ configFile });
t.teardown(() => gateway.dispose());
const api = `http://127.0.0.1:${gateway.apiPort}`;

async function request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await gateway.apiFetch(path, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text.length > 0 ? JSON.parse(text) : undefined) as T };
}

async function completed(snapshotId: string): Promise<Snapshot> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    const { body } = await request<Snapshot>('GET', `/v1/snapshots/${snapshotId}`);
    if (body.status !== 'pending' || Date.now() > deadline) return body;
    await delay(200);
  }
}

/** Waits until the upload queue is empty (the uploader's objects are all in the store). */
async function uploadsDrained(): Promise<boolean> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const metrics = await (await gateway.apiFetch('/metrics')).text();
    if (/^shelfgate_upload_backlog_chunks 0$/m.test(metrics)) return true;
    await delay(200);
  }
  return false;
}

/** Chunk objects of the source volume (volume id 1) in the local object store. */
async function chunkObjectCount(): Promise<number> {
  const entries = await readdir(join(gateway.dataDir, 'objects'), { recursive: true });
  return entries.filter((e) => e.includes('chunks.d') && e.endsWith('.obj')).length;
}

const acked = new Array<number>(SLOTS).fill(0);
const started = new Array<number>(SLOTS).fill(0);
let first: Snapshot;
let ackedAtRequest: number[] = [];
let startedAtAnswer: number[] = [];

t.test('Snapshot.DuringWrites', async (t) => {
  const writer = await loggedIn(gateway.iscsiPort, gateway.targetIqn(SOURCE));
  t.teardown(() => writer.destroy());
  let acks = 0;
  let next = 0;
  let snapshotAsked: Promise<void> | null = null;
  let stopAt = Number.POSITIVE_INFINITY;
  const lane = async (): Promise<void> => {
    while (acks < stopAt) {
      const slot = next;
      next = (next + 1) % SLOTS;
      if (started[slot] !== acked[slot]) continue; // one write per slot at a time
      const generation = ++started[slot]!;
      const result = await writer.scsi(write16(slot * SLOT_BLOCKS, SLOT_BLOCKS), { dataOut: slotPattern(slot, generation) });
      if (result.status !== 0) throw new Error(`WRITE(16) slot ${slot}: status ${result.status}`);
      acked[slot] = generation;
      if (++acks === SNAPSHOT_AFTER_ACKS) {
        ackedAtRequest = [...acked];
        snapshotAsked = request<Snapshot>('POST', '/v1/snapshots', { volume: SOURCE, description: 'during writes' }).then(({ status, body }) => {
          startedAtAnswer = [...started];
          stopAt = acks + WRITES_AFTER_SNAPSHOT;
          t.equal(status, 201, 'snapshot requested');
          first = body;
        });
      }
    }
  };
  await Promise.all(Array.from({ length: QUEUE_DEPTH }, lane));
  await snapshotAsked;
  t.match(first.snapshotId, /^snap-[0-9a-f]{17}$/);
  first = await completed(first.snapshotId);
  t.equal(first.status, 'completed');
  t.equal(first.progress, 100);
  t.equal(first.chunkCount, 16, 'every written 1 MiB chunk');
  t.equal(await writer.logout(), 0);
});

t.test('Snapshot.RestoreReadsPreSnapshotContent', async (t) => {
  const created = await request<{ name: string; targetName: string }>('POST', '/v1/volumes', {
    name: RESTORED,
    type: 'cached',
    size: '1GiB',
    snapshotId: first.snapshotId,
  });
  t.equal(created.status, 201, 'volume created from the snapshot');
  const reader = await loggedIn(gateway.iscsiPort, gateway.targetIqn(RESTORED));
  t.teardown(() => reader.destroy());
  const problems: string[] = [];
  let changedAfter = 0;
  const slotsPerRead = 64;
  for (let base = 0; base < SLOTS; base += slotsPerRead) {
    const result = await reader.scsi(read16(base * SLOT_BLOCKS, slotsPerRead * SLOT_BLOCKS), { readLength: slotsPerRead * SLOT_BLOCKS * BLOCK_SIZE });
    if (result.status !== 0) {
      problems.push(`READ(16) at slot ${base}: status ${result.status}`);
      continue;
    }
    for (let slot = base; slot < base + slotsPerRead; slot++) {
      const bytes = result.dataIn.subarray((slot - base) * SLOT_BLOCKS * BLOCK_SIZE, (slot - base + 1) * SLOT_BLOCKS * BLOCK_SIZE);
      const generation = generationOf(slot, bytes);
      const low = ackedAtRequest[slot]!;
      const high = startedAtAnswer[slot]!;
      if (generation < low || generation > high) problems.push(`slot ${slot}: generation ${generation}, expected ${low}..${high}`);
      if (acked[slot] !== generation) changedAfter++;
    }
  }
  t.same(problems.slice(0, 20), [], `every slot holds its content at the snapshot (${problems.length} problems)`);
  t.ok(changedAfter > 0, `${changedAfter} slots were rewritten after the snapshot and read their older content`);
  t.equal(await reader.logout(), 0);
});

t.test('Snapshot.SecondIsIncremental', async (t) => {
  t.ok(await uploadsDrained(), 'upload queue drained');
  const objectsBefore = await chunkObjectCount();
  const writer = await loggedIn(gateway.iscsiPort, gateway.targetIqn(SOURCE));
  t.teardown(() => writer.destroy());
  for (const objectChunk of [2, 7, 11]) {
    const slot = objectChunk * SLOTS_PER_OBJECT_CHUNK + 5;
    const result = await writer.scsi(write16(slot * SLOT_BLOCKS, SLOT_BLOCKS), { dataOut: slotPattern(slot, acked[slot]! + 1000) });
    t.equal(result.status, 0);
    acked[slot] = acked[slot]! + 1000;
  }
  const { body } = await request<Snapshot>('POST', '/v1/snapshots', { volume: SOURCE, description: 'second' });
  const second = await completed(body.snapshotId);
  t.equal(second.status, 'completed');
  t.equal(second.chunkCount, 16);
  t.ok(second.uploadedChunks <= 3, `the snapshot put ${second.uploadedChunks} chunk objects (the uploader may have put the others)`);
  t.ok(await uploadsDrained(), 'upload queue drained');
  t.equal((await chunkObjectCount()) - objectsBefore, 3, 'exactly the 3 changed chunks were added to the object store');
  t.equal(await writer.logout(), 0);
});

/** Reads every slot of a volume over iSCSI; answers the slots whose generation is not `acked`. */
async function slotsDiffering(volume: string): Promise<string[]> {
  const reader = await loggedIn(gateway.iscsiPort, gateway.targetIqn(volume));
  const problems: string[] = [];
  const slotsPerRead = 64;
  for (let base = 0; base < SLOTS; base += slotsPerRead) {
    const result = await reader.scsi(read16(base * SLOT_BLOCKS, slotsPerRead * SLOT_BLOCKS), { readLength: slotsPerRead * SLOT_BLOCKS * BLOCK_SIZE });
    for (let slot = base; slot < base + slotsPerRead; slot++) {
      const bytes = result.dataIn.subarray((slot - base) * SLOT_BLOCKS * BLOCK_SIZE, (slot - base + 1) * SLOT_BLOCKS * BLOCK_SIZE);
      const generation = generationOf(slot, bytes);
      if (generation !== acked[slot]) problems.push(`${volume} slot ${slot}: generation ${generation}, expected ${acked[slot]}`);
    }
  }
  await reader.logout();
  reader.destroy();
  return problems;
}

t.test('Snapshot.AwsApi', async (t) => {
  const sgw = new StorageGatewayClient({ endpoint: api, region: 'us-east-1', credentials: ACCESS_KEY, maxAttempts: 1 });
  const gatewayArn = (await sgw.send(new ListGatewaysCommand({}))).Gateways?.[0]?.GatewayARN ?? '';
  const { body: source } = await request<{ volumeId: string }>('GET', `/v1/volumes/${SOURCE}`);
  const volumeArn = (await sgw.send(new ListVolumesCommand({}))).VolumeInfos?.find((v) => v.VolumeId === source.volumeId)?.VolumeARN ?? '';
  const schedule = await sgw.send(new DescribeSnapshotScheduleCommand({ VolumeARN: volumeArn }));
  t.same([schedule.StartAt, schedule.RecurrenceInHours, schedule.Timezone], [0, 24, 'GMT'], 'stored volume: daily by default');
  await sgw.send(new UpdateSnapshotScheduleCommand({ VolumeARN: volumeArn, StartAt: 6, RecurrenceInHours: 8, Description: 'every 8 h' }));
  const updated = await sgw.send(new DescribeSnapshotScheduleCommand({ VolumeARN: volumeArn }));
  t.same([updated.StartAt, updated.RecurrenceInHours, updated.Description], [6, 8, 'every 8 h']);
  try {
    await sgw.send(new UpdateSnapshotScheduleCommand({ VolumeARN: volumeArn, StartAt: 6, RecurrenceInHours: 5 }));
    t.fail('RecurrenceInHours 5 accepted');
  } catch (err) {
    t.type(err, InvalidGatewayRequestException);
    t.equal((err as InvalidGatewayRequestException).error?.errorCode, 'InvalidParameters');
  }

  const created = await sgw.send(new CreateSnapshotCommand({ VolumeARN: volumeArn, SnapshotDescription: 'through the SDK' }));
  t.match(created.SnapshotId, /^snap-[0-9a-f]{17}$/);
  t.equal(created.VolumeARN, volumeArn);
  t.equal((await completed(created.SnapshotId!)).status, 'completed');
  const fromSnapshot = await sgw.send(
    new CreateStorediSCSIVolumeCommand({
      GatewayARN: gatewayArn,
      DiskId: 'local:1GiB',
      SnapshotId: created.SnapshotId,
      PreserveExistingData: false,
      TargetName: 'fromsnap',
      NetworkInterfaceId: '127.0.0.1',
    }),
  );
  t.ok(fromSnapshot.VolumeARN, 'stored volume from the snapshot');
  t.same((await slotsDiffering('fromsnap')).slice(0, 10), [], 'the stored volume reads the snapshot');

  const clone = await sgw.send(
    new CreateCachediSCSIVolumeCommand({
      GatewayARN: gatewayArn,
      VolumeSizeInBytes: 1024 ** 3,
      SourceVolumeARN: volumeArn,
      TargetName: 'clone',
      NetworkInterfaceId: '127.0.0.1',
      ClientToken: 'clone-1',
    }),
  );
  t.ok(clone.VolumeARN, 'clone created');
  t.same((await slotsDiffering('clone')).slice(0, 10), [], 'the clone reads the source');
  sgw.destroy();
});

t.test('Snapshot.CliList', async (t) => {
  const cli = join(repoRoot(), 'dist/src/cli/main.js');
  const result = await runTool('node', [cli, 'snapshots', 'list', '--api', api, '--data-dir', gateway.dataDir]);
  t.equal(result.exitCode, 0, 'snapshots list', { stderr: result.stderr });
  t.match(result.stdout, first.snapshotId);
  t.match(result.stdout, /completed/);
  const deleted = await request('DELETE', `/v1/snapshots/${first.snapshotId}`);
  t.equal(deleted.status, 204);
  t.equal((await request('GET', `/v1/snapshots/${first.snapshotId}`)).status, 404);
});

t.test('Snapshot.CleanExit', async (t) => {
  t.equal(await gateway.stop(), 0, 'exit code 0 on SIGTERM');
});
