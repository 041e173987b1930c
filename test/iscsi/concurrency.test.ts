// Many sessions and LUNs at once; one connection's protocol errors never touch another; a peer
// that stops reading does not stop the others (RFC 7143 4.2.2 sessions are independent).
import t from 'tap';
import { ScsiStatus, type TargetConfig } from '../../iscsi/device.js';
import { Opcode } from '../../iscsi/pdu/types.js';
import { MemoryLun } from '../helpers/memory-lun.js';
import { PduPeer, read10, testServer, write10 } from '../helpers/pdu-peer.js';

function fill(lengthBytes: number, seed: number): Buffer {
  const b = Buffer.alloc(lengthBytes);
  for (let i = 0; i < lengthBytes; i += 4) b.writeUInt32BE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

t.test('ManySessions.MixedReadsAndWrites', async (t) => {
  const targets: TargetConfig[] = [];
  for (let i = 0; i < 4; i++) {
    targets.push({
      name: `iqn.2026-11.dev.shelfgate:many-${i}`,
      luns: new Map([[0, new MemoryLun({ blockCount: 4096 })], [1, new MemoryLun({ blockCount: 4096 })]]),
    });
  }
  const server = testServer(targets);
  const sessions = 16;
  const commandsPerSession = 8;
  await Promise.all(
    Array.from({ length: sessions }, async (_, s) => {
      const peer = new PduPeer(server);
      const target = targets[s % targets.length]!;
      const lunNumber = (s >> 2) % 2;
      const isid = Buffer.from([0x80, 0, 0, 0, 0, s]);
      const { final } = await peer.loginNormal(target.name, { MaxRecvDataSegmentLength: '8192', InitialR2T: 'No', FirstBurstLength: '8192' }, `iqn.2026-11.test:host-${s}`, isid);
      t.equal(final.statusClass, 0);
      // Each session writes its own region with immediate + unsolicited data, then reads it back.
      const lba = (s >> 3) * 1024 + (s % 8) * 64;
      const blocks = 32;
      const data = fill(blocks * 512, s);
      const lun = BigInt(lunNumber) << 48n;
      for (let c = 0; c < commandsPerSession; c++) {
        const part = data.subarray((c * blocks * 512) / commandsPerSession, ((c + 1) * blocks * 512) / commandsPerSession);
        const partLba = lba + (c * blocks) / commandsPerSession;
        const itt = 0x100 + c;
        peer.scsiCommand({ cdb: write10(partLba, part.length / 512), write: true, final: false, lun, expectedDataTransferLength: part.length, data: part.subarray(0, 512), itt });
        peer.dataOut({ itt, lun, bufferOffset: 512, data: part.subarray(512), final: true });
      }
      for (let c = 0; c < commandsPerSession; c++) {
        const r = await peer.expect(Opcode.SCSI_RESPONSE);
        t.equal(r.status, ScsiStatus.GOOD);
      }
      peer.scsiCommand({ cdb: read10(lba, blocks), read: true, lun, expectedDataTransferLength: blocks * 512, itt: 0x999 });
      const parts: Buffer[] = [];
      for (;;) {
        const d = await peer.expect(Opcode.SCSI_DATA_IN);
        parts.push(d.data);
        if (d.statusPresent) break;
      }
      t.equal(Buffer.concat(parts).equals(data), true, `session ${s} reads back what it wrote`);
      peer.logout();
      t.equal((await peer.expect(Opcode.LOGOUT_RESPONSE)).response, 0);
    }),
  );
  t.same(server.sessionsInfo(), []);
});

t.test('OneConnectionFramingErrorLeavesOthersAlone', async (t) => {
  const target: TargetConfig = { name: 'iqn.2026-11.dev.shelfgate:iso', luns: new Map([[0, new MemoryLun()]]) };
  const server = testServer([target]);
  const good = new PduPeer(server);
  await good.loginNormal(target.name, {}, 'iqn.2026-11.test:good');
  const bad = new PduPeer(server);
  await bad.loginNormal(target.name, {}, 'iqn.2026-11.test:bad');
  // A BHS claiming a 16 MiB data segment: beyond MaxRecvDataSegmentLength, framing is lost.
  const bhs = Buffer.alloc(48);
  bhs[0] = Opcode.SCSI_COMMAND;
  bhs[5] = 0xff;
  bhs[6] = 0xff;
  bhs[7] = 0xff;
  bad.sendRaw(bhs);
  t.ok(await bad.closedByTarget(), 'the offending connection is dropped');
  good.scsiCommand({ cdb: Buffer.from([0, 0, 0, 0, 0, 0]), itt: 1 });
  t.equal((await good.expect(Opcode.SCSI_RESPONSE)).status, ScsiStatus.GOOD, 'the other session carries on');
  t.same(server.sessionsInfo().map((s) => s.initiatorName), ['iqn.2026-11.test:good']);
  good.destroy();
});

t.test('SlowReader.DoesNotBlockOthers', async (t) => {
  const lun = new MemoryLun({ blockCount: 65536 });
  const target: TargetConfig = { name: 'iqn.2026-11.dev.shelfgate:slow', luns: new Map([[0, lun]]) };
  const server = testServer([target]);
  const slow = new PduPeer(server);
  await slow.loginNormal(target.name, { MaxRecvDataSegmentLength: '262144' }, 'iqn.2026-11.test:slow');
  const fast = new PduPeer(server);
  await fast.loginNormal(target.name, {}, 'iqn.2026-11.test:fast');
  fill(32 * 1024 * 1024, 1).copy(lun.data);
  slow.stream.pause();
  // 16 reads of 2 MiB that the slow peer does not read for now.
  for (let i = 0; i < 16; i++) {
    slow.scsiCommand({ cdb: read10(i * 4096, 4096), read: true, expectedDataTransferLength: 4096 * 512, itt: 0x10 + i });
  }
  fast.scsiCommand({ cdb: read10(0, 1), read: true, expectedDataTransferLength: 512, itt: 1 });
  const d = await fast.expect(Opcode.SCSI_DATA_IN);
  t.equal(d.status, ScsiStatus.GOOD);
  slow.stream.resume();
  let bytes = 0;
  let statuses = 0;
  while (statuses < 16) {
    const pdu = await slow.expect(Opcode.SCSI_DATA_IN);
    bytes += pdu.data.length;
    if (pdu.statusPresent) statuses++;
  }
  t.equal(bytes, 16 * 4096 * 512, 'all data arrives once the reader reads again');
  slow.destroy();
  fast.destroy();
});
