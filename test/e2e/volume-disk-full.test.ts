// Disk full never loses an acknowledged volume write (ARCHITECTURE.md "Data path"): a real
// `shelfgate start` process with its data directory on a 64 MiB tmpfs (mounted here; CI runs as
// root — elsewhere the test is skipped with the reason). After 4 MiB of acknowledged writes a
// filler file takes the free space; WRITE(16) goes on until the volume answers CHECK CONDITION,
// DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (07/27/07, SBC-3 4.7.3.6), and GET /v1/health
// says `degraded` with a disk-full condition while /metrics counts the episode. With the filler
// deleted writes are GOOD again and /health is `ok`. The gateway is restarted with SIGTERM and,
// after more writes, killed with SIGKILL and restarted: every write answered GOOD — before, during
// and after the episode — reads back byte-identical.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { senseText } from '../helpers/expect-sense.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { TestInitiator, read16, write16 } from '../helpers/initiator.js';

const VOLUME = 'full';
const INITIATOR = 'iqn.2026-11.test:volume-disk-full';
const BLOCK = 512;
const SLOT_BLOCKS = 128; // 64 KiB per write
const SLOT_BYTES = SLOT_BLOCKS * BLOCK;

function slotData(slot: number, generation: number): Buffer {
  const data = Buffer.alloc(SLOT_BYTES);
  for (let i = 0; i < SLOT_BYTES; i += 8) {
    data.writeUInt32BE(slot, i);
    data.writeUInt32BE(generation, i + 4);
  }
  return data;
}

const tmpfs = mountTmpfs(64, 'shelfgate-volume-full-');
if (tmpfs.path === null) {
  t.plan(0, `skipped: ${tmpfs.reason}`);
  process.exit(0);
}
const mount = tmpfs.path;
const dataDir = join(mount, 'data');
mkdirSync(dataDir);
// The object store stands for S3: it lives elsewhere, so only the volume store competes for the
// small file system (the local store keeps every uploaded chunk version: no garbage collection yet).
const outside = mkdtempSync(join(tmpdir(), 'shelfgate-volume-full-objects-'));
const configFile = join(outside, 'gateway.json');
writeFileSync(configFile, JSON.stringify({ objectStore: { type: 'local', path: join(outside, 'objects') } }));
const gateway: GatewayProcess = await startGateway({ dataDir, configFile, volumes: [`${VOLUME}:1GiB`], extraArgs: ['--log-level', 'warn'] });
t.teardown(async () => {
  await gateway.dispose();
  tmpfs.dispose();
  rmSync(outside, { recursive: true, force: true });
});

/** Generation acknowledged per slot (0: never written). */
const acked = new Map<number, number>();

async function connect(): Promise<TestInitiator> {
  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  await initiator.login({ initiatorName: INITIATOR, targetName: gateway.targetIqn(VOLUME) });
  await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0])); // the power-on unit attention
  return initiator;
}

async function write(initiator: TestInitiator, slot: number): Promise<string> {
  const generation = (acked.get(slot) ?? 0) + 1;
  const result = await initiator.scsi(write16(slot * SLOT_BLOCKS, SLOT_BLOCKS), { dataOut: slotData(slot, generation) });
  if (result.status === 0) acked.set(slot, generation);
  return senseText(result);
}

async function verify(t: Test, label: string): Promise<void> {
  const initiator = await connect();
  const problems: string[] = [];
  for (const [slot, generation] of acked) {
    const result = await initiator.scsi(read16(slot * SLOT_BLOCKS, SLOT_BLOCKS), { readLength: SLOT_BYTES });
    if (result.status !== 0 || !result.dataIn.equals(slotData(slot, generation))) problems.push(`slot ${slot} generation ${generation}: ${senseText(result)}`);
  }
  t.same(problems.slice(0, 10), [], `${label}: all ${acked.size} acknowledged writes read back (${problems.length} problems)`);
  await initiator.logout();
}

async function health(): Promise<{ status: string; conditions?: Array<{ component: string; kind: string; reason: string }> }> {
  // /health says only ok/degraded; the conditions are behind the token (GET /v1/health).
  const response = await gateway.apiFetch('/v1/health');
  return (await response.json()) as { status: string; conditions?: Array<{ component: string; kind: string; reason: string }> };
}

t.test('VolumeDiskFull.RefusedThenRecovered', async (t) => {
  const initiator = await connect();
  let slot = 0;
  for (; slot < 64; slot++) t.equal(await write(initiator, slot), 'GOOD', `slot ${slot} before the disk fills`);
  t.equal((await health()).status, 'ok');

  // Another program takes every free byte of the file system.
  const filler = join(mount, 'filler');
  const handle = await open(filler, 'w');
  const chunk = Buffer.alloc(1024 * 1024, 0x5a);
  try {
    for (;;) await handle.write(chunk);
  } catch (err) {
    t.equal((err as { code?: string }).code, 'ENOSPC', 'the filler filled the file system');
  } finally {
    await handle.close();
  }

  let refused: string | undefined;
  for (let i = 0; i < 200 && refused === undefined; i++, slot++) {
    const answer = await write(initiator, slot);
    if (answer !== 'GOOD') refused = answer;
  }
  t.equal(refused, '7/27/07', 'DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT');
  t.equal(await write(initiator, 0), '7/27/07', 'a rewrite is refused too while the disk is full');
  const degraded = await health();
  t.equal(degraded.status, 'degraded');
  t.ok(degraded.conditions?.some((c) => c.kind === 'disk-full' && c.component === `volume ${VOLUME}`), 'the condition names the volume');
  const metrics = await (await gateway.apiFetch('/metrics')).text();
  t.match(metrics, /shelfgate_store_episodes_total\{kind="disk-full"\} [1-9]/, 'the episode is counted');
  t.match(metrics, /shelfgate_store_degraded 1/);

  await unlink(filler);
  let answer = '';
  for (let i = 0; i < 50 && answer !== 'GOOD'; i++) {
    answer = await write(initiator, slot);
    if (answer !== 'GOOD') await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(answer, 'GOOD', 'writes succeed again once space returns');
  for (let i = 0; i < 16; i++) t.equal(await write(initiator, ++slot), 'GOOD');
  t.equal((await health()).status, 'ok', '/health is ok again');
  await initiator.logout();
  await verify(t, 'before any restart');

  t.equal(await gateway.stop(), 0, 'SIGTERM: clean exit');
  await gateway.restart();
  await verify(t, 'after SIGTERM');

  const again = await connect();
  for (let i = 0; i < 32; i++) t.equal(await write(again, ++slot), 'GOOD');
  again.destroy();
  await gateway.kill9();
  await gateway.restart();
  await verify(t, 'after SIGKILL');
});
