// Full feature phase (RFC 7143 4.2.2, 11.3–11.9, 11.14–11.19): SCSI command flows, the CmdSN
// window, NOP, task management, logout, Reject — in-process over stream.duplexPair().
import t from 'tap';
import { ScsiStatus, type TargetConfig } from '../../iscsi/device.js';
import { serializePdu } from '../../iscsi/framer.js';
import { Opcode, RESERVED_TAG, RejectReason, type DataOut } from '../../iscsi/pdu/types.js';
import { MemoryLun } from '../helpers/memory-lun.js';
import { PduPeer, read10, testServer, write10 } from '../helpers/pdu-peer.js';

const TARGET = 'iqn.2026-11.dev.shelfgate:vol';

function setup(operational: Record<string, string> = {}, extraLuns: Array<[number, MemoryLun]> = []) {
  const lun = new MemoryLun({ blockCount: 1024 });
  const target: TargetConfig = { name: TARGET, luns: new Map<number, MemoryLun>([[0, lun], ...extraLuns]) };
  const server = testServer([target]);
  const peer = new PduPeer(server);
  return { lun, target, server, peer, login: () => peer.loginNormal(TARGET, operational) };
}

function pattern(lengthBytes: number, seed: number): Buffer {
  const b = Buffer.alloc(lengthBytes);
  for (let i = 0; i < lengthBytes; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** Fixed format sense (after the 2-byte SenseLength) as "key/asc/ascq" hex. */
function senseOf(data: Buffer): string {
  const sense = data.subarray(2, 2 + data.readUInt16BE(0));
  return [sense[2]! & 0x0f, sense[12]!, sense[13]!].map((n) => n.toString(16).padStart(2, '0')).join('/');
}

t.test('Read10.DataInSplit', async (t) => {
  const { lun, peer, login } = setup({ MaxRecvDataSegmentLength: '512', MaxBurstLength: '1024' });
  await login();
  pattern(2048, 3).copy(lun.data, 10 * 512);
  peer.scsiCommand({ cdb: read10(10, 4), read: true, expectedDataTransferLength: 2048, itt: 7 });
  const got: Buffer[] = [];
  const shape: string[] = [];
  for (let i = 0; i < 4; i++) {
    const d = await peer.expect(Opcode.SCSI_DATA_IN);
    got.push(d.data);
    shape.push(`${d.dataSN}@${d.bufferOffset}+${d.data.length}${d.final ? 'F' : ''}${d.statusPresent ? 'S' : ''}`);
    t.equal(d.itt, 7);
  }
  t.same(shape, ['0@0+512', '1@512+512F', '2@1024+512', '3@1536+512FS'], 'PDUs of MaxRecvDataSegmentLength in MaxBurstLength sequences');
  t.equal(Buffer.concat(got).toString('hex'), pattern(2048, 3).toString('hex'));
  peer.destroy();
});

t.test('Read10.StatusInLastDataIn', async (t) => {
  const { peer, login } = setup();
  const { final } = await login();
  peer.expStatSN = final.statSN + 1;
  peer.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 512, itt: 1 });
  const d = await peer.expect(Opcode.SCSI_DATA_IN);
  t.ok(d.final && d.statusPresent);
  t.equal(d.status, ScsiStatus.GOOD);
  t.equal(d.statSN, final.statSN + 1, 'StatSN advances with the status');
  t.equal(d.expCmdSN, 2);
  t.equal(d.maxCmdSN, 2 + 127, 'the completed command frees its window slot');
  t.notOk(d.underflow || d.overflow);
  peer.destroy();
});

t.test('iSCSIResiduals.Read10', async (t) => {
  const { peer, login } = setup();
  await login();
  // EDTL larger than the CDB's transfer: underflow.
  peer.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 1024, itt: 1 });
  const under = await peer.expect(Opcode.SCSI_DATA_IN);
  t.equal(under.data.length, 512);
  t.ok(under.statusPresent && under.underflow);
  t.equal(under.residualCount, 512);
  // EDTL smaller: overflow, only EDTL bytes sent.
  peer.scsiCommand({ cdb: read10(0, 2), read: true, expectedDataTransferLength: 200, itt: 2 });
  const over = await peer.expect(Opcode.SCSI_DATA_IN);
  t.equal(over.data.length, 200);
  t.ok(over.statusPresent && over.overflow);
  t.equal(over.residualCount, 824);
  // EDTL 0: no data at all, SCSI Response with overflow.
  peer.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 0, itt: 3 });
  const none = await peer.expect(Opcode.SCSI_RESPONSE);
  t.ok(none.overflow);
  t.equal(none.residualCount, 512);
  peer.destroy();
});

t.test('Write10.ImmediateData', async (t) => {
  const { lun, peer, login } = setup();
  await login();
  const data = pattern(1024, 5);
  peer.scsiCommand({ cdb: write10(4, 2), write: true, expectedDataTransferLength: 1024, data, itt: 3 });
  const r = await peer.expect(Opcode.SCSI_RESPONSE);
  t.equal(r.status, ScsiStatus.GOOD);
  t.equal(r.itt, 3);
  t.equal(r.data.length, 0);
  t.equal(lun.data.subarray(4 * 512, 6 * 512).toString('hex'), data.toString('hex'));
  peer.destroy();
});

t.test('Write10.UnsolicitedThenR2T', async (t) => {
  const { lun, peer, login } = setup({ InitialR2T: 'No', FirstBurstLength: '1024', MaxBurstLength: '1024', MaxOutstandingR2T: '2' });
  await login();
  const data = pattern(4096, 9);
  peer.scsiCommand({ cdb: write10(0, 8), write: true, final: false, expectedDataTransferLength: 4096, data: data.subarray(0, 512), itt: 5 });
  peer.dataOut({ itt: 5, bufferOffset: 512, data: data.subarray(512, 1024), final: true, dataSN: 0 });
  const r2ts = [await peer.expect(Opcode.R2T), await peer.expect(Opcode.R2T)];
  t.same(
    r2ts.map((r) => `${r.r2tSN}@${r.bufferOffset}+${r.desiredDataTransferLength}`),
    ['0@1024+1024', '1@2048+1024'],
    'R2Ts after the first burst, MaxBurstLength each, MaxOutstandingR2T at a time',
  );
  t.not(r2ts[0]!.ttt, RESERVED_TAG);
  for (const r of r2ts) {
    peer.dataOut({ itt: 5, ttt: r.ttt, bufferOffset: r.bufferOffset, data: data.subarray(r.bufferOffset, r.bufferOffset + 512), final: false, dataSN: 0 });
    peer.dataOut({ itt: 5, ttt: r.ttt, bufferOffset: r.bufferOffset + 512, data: data.subarray(r.bufferOffset + 512, r.bufferOffset + 1024), final: true, dataSN: 1 });
  }
  const last = await peer.expect(Opcode.R2T);
  t.equal(`${last.r2tSN}@${last.bufferOffset}+${last.desiredDataTransferLength}`, '2@3072+1024');
  peer.dataOut({ itt: 5, ttt: last.ttt, bufferOffset: 3072, data: data.subarray(3072), final: true, dataSN: 0 });
  const resp = await peer.expect(Opcode.SCSI_RESPONSE);
  t.equal(resp.status, ScsiStatus.GOOD);
  t.equal(resp.expDataSN, 3, 'ExpDataSN counts the R2Ts of a write');
  t.equal(lun.data.subarray(0, 4096).toString('hex'), data.toString('hex'));
  peer.destroy();
});

/** The Data-Out buffers the LU was handed. */
function captureDataOut(lun: MemoryLun): Buffer[] {
  const seen: Buffer[] = [];
  const execute = lun.execute.bind(lun);
  lun.execute = (req) => {
    if (req.dataOut !== null) seen.push(req.dataOut);
    return execute(req);
  };
  return seen;
}

const dataOutPdu = (fields: Partial<DataOut> & { data: Buffer }): DataOut => ({
  opcode: Opcode.SCSI_DATA_OUT, immediate: false, ahs: Buffer.alloc(0), final: true, lun: 0n, itt: 1,
  ttt: RESERVED_TAG, expStatSN: 0, dataSN: 0, bufferOffset: 0, ...fields,
});

t.test('Write10.DataOutInOneBuffer: immediate data and Data-Out land in one EDTL buffer, in small chunks', async (t) => {
  for (const digests of [false, true]) {
    const { lun, peer, login } = setup({ InitialR2T: 'Yes', HeaderDigest: digests ? 'CRC32C' : 'None', DataDigest: digests ? 'CRC32C' : 'None' });
    const seen = captureDataOut(lun);
    await login();
    if (digests) peer.setDigests(true, true);
    const data = pattern(16384, 3);
    // Immediate data, then the rest in two Data-Out PDUs, every PDU fed in 1000-byte pieces.
    const cmd = peer.scsiCommand({ cdb: write10(16, 32), write: true, expectedDataTransferLength: 16384, data: data.subarray(0, 4096), itt: 21 });
    t.equal(cmd.data.length, 4096);
    const r2t = await peer.expect(Opcode.R2T);
    t.equal(`${r2t.bufferOffset}+${r2t.desiredDataTransferLength}`, '4096+12288');
    const wire = Buffer.concat([
      ...serializePdu(dataOutPdu({ itt: 21, ttt: r2t.ttt, bufferOffset: 4096, data: data.subarray(4096, 10000), final: false, dataSN: 0 }), { headerDigest: digests, dataDigest: digests }),
      ...serializePdu(dataOutPdu({ itt: 21, ttt: r2t.ttt, bufferOffset: 10000, data: data.subarray(10000), final: true, dataSN: 1 }), { headerDigest: digests, dataDigest: digests }),
    ]);
    for (let at = 0; at < wire.length; at += 1000) peer.sendRaw(Buffer.from(wire.subarray(at, at + 1000)));
    t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).status, ScsiStatus.GOOD);
    t.equal(seen.length, 1);
    const dataOut = seen[0]!;
    t.ok(dataOut.equals(data), `the LU got all the data (digests ${digests})`);
    t.ok(dataOut.byteOffset === 0 && dataOut.buffer.byteLength === 16384, 'one buffer of exactly the EDTL');
    t.equal(lun.data.subarray(16 * 512, 48 * 512).toString('hex'), data.toString('hex'));
    peer.destroy();
  }
});

t.test('DataOut.BeyondCompletion: an extra Data-Out still arriving keeps the buffer from the LU', async (t) => {
  const { lun, peer, login } = setup({ InitialR2T: 'Yes', ImmediateData: 'No' });
  await login();
  const data = pattern(8192, 4);
  peer.scsiCommand({ cdb: write10(0, 16), write: true, expectedDataTransferLength: 8192, itt: 22 });
  const r2t = await peer.expect(Opcode.R2T);
  const mode = { headerDigest: false, dataDigest: false };
  const complete = Buffer.concat(serializePdu(dataOutPdu({ itt: 22, ttt: r2t.ttt, data, final: true }), mode));
  // A second copy of the last 4 KiB, for the same R2T: placed while the R2T was outstanding, its
  // header in the same chunk as the PDU that completes the data, its data still coming.
  const extra = Buffer.concat(serializePdu(dataOutPdu({ itt: 22, ttt: r2t.ttt, bufferOffset: 4096, data: Buffer.alloc(4096, 0xee), dataSN: 1 }), mode));
  peer.sendRaw(Buffer.concat([complete, extra.subarray(0, 48 + 100)]));
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve)); // let the target take the chunk
  t.equal(lun.executed.filter((cdb) => cdb[0] === 0x2a).length, 0, 'the write has not run while its buffer is being written');
  peer.sendRaw(extra.subarray(48 + 100));
  await peer.expect(Opcode.REJECT);
  const resp = await peer.expect(Opcode.SCSI_RESPONSE);
  t.equal(resp.itt, 22);
  t.equal(resp.status, ScsiStatus.CHECK_CONDITION);
  t.equal(senseOf(resp.data), '0b/4b/05', 'ABORTED COMMAND, DATA OFFSET ERROR');
  t.equal(lun.executed.filter((cdb) => cdb[0] === 0x2a).length, 0, 'never ran');
  peer.destroy();
});

t.test('Write10.InitialR2TWithoutImmediateData', async (t) => {
  const { lun, peer, login } = setup({ InitialR2T: 'Yes', ImmediateData: 'No' });
  await login();
  const data = pattern(1024, 1);
  peer.scsiCommand({ cdb: write10(8, 2), write: true, expectedDataTransferLength: 1024, itt: 6 });
  const r2t = await peer.expect(Opcode.R2T);
  t.equal(`${r2t.bufferOffset}+${r2t.desiredDataTransferLength}`, '0+1024');
  peer.dataOut({ itt: 6, ttt: r2t.ttt, bufferOffset: 0, data, final: true });
  t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).status, ScsiStatus.GOOD);
  t.equal(lun.data.subarray(8 * 512, 10 * 512).toString('hex'), data.toString('hex'));
  peer.destroy();
});

t.test('Write10.ImmediateDataNotNegotiated is rejected', async (t) => {
  const { peer, login } = setup({ ImmediateData: 'No' });
  await login();
  peer.scsiCommand({ cdb: write10(0, 1), write: true, expectedDataTransferLength: 512, data: pattern(512, 0), itt: 1 });
  const rej = await peer.expect(Opcode.REJECT);
  t.equal(rej.reason, RejectReason.PROTOCOL_ERROR);
  t.equal(rej.data.length, 48, 'the Reject carries the rejected header');
  t.equal(rej.data[0]! & 0x3f, Opcode.SCSI_COMMAND);
  // The rejected command used up its CmdSN: the next one runs.
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 0]), itt: 2 });
  t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).itt, 2);
  peer.destroy();
});

t.test('DataOut.BadOffset gets Reject and CHECK CONDITION', async (t) => {
  const { peer, login } = setup({ InitialR2T: 'Yes', ImmediateData: 'No' });
  await login();
  peer.scsiCommand({ cdb: write10(0, 2), write: true, expectedDataTransferLength: 1024, itt: 9 });
  const r2t = await peer.expect(Opcode.R2T);
  peer.dataOut({ itt: 9, ttt: r2t.ttt, bufferOffset: 900, data: pattern(512, 0), final: true });
  const rej = await peer.expect(Opcode.REJECT);
  t.equal(rej.reason, RejectReason.INVALID_PDU_FIELD);
  const resp = await peer.expect(Opcode.SCSI_RESPONSE);
  t.equal(resp.status, ScsiStatus.CHECK_CONDITION);
  t.equal(senseOf(resp.data), '0b/4b/05', 'ABORTED COMMAND, DATA OFFSET ERROR');
  peer.destroy();
});

t.test('DataOut.WrongDataSN fails the command', async (t) => {
  const { peer, login } = setup({ InitialR2T: 'Yes', ImmediateData: 'No' });
  await login();
  peer.scsiCommand({ cdb: write10(0, 2), write: true, expectedDataTransferLength: 1024, itt: 9 });
  const r2t = await peer.expect(Opcode.R2T);
  peer.dataOut({ itt: 9, ttt: r2t.ttt, bufferOffset: 0, data: pattern(512, 0), final: false, dataSN: 1 });
  await peer.expect(Opcode.REJECT);
  t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).status, ScsiStatus.CHECK_CONDITION);
  peer.destroy();
});

t.test('Lun.NotSupported', async (t) => {
  const { peer, login } = setup();
  await login();
  peer.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 512, lun: 0x0005000000000000n, itt: 1 });
  const r = await peer.expect(Opcode.SCSI_RESPONSE);
  t.equal(r.status, ScsiStatus.CHECK_CONDITION);
  t.equal(senseOf(r.data), '05/25/00', 'ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED');
  t.ok(r.underflow);
  t.equal(r.residualCount, 512);
  // INQUIRY to the same LUN: peripheral qualifier 011b, device type 1Fh.
  peer.scsiCommand({ cdb: Buffer.from([0x12, 0, 0, 0, 96, 0]), read: true, expectedDataTransferLength: 96, lun: 0x0005000000000000n, itt: 2 });
  const inq = await peer.expect(Opcode.SCSI_DATA_IN);
  t.equal(inq.data[0], 0x7f);
  t.equal(inq.status, ScsiStatus.GOOD);
  peer.destroy();
});

t.test('ReportLuns', async (t) => {
  const { peer, login } = setup({}, [[300, new MemoryLun()], [1, new MemoryLun()]]);
  await login();
  peer.scsiCommand({ cdb: Buffer.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]), read: true, expectedDataTransferLength: 256, itt: 1 });
  const d = await peer.expect(Opcode.SCSI_DATA_IN);
  t.equal(
    d.data.toString('hex'),
    '00000018' + '00000000' + '0000000000000000' + '0001000000000000' + '412c000000000000',
    'LUN 0 and 1 peripheral addressing, LUN 300 flat space addressing',
  );
  peer.scsiCommand({ cdb: Buffer.from([0xa0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]), read: true, expectedDataTransferLength: 256, itt: 2 });
  t.equal((await peer.expect(Opcode.SCSI_DATA_IN)).data.toString('hex'), '0000000000000000', 'no well known LUNs');
  peer.scsiCommand({ cdb: Buffer.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]), read: true, expectedDataTransferLength: 8, itt: 3 });
  const bad = await peer.expect(Opcode.SCSI_RESPONSE);
  t.equal(senseOf(bad.data), '05/24/00', 'allocation length below 16: INVALID FIELD IN CDB');
  peer.scsiCommand({ cdb: Buffer.from([0xa0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0]), read: true, expectedDataTransferLength: 256, itt: 4 });
  t.equal(senseOf((await peer.expect(Opcode.SCSI_RESPONSE)).data), '05/24/00', 'unknown SELECT REPORT');
  peer.destroy();
});

t.test('LogicalUnit.Exception becomes HARDWARE ERROR', async (t) => {
  const { lun, peer, login } = setup();
  await login();
  lun.failWith = new Error('disk on fire');
  peer.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 512, itt: 1 });
  const r = await peer.expect(Opcode.SCSI_RESPONSE);
  t.equal(r.status, ScsiStatus.CHECK_CONDITION);
  t.equal(senseOf(r.data), '04/44/00');
  peer.destroy();
});

t.test('CmdSN.InOrderDelivery', async (t) => {
  const { lun, peer, login } = setup();
  await login();
  // CmdSN 2 arrives before CmdSN 1: it waits for 1.
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 2]), itt: 2, cmdSN: 2 });
  peer.nopOut({ itt: 0x77, data: Buffer.from('ping') });
  const nop = await peer.expect(Opcode.NOP_IN);
  t.equal(nop.data.toString(), 'ping', 'an immediate NOP-Out is answered at once');
  t.equal(nop.expCmdSN, 1, 'CmdSN 1 is still expected');
  t.equal(lun.executed.length, 0, 'CmdSN 2 waits for CmdSN 1');
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 1]), itt: 1, cmdSN: 1 });
  const a = await peer.expect(Opcode.SCSI_RESPONSE);
  const b = await peer.expect(Opcode.SCSI_RESPONSE);
  t.same([a.itt, b.itt], [1, 2]);
  t.same(lun.executed.map((c) => c[5]), [1, 2], 'delivered in CmdSN order');
  t.equal(b.expCmdSN, 3);
  // Outside the window and a duplicate: silently ignored.
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 9]), itt: 9, cmdSN: 3 + 500 });
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 8]), itt: 8, cmdSN: 1 });
  peer.nopOut({ itt: 0x78 });
  t.equal((await peer.expect(Opcode.NOP_IN)).itt, 0x78);
  t.equal(lun.executed.length, 2);
  peer.destroy();
});

t.test('NopOut.NonImmediate consumes a CmdSN', async (t) => {
  const { peer, login } = setup();
  await login();
  peer.nopOut({ itt: 0x10, immediate: false, cmdSN: 1 });
  const nop = await peer.expect(Opcode.NOP_IN);
  t.equal(nop.itt, 0x10);
  t.equal(nop.ttt, RESERVED_TAG);
  t.equal(nop.expCmdSN, 2);
  peer.destroy();
});

t.test('NopIn.Ping and timeout', async (t) => {
  const lun = new MemoryLun();
  const server = testServer([{ name: TARGET, luns: new Map([[0, lun]]) }], { nopInIntervalMs: 20, nopInTimeoutMs: 50 });
  const peer = new PduPeer(server);
  await peer.loginNormal(TARGET);
  const ping = await peer.expect(Opcode.NOP_IN);
  t.equal(ping.itt, RESERVED_TAG);
  t.not(ping.ttt, RESERVED_TAG, 'a target ping asks for an answer');
  peer.nopOut({ itt: RESERVED_TAG, ttt: ping.ttt });
  const ping2 = await peer.expect(Opcode.NOP_IN);
  t.not(ping2.ttt, ping.ttt);
  t.ok(await peer.closedByTarget(), 'an unanswered ping drops the connection');
  t.same(server.sessionsInfo(), []);
});

t.test('TaskManagement', async (t) => {
  t.test('AbortTask', async (t) => {
    const { lun, peer, login } = setup();
    await login();
    let open!: () => void;
    lun.gate = new Promise((resolve) => (open = resolve));
    peer.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 512, itt: 0x51 });
    peer.taskMgmt({ function: 1, referencedTaskTag: 0x51, refCmdSN: 1, cmdSN: 2 });
    peer.nopOut({ itt: 0x98 });
    t.equal((await peer.expect(Opcode.NOP_IN)).itt, 0x98, 'the TMF response waits for the LU to let go of the task');
    open();
    const r = await peer.expect(Opcode.TASK_MGMT_RESPONSE);
    t.equal(r.response, 0, 'function complete');
    peer.nopOut({ itt: 0x99 });
    t.equal((await peer.next())?.opcode, Opcode.NOP_IN, 'the aborted task sends no response');
    peer.taskMgmt({ function: 1, referencedTaskTag: 0x51, refCmdSN: 1, cmdSN: 2 });
    t.equal((await peer.expect(Opcode.TASK_MGMT_RESPONSE)).response, 1, 'task does not exist');
    peer.destroy();
  });
  t.test('LunReset, unsupported and rejected functions', async (t) => {
    const { lun, peer, login } = setup();
    await login();
    const codes: number[] = [];
    for (const [fn, l] of [[5, 0n], [5, 0x0009000000000000n], [3, 0n], [8, 0n], [6, 0n], [99, 0n]] as Array<[number, bigint]>) {
      peer.taskMgmt({ function: fn, lun: l });
      codes.push((await peer.expect(Opcode.TASK_MGMT_RESPONSE)).response);
    }
    t.same(codes, [0, 2, 5, 4, 0, 255]);
    t.same(lun.resets, ['lun', 'target-warm']);
    peer.destroy();
  });
  t.test('TargetColdReset drops the sessions', async (t) => {
    const { lun, peer, login, server } = setup();
    await login();
    peer.taskMgmt({ function: 7 });
    t.equal((await peer.expect(Opcode.TASK_MGMT_RESPONSE)).response, 0);
    t.ok(await peer.closedByTarget());
    t.same(lun.resets, ['target-cold']);
    t.same(server.sessionsInfo(), []);
  });
});

t.test('Logout.CloseSession', async (t) => {
  const { lun, peer, login, server } = setup();
  await login();
  let open!: () => void;
  lun.gate = new Promise((resolve) => (open = resolve));
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 0]), itt: 1 });
  peer.logout({ reasonCode: 0 });
  setImmediate(open);
  t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).itt, 1, 'outstanding commands complete before the logout');
  const r = await peer.expect(Opcode.LOGOUT_RESPONSE);
  t.equal(r.response, 0);
  t.ok(await peer.closedByTarget());
  t.same(server.sessionsInfo(), []);
  t.equal(lun.lostNexuses.length, 1);
});

t.test('Logout.Reasons', async (t) => {
  const { peer, login } = setup();
  await login();
  peer.logout({ reasonCode: 2 });
  t.equal((await peer.expect(Opcode.LOGOUT_RESPONSE)).response, 2, 'recovery not supported');
  peer.logout({ reasonCode: 1, cid: 7 });
  t.equal((await peer.expect(Opcode.LOGOUT_RESPONSE)).response, 1, 'CID not found');
  peer.logout({ reasonCode: 1, cid: 1 });
  t.equal((await peer.expect(Opcode.LOGOUT_RESPONSE)).response, 0);
  t.ok(await peer.closedByTarget());
});

t.test('Reject.Snack', async (t) => {
  const { peer, login } = setup();
  await login();
  peer.send({ opcode: Opcode.SNACK_REQUEST, immediate: false, ahs: Buffer.alloc(0), data: Buffer.alloc(0), type: 0, lun: 0n, itt: 1, ttt: RESERVED_TAG, expStatSN: 0, begRun: 0, runLength: 0 });
  const r = await peer.expect(Opcode.REJECT);
  t.equal(r.reason, RejectReason.COMMAND_NOT_SUPPORTED);
  t.equal(r.data[0]! & 0x3f, Opcode.SNACK_REQUEST);
  peer.destroy();
});

t.test('Reject.DataDigestError', async (t) => {
  const { peer, login } = setup({ HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' });
  const { final } = await login();
  t.equal(final.data.toString().includes('DataDigest=CRC32C'), true);
  peer.setDigests(true, true);
  // A good command with digests, then one with its data digest corrupted.
  peer.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 512, itt: 1 });
  t.equal((await peer.expect(Opcode.SCSI_DATA_IN)).status, ScsiStatus.GOOD);
  const before = peer.cmdSN;
  const cmd = peer.scsiCommand({ cdb: write10(0, 1), write: true, expectedDataTransferLength: 512, data: pattern(512, 1), itt: 2, cmdSN: before });
  peer.cmdSN = before + 1;
  t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).status, ScsiStatus.GOOD);
  const parts = serializePdu(
    { ...cmd, itt: 3, cmdSN: peer.cmdSN++, data: pattern(512, 2) },
    { headerDigest: true, dataDigest: true },
  );
  const wire = Buffer.concat(parts);
  wire[wire.length - 1] ^= 0xff;
  peer.sendRaw(wire);
  const rej = await peer.expect(Opcode.REJECT);
  t.equal(rej.reason, RejectReason.DATA_DIGEST_ERROR);
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 0]), itt: 4 });
  t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).itt, 4, 'the window moved past the rejected command');
  peer.destroy();
});

t.test('DiscoverySession.RejectsScsiCommands', async (t) => {
  const { server } = setup();
  const peer = new PduPeer(server);
  await peer.loginDiscovery();
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 0]), itt: 1 });
  t.equal((await peer.expect(Opcode.REJECT)).reason, RejectReason.PROTOCOL_ERROR);
  peer.destroy();
});

t.test('Server.CloseAsksForLogout', async (t) => {
  const { peer, login, server } = setup();
  await login();
  const closing = server.close({ graceMs: 3000 });
  const msg = await peer.expect(Opcode.ASYNC_MESSAGE);
  t.equal(msg.asyncEvent, 1, 'AsyncEvent 1: logout request');
  t.equal(msg.parameter3, 3);
  peer.logout({ reasonCode: 0 });
  t.equal((await peer.expect(Opcode.LOGOUT_RESPONSE)).response, 0);
  await closing;
  t.same(server.sessionsInfo(), []);
});

t.test('Reject.UndecodablePdu and Login in full feature phase', async (t) => {
  const { peer, login } = setup();
  await login();
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x1e; // not an opcode of RFC 7143 11.1.1
  bhs[1] = 0x80;
  peer.sendRaw(bhs);
  const r = await peer.expect(Opcode.REJECT);
  t.equal(r.data.toString('hex'), bhs.toString('hex'), 'the Reject carries the header as received');
  peer.login({ keys: { InitiatorName: 'iqn.2026-11.test:initiator' } });
  t.equal((await peer.expect(Opcode.REJECT)).reason, RejectReason.PROTOCOL_ERROR);
  peer.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 0]), itt: 1 });
  t.equal((await peer.expect(Opcode.SCSI_RESPONSE)).status, ScsiStatus.GOOD, 'the connection carries on');
  peer.destroy();
});
