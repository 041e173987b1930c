// A CDB fuzzer (issue 11 item 8): every opcode 0x00–0xFF, each in several variants — random
// bytes, all zeros (allocation lengths 0), all ones (maximum allocation lengths, every reserved
// bit set), lengths other than the opcode group's — with no data, a Data-In buffer or random
// Data-Out, through a real session. Findings:
//  - internal error: CHECK CONDITION HARDWARE ERROR / INTERNAL TARGET FAILURE (44h/00h), what the
//    dispatcher answers when a handler throws something unexpected;
//  - hang: no answer within `answerTimeoutMs` and a LOGICAL UNIT RESET that does not end it
//    within `answerTimeoutMs` either (a slow command the reset stops is counted as `aborted`);
//  - dead session: the connection dropped.
import { cdbLengthForOpcode } from '../../iscsi/scsi/cdb.js';
import type { TestInitiator } from './initiator.js';
import { prng, type Rng } from './prng.js';

export interface CdbFuzzResult {
  sent: number;
  statuses: Map<number, number>;
  aborted: string[];
  internalErrors: string[];
  hangs: string[];
  deadSession: string | undefined;
}

const SENSE_KEY_HARDWARE_ERROR = 0x04;
const ASC_INTERNAL_TARGET_FAILURE = 0x44;

export function fuzzCdb(rng: Rng, opcode: number, variant: number): Buffer {
  const natural = cdbLengthForOpcode(opcode) || [6, 10, 12, 16][rng.int(4)]!;
  let length = natural;
  if (variant % 6 === 4) length = Math.max(1, natural - 1 - rng.int(natural - 1)); // too short
  if (variant % 6 === 5) length = 1 + rng.int(16);
  const cdb = variant % 6 === 1 ? Buffer.alloc(length) : variant % 6 === 2 ? Buffer.alloc(length, 0xff) : rng.bytes(length);
  cdb[0] = opcode;
  if (variant % 6 === 3) cdb[length - 1] = 0; // control byte clear, the rest random
  return cdb;
}

function sessionDataFor(rng: Rng): { readLength?: number; dataOut?: Buffer } {
  switch (rng.int(4)) {
    case 0:
      return {};
    case 1:
      return { readLength: [1, 512, 4096, 65536][rng.int(4)]! };
    case 2:
      return { dataOut: rng.bytes([1, 512, 4096][rng.int(3)]!) };
    default:
      return { readLength: 255 };
  }
}

/**
 * Sends `variantsPerOpcode` CDBs for every opcode to LUN `lun` of the logged-in `initiator`.
 */
export async function runCdbFuzzer(
  initiator: TestInitiator,
  opts: { seed: number; variantsPerOpcode: number; answerTimeoutMs: number; lun?: number },
): Promise<CdbFuzzResult> {
  const rng = prng(opts.seed);
  const result: CdbFuzzResult = { sent: 0, statuses: new Map(), aborted: [], internalErrors: [], hangs: [], deadSession: undefined };
  for (let variant = 0; variant < opts.variantsPerOpcode; variant++) {
    for (let opcode = 0; opcode < 256; opcode++) {
      const cdb = fuzzCdb(rng, opcode, variant);
      const data = sessionDataFor(rng);
      const what = `CDB ${cdb.toString('hex')} ${data.dataOut ? `data-out ${data.dataOut.length}` : `read ${data.readLength ?? 0}`}`;
      result.sent++;
      const answer = initiator.scsi(cdb, { ...data, lun: opts.lun ?? 0 });
      answer.catch(() => {});
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), opts.answerTimeoutMs)));
      let outcome;
      try {
        outcome = await Promise.race([answer, timeout]);
      } catch (err) {
        result.deadSession = `${what}: ${(err as Error).message}`;
        return result;
      } finally {
        clearTimeout(timer);
      }
      if (outcome === 'timeout') {
        const reset = initiator.lunReset(opts.lun ?? 0);
        reset.catch(() => {});
        const resetOutcome = await Promise.race([reset, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), opts.answerTimeoutMs)))]).catch(() => 'dead' as const);
        clearTimeout(timer);
        if (resetOutcome === 0) result.aborted.push(what);
        else {
          result.hangs.push(what);
          return result; // the session cannot be trusted any more
        }
        continue;
      }
      result.statuses.set(outcome.status, (result.statuses.get(outcome.status) ?? 0) + 1);
      const sense = outcome.sense;
      // SPC-4 4.5.2 descriptor format (72h/73h) or 4.5.3 fixed format.
      const descriptor = ((sense[0] ?? 0) & 0x7f) >= 0x72;
      const key = (descriptor ? sense[1]! : sense[2]!) & 0x0f;
      const asc = descriptor ? sense[2] : sense[12];
      if (outcome.status === 0x02 && sense.length >= 4 && key === SENSE_KEY_HARDWARE_ERROR && asc === ASC_INTERNAL_TARGET_FAILURE) {
        result.internalErrors.push(what);
      }
    }
  }
  return result;
}
