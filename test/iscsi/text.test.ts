// Text Requests (RFC 7143 11.10/11.11) and SendTargets discovery (13.3, Appendix C).
import t from 'tap';
import type { TargetConfig } from '../../iscsi/device.js';
import { sendTargets, targetAddress } from '../../iscsi/discovery.js';
import { Opcode, RESERVED_TAG, RejectReason } from '../../iscsi/pdu/types.js';
import { MemoryLun } from '../helpers/memory-lun.js';
import { PduPeer, parseKeys, testServer } from '../helpers/pdu-peer.js';

const INITIATOR = 'iqn.2026-11.test:initiator';

function targets(count: number): TargetConfig[] {
  const list: TargetConfig[] = [];
  for (let i = 0; i < count; i++) {
    list.push({ name: `iqn.2026-11.dev.shelfgate:gw-volume-${String(i).padStart(3, '0')}`, luns: new Map([[0, new MemoryLun()]]) });
  }
  list.push({ name: 'iqn.2026-11.dev.shelfgate:private', luns: new Map([[0, new MemoryLun()]]), allowedInitiators: ['iqn.2026-11.test:other'] });
  return list;
}

/** All Text Responses of one exchange, following TTT continuations (RFC 7143 11.11.4). */
async function textExchange(peer: PduPeer, keys: Record<string, string>, itt = 0x40): Promise<{ text: Buffer; pdus: number }> {
  peer.text({ itt, keys });
  const parts: Buffer[] = [];
  for (let pdus = 1; ; pdus++) {
    const r = await peer.expect(Opcode.TEXT_RESPONSE);
    parts.push(r.data);
    if (r.final) {
      if (r.ttt !== RESERVED_TAG) throw new Error('a final Text Response has TTT 0xffffffff');
      return { text: Buffer.concat(parts), pdus };
    }
    peer.text({ itt, ttt: r.ttt });
  }
}

function pairs(text: Buffer): Array<[string, string]> {
  return text.toString().split('\0').filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=');
    return [p.slice(0, eq), p.slice(eq + 1)];
  });
}

t.test('SendTargets.All in a discovery session', async (t) => {
  const peer = new PduPeer(testServer(targets(2)), { address: '192.0.2.10', port: 3260 });
  await peer.loginDiscovery(INITIATOR);
  const { text } = await textExchange(peer, { SendTargets: 'All' });
  t.same(pairs(text), [
    ['TargetName', 'iqn.2026-11.dev.shelfgate:gw-volume-000'],
    ['TargetAddress', '192.0.2.10:3260,1'],
    ['TargetName', 'iqn.2026-11.dev.shelfgate:gw-volume-001'],
    ['TargetAddress', '192.0.2.10:3260,1'],
  ], 'only the targets this initiator may log in to');
  const one = await textExchange(peer, { SendTargets: 'iqn.2026-11.dev.shelfgate:gw-volume-001' });
  t.equal(pairs(one.text).length, 2);
  const hidden = await textExchange(peer, { SendTargets: 'iqn.2026-11.dev.shelfgate:private' });
  t.equal(hidden.text.length, 0);
  peer.destroy();
});

t.test('SendTargets.LongAnswerContinues', async (t) => {
  const peer = new PduPeer(testServer(targets(100)));
  peer.login({ csg: 1, nsg: 3, keys: { InitiatorName: INITIATOR, SessionType: 'Discovery', MaxRecvDataSegmentLength: '512' } });
  await peer.loginResponse();
  const { text, pdus } = await textExchange(peer, { SendTargets: 'All' });
  t.ok(pdus > 1, `answer spread over ${pdus} Text Responses`);
  const p = pairs(text);
  t.equal(p.length, 200);
  t.same(p[199], ['TargetAddress', '127.0.0.1:3260,1']);
  peer.destroy();
});

t.test('SendTargets in a normal session reports its own target', async (t) => {
  const list = targets(3);
  const peer = new PduPeer(testServer(list));
  await peer.loginNormal(list[1]!.name, {}, INITIATOR);
  const { text } = await textExchange(peer, { SendTargets: '' });
  t.same(pairs(text), [['TargetName', list[1]!.name], ['TargetAddress', '127.0.0.1:3260,1']]);
  peer.destroy();
});

t.test('Text.RequestSpanningPdus', async (t) => {
  const peer = new PduPeer(testServer(targets(1)));
  await peer.loginDiscovery(INITIATOR);
  const data = Buffer.from('SendTargets=All\0');
  peer.text({ itt: 0x41, data: data.subarray(0, 5), final: false, continue: true });
  const ack = await peer.expect(Opcode.TEXT_RESPONSE);
  t.notOk(ack.final);
  t.equal(ack.data.length, 0);
  peer.text({ itt: 0x41, ttt: ack.ttt, data: data.subarray(5) });
  const r = await peer.expect(Opcode.TEXT_RESPONSE);
  t.ok(r.final);
  t.equal(parseKeys(r.data).get('TargetName'), 'iqn.2026-11.dev.shelfgate:gw-volume-000');
  peer.destroy();
});

t.test('Text.UnknownTtt is rejected', async (t) => {
  const peer = new PduPeer(testServer(targets(1)));
  await peer.loginDiscovery(INITIATOR);
  peer.text({ itt: 0x42, ttt: 0x1234 });
  t.equal((await peer.expect(Opcode.REJECT)).reason, RejectReason.INVALID_PDU_FIELD);
  peer.destroy();
});

t.test('Text.Negotiation in full feature phase', async (t) => {
  const peer = new PduPeer(testServer(targets(1)));
  await peer.loginDiscovery(INITIATOR);
  const { text } = await textExchange(peer, { MaxRecvDataSegmentLength: '4096', MaxBurstLength: '4096', 'X-vendor': '1' });
  t.same(pairs(text), [['MaxRecvDataSegmentLength', '262144'], ['MaxBurstLength', 'Reject'], ['X-vendor', 'NotUnderstood']]);
  peer.destroy();
});

t.test('TargetAddress formats', async (t) => {
  t.equal(targetAddress({ address: '10.1.2.3', port: 3260, portalGroupTag: 1 }), '10.1.2.3:3260,1');
  t.equal(targetAddress({ address: '::ffff:10.1.2.3', port: 3260, portalGroupTag: 2 }), '10.1.2.3:3260,2');
  t.equal(targetAddress({ address: 'fd00::1', port: 13260, portalGroupTag: 1 }), '[fd00::1]:13260,1');
});

t.test('SendTargets.AdvertisedPortals: every advertised portal, in order, for each target', async (t) => {
  const list = targets(2);
  const registry = { list: () => list, get: (name: string) => list.find((target) => target.name === name) };
  const portals = [
    { address: '192.0.2.10', port: 13260, portalGroupTag: 1 },
    { address: 'gw.example.com', port: 3260, portalGroupTag: 1 },
  ];
  // RFC 7143 Appendix C: TargetName, then each of its TargetAddress values.
  t.same(sendTargets({ registry, initiatorName: INITIATOR, value: 'All', portals }), [
    ['TargetName', list[0]!.name],
    ['TargetAddress', '192.0.2.10:13260,1'],
    ['TargetAddress', 'gw.example.com:3260,1'],
    ['TargetName', list[1]!.name],
    ['TargetAddress', '192.0.2.10:13260,1'],
    ['TargetAddress', 'gw.example.com:3260,1'],
  ]);
});
