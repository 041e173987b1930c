// Issue 11 item 8, the CDB half: every opcode 0x00–0xFF, FUZZ_CDB_VARIANTS variants each (random
// lengths, reserved bits, allocation lengths 0 and maximum; test/helpers/cdb-fuzzer.ts), against
// the disk, tape drive (a cartridge loaded) and media changer LUNs of a real shelfgate process.
// 0 internal errors, 0 hangs, the sessions stay up, RSS stays under the limits' 512 MiB, and a
// normal session on another volume keeps working throughout. A negative control first: the same
// fuzzer against an in-process target whose logical unit is deliberately broken must find it.
import t from 'tap';
import { ScsiStatus, type LogicalUnit, type ScsiRequest, type ScsiResponse } from '../../iscsi/device.js';
import { IscsiServer } from '../../iscsi/server.js';
import { runCdbFuzzer } from '../helpers/cdb-fuzzer.js';
import { startGateway } from '../helpers/gateway-process.js';
import { TestInitiator, read16, write16 } from '../helpers/initiator.js';
import { MemoryLun } from '../helpers/memory-lun.js';
import { MiB, watchRss } from '../helpers/raw-connection.js';
import { loginTarget, moveMedium, mustBeGood } from '../helpers/tape-commands.js';

const VARIANTS = Number(process.env.FUZZ_CDB_VARIANTS ?? 6);
const SEED = Number(process.env.FUZZ_SEED ?? 0xcdb);
const ANSWER_TIMEOUT_MS = 10_000;
const INITIATOR = 'iqn.2026-11.test:cdb-fuzzer';

/** A logical unit with two deliberate bugs the fuzzer must find: MODE SENSE(6) with DBD set
 *  throws (an internal error), SYNCHRONIZE CACHE(10) with IMMED set never answers (a hang). */
class BrokenLun implements LogicalUnit {
  readonly peripheralDeviceType = 0x00;
  private readonly inner = new MemoryLun();
  execute(req: ScsiRequest): Promise<ScsiResponse> {
    if (req.cdb[0] === 0x1a && (req.cdb[1]! & 0x08) !== 0) return Promise.reject(new TypeError('deliberately broken handler'));
    if (req.cdb[0] === 0x35 && (req.cdb[1]! & 0x02) !== 0) return new Promise(() => {});
    return this.inner.execute(req);
  }
  reset(): void {}
  nexusLost(): void {}
}

t.test('CdbFuzz.NegativeControl: the fuzzer finds a deliberately broken handler', async (t) => {
  const lu = new BrokenLun();
  const name = 'iqn.2026-11.test:broken';
  const server = new IscsiServer({
    registry: { list: () => [{ name, luns: new Map([[0, lu]]) }], get: (n) => (n === name ? { name, luns: new Map([[0, lu]]) } : undefined) },
    nopInIntervalMs: 0,
  });
  const { port } = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close({ graceMs: 0 }));
  const found = { internal: 0, hang: 0 };
  for (let seed = SEED; found.internal === 0 || found.hang === 0; seed++) {
    if (seed > SEED + 20) break;
    const initiator = await TestInitiator.connect('127.0.0.1', port);
    await initiator.login({ initiatorName: INITIATOR, targetName: name });
    const result = await runCdbFuzzer(initiator, { seed, variantsPerOpcode: VARIANTS, answerTimeoutMs: 1000 });
    found.internal += result.internalErrors.length;
    found.hang += result.hangs.length;
    initiator.destroy();
  }
  t.ok(found.internal > 0, `internal errors found: ${found.internal}`);
  t.ok(found.hang > 0, `hangs found: ${found.hang}`);
});

const gateway = await startGateway({ volumes: ['fuzz:1GiB', 'steady:1GiB'], extraArgs: ['--tapes', 'CDBF:3', '--log-level', 'error'] });
t.teardown(() => gateway.dispose());

t.test('CdbFuzz.EveryOpcodeOnDiskTapeAndChanger', async (t) => {
  t.comment(`seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${VARIANTS} variants of each of 256 opcodes per LUN (FUZZ_CDB_VARIANTS)`);
  const rss = watchRss(gateway.pid);
  const changerSetup = await loginTarget(gateway.iscsiPort, INITIATOR, gateway.targetIqn('mediachanger'));
  mustBeGood('MOVE MEDIUM slot 1 -> drive 1', await changerSetup.scsi(moveMedium(1, 10001)));
  changerSetup.destroy();

  // A well-behaved session writes and reads back on another volume throughout.
  const steady = await loginTarget(gateway.iscsiPort, 'iqn.2026-11.test:steady', gateway.targetIqn('steady'));
  t.teardown(() => steady.destroy());
  let fuzzing = true;
  const steadySession = (async () => {
    let rounds = 0;
    const mismatches: string[] = [];
    while (fuzzing || rounds < 2) {
      const pattern = Buffer.alloc(64 * 1024, rounds & 0xff);
      const w = await steady.scsi(write16(rounds * 128, 128), { dataOut: pattern });
      const r = await steady.scsi(read16(rounds * 128, 128), { readLength: pattern.length });
      if (w.status !== 0 || r.status !== 0 || !r.dataIn.equals(pattern)) mismatches.push(`round ${rounds}`);
      rounds++;
    }
    return { rounds, mismatches };
  })();

  for (const [i, target] of ['fuzz', 'tapedrive-01', 'mediachanger'].entries()) {
    const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
    await initiator.login({ initiatorName: INITIATOR, targetName: gateway.targetIqn(target) });
    const result = await runCdbFuzzer(initiator, { seed: SEED + i, variantsPerOpcode: VARIANTS, answerTimeoutMs: ANSWER_TIMEOUT_MS });
    const statuses = [...result.statuses].map(([s, n]) => `0x${s.toString(16)}:${n}`).join(' ');
    t.comment(`${target}: ${result.sent} CDBs, statuses ${statuses}, ${result.aborted.length} stopped by LUN RESET`);
    t.same(result.internalErrors, [], `${target}: no internal errors`);
    t.same(result.hangs, [], `${target}: no hangs`);
    t.equal(result.deadSession, undefined, `${target}: the session stays up`);
    t.ok([...result.statuses.keys()].every((s) => Object.values(ScsiStatus).includes(s as never)), `${target}: only SAM-5 statuses`);
    initiator.destroy();
  }
  fuzzing = false;
  const { rounds, mismatches } = await steadySession;
  t.same(mismatches, [], `the steady session verified ${rounds} write/read rounds meanwhile`);
  t.ok(gateway.alive(), 'the server process is still running');
  const peak = rss.stop();
  t.ok(peak < 512 * MiB, `peak RSS ${(peak / MiB).toFixed(0)} MiB < 512 MiB`);
});
