// Durability (ARCHITECTURE.md "Data path"): a writer keeps WRITE(16)s in flight, records every one
// the target answered GOOD, and the server is SIGKILLed mid-stream, then restarted on the same data
// dir. Every acknowledged write must read back exactly; every unacknowledged one must read back,
// block by block, as either the old or the new contents (no third value). With the write cache on
// (WCE=1, the default) GOOD means the kernel has the data, so a crash of the process loses nothing
// acknowledged. 20 kill cycles each: plain writes, FUA writes, and plain writes with SYNCHRONIZE
// CACHE(16) issued among them, all on the same data.
import t from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import { TestInitiator, read16, write16 } from '../helpers/initiator.js';

const VOLUME = 'crash';
const BLOCK_SIZE = 512;
const WRITE_BLOCKS = 16;
const WRITE_SLOTS = 4096; // 4096 slots x 8 KiB = 32 MiB region
const QUEUE_DEPTH = 16;
const KILL_AFTER_ACKS = 400;
const CYCLES_PER_MODE = Number(process.env.CRASH_CYCLES_PER_MODE ?? 20);
const MODES = ['write-cache', 'fua', 'synchronize-cache'] as const;
/** SBC-3 5.35 WRITE(16) byte 1 bit 3: FUA. */
const FUA = 0x08;
/** SBC-3 5.23 SYNCHRONIZE CACHE(16) of the whole volume. */
const SYNCHRONIZE_CACHE_16 = Buffer.from([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const INITIATOR = 'iqn.2026-11.test:crash-writer';

/** The contents of `slot` at `generation`: every 512-byte block is stamped so a block from the
 *  wrong slot or generation is recognisable, and the rest is derived from both. */
function slotPattern(slot: number, generation: number): Buffer {
  const data = Buffer.alloc(WRITE_BLOCKS * BLOCK_SIZE);
  if (generation === 0) return data; // never written: the volume reads zeros
  for (let block = 0; block < WRITE_BLOCKS; block++) {
    const offset = block * BLOCK_SIZE;
    data.writeUInt32BE(slot, offset);
    data.writeUInt32BE(generation, offset + 4);
    data.writeUInt32BE(block, offset + 8);
    for (let i = 12; i < BLOCK_SIZE; i++) data[offset + i] = (slot * 7 + generation * 13 + block + i) & 0xff;
  }
  return data;
}

async function loggedIn(port: number, targetName: string): Promise<TestInitiator> {
  const initiator = await TestInitiator.connect('127.0.0.1', port);
  await initiator.login({ initiatorName: INITIATOR, targetName });
  // The first command of a new nexus reports the power-on unit attention (SAM-5 5.14).
  await initiator.scsi(Buffer.from([0x00, 0, 0, 0, 0, 0]));
  return initiator;
}

const gateway = await startGateway({ volumes: [`${VOLUME}:1GiB`] });
t.teardown(() => gateway.dispose());

/** What each slot must hold: the last acknowledged generation, plus one possibly in flight. */
const acked = new Array<number>(WRITE_SLOTS).fill(0);
const inFlight = new Map<number, number>();

for (let cycle = 1; cycle <= CYCLES_PER_MODE * MODES.length; cycle++) {
  const mode = MODES[Math.floor((cycle - 1) / CYCLES_PER_MODE)]!;
  t.test(`Crash.Kill9Cycle${cycle} (${mode})`, async (t) => {
    const writer = await loggedIn(gateway.iscsiPort, gateway.targetIqn(VOLUME));
    let acks = 0;
    let next = (cycle * 977) % WRITE_SLOTS;
    let killed: Promise<void> | null = null;

    const lane = async (): Promise<void> => {
      while (killed === null) {
        const slot = next;
        next = (next + 1) % WRITE_SLOTS;
        if (inFlight.has(slot)) continue;
        const generation = acked[slot]! + 1;
        inFlight.set(slot, generation);
        try {
          const cdb = write16(slot * WRITE_BLOCKS, WRITE_BLOCKS);
          if (mode === 'fua') cdb[1]! |= FUA;
          const result = await writer.scsi(cdb, { dataOut: slotPattern(slot, generation) });
          if (result.status !== 0) throw new Error(`WRITE(16) slot ${slot} status ${result.status} sense ${result.sense.toString('hex')}`);
          acked[slot] = generation;
          inFlight.delete(slot);
          if (++acks === KILL_AFTER_ACKS) killed = gateway.kill9();
          if (mode === 'synchronize-cache' && acks % 50 === 0 && killed === null) {
            const flushed = await writer.scsi(SYNCHRONIZE_CACHE_16);
            if (flushed.status !== 0) throw new Error(`SYNCHRONIZE CACHE(16) status ${flushed.status} sense ${flushed.sense.toString('hex')}`);
          }
        } catch (err) {
          if (killed === null) throw err;
          return; // the connection died with the server: this write stays "in flight"
        }
      }
    };
    await Promise.all(Array.from({ length: QUEUE_DEPTH }, lane));
    await killed;
    writer.destroy();
    t.ok(acks >= KILL_AFTER_ACKS, `${acks} writes acknowledged, ${inFlight.size} in flight at SIGKILL`);

    await gateway.restart();
    const reader = await loggedIn(gateway.iscsiPort, gateway.targetIqn(VOLUME));
    t.teardown(() => reader.destroy());
    const problems: string[] = [];
    const slotsPerRead = 64;
    for (let first = 0; first < WRITE_SLOTS; first += slotsPerRead) {
      const result = await reader.scsi(read16(first * WRITE_BLOCKS, slotsPerRead * WRITE_BLOCKS), {
        readLength: slotsPerRead * WRITE_BLOCKS * BLOCK_SIZE,
      });
      if (result.status !== 0) {
        problems.push(`READ(16) at slot ${first}: status ${result.status}`);
        continue;
      }
      for (let slot = first; slot < first + slotsPerRead; slot++) {
        const got = result.dataIn.subarray((slot - first) * WRITE_BLOCKS * BLOCK_SIZE, (slot - first + 1) * WRITE_BLOCKS * BLOCK_SIZE);
        const expected = slotPattern(slot, acked[slot]!);
        const pending = inFlight.get(slot);
        if (pending === undefined) {
          if (!got.equals(expected)) problems.push(`slot ${slot}: acknowledged generation ${acked[slot]} lost`);
          continue;
        }
        // Unacknowledged: each block is the old or the new generation; resolve the slot to what is on disk.
        const newer = slotPattern(slot, pending);
        let sawNewer = false;
        for (let block = 0; block < WRITE_BLOCKS; block++) {
          const range = [block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE] as const;
          const gotBlock = got.subarray(...range);
          if (gotBlock.equals(newer.subarray(...range))) sawNewer = true;
          else if (!gotBlock.equals(expected.subarray(...range))) problems.push(`slot ${slot} block ${block}: neither generation ${acked[slot]} nor ${pending}`);
        }
        inFlight.delete(slot);
        if (sawNewer && got.equals(newer)) acked[slot] = pending;
        else if (sawNewer) {
          // A torn unacknowledged write is allowed; rewrite the slot so later cycles compare cleanly.
          const fix = await reader.scsi(write16(slot * WRITE_BLOCKS, WRITE_BLOCKS), { dataOut: slotPattern(slot, pending) });
          if (fix.status === 0) acked[slot] = pending;
          else problems.push(`slot ${slot}: rewrite failed with status ${fix.status}`);
        }
      }
    }
    t.same(problems.slice(0, 20), [], `every acknowledged write survived SIGKILL (${problems.length} problems)`);
    t.equal(await reader.logout(), 0);
  });
}

t.test('Crash.CleanExitAfterRestarts', async (t) => {
  const exitCode = await gateway.stop();
  t.equal(exitCode, 0, 'exit code 0 on SIGTERM');
  if (exitCode !== 0) t.comment(gateway.stderr().slice(-4000));
});
