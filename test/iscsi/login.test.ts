// Login phase (RFC 7143 6.3, 11.12, 11.13), CHAP (12.1.3) and operational negotiation (6, 13),
// in-process over stream.duplexPair().
import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import type { TargetConfig } from '../../iscsi/device.js';
import { Negotiator, parseTextData } from '../../iscsi/negotiation.js';
import { LoginStatus, Opcode } from '../../iscsi/pdu/types.js';
import { MemoryLun } from '../helpers/memory-lun.js';
import { PduPeer, TEST_ISID, parseKeys, testServer } from '../helpers/pdu-peer.js';

const PLAIN = 'iqn.2026-11.dev.shelfgate:plain';
const CHAP = 'iqn.2026-11.dev.shelfgate:chap';
const ACL = 'iqn.2026-11.dev.shelfgate:acl';
const INITIATOR = 'iqn.2026-11.test:initiator';

function targets(): TargetConfig[] {
  return [
    { name: PLAIN, alias: 'plain volume', luns: new Map([[0, new MemoryLun()]]) },
    {
      name: CHAP,
      luns: new Map([[0, new MemoryLun()]]),
      chap: { user: 'alice', secret: 'alice-secret-12' },
      mutualChap: { user: 'target-bob', secret: 'bob-secret-1234' },
    },
    { name: ACL, luns: new Map([[0, new MemoryLun()]]), allowedInitiators: ['iqn.2026-11.test:allowed'] },
  ];
}

function md5(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id])).update(secret).update(challenge).digest();
}

function status(pdu: { statusClass: number; statusDetail: number }): number {
  return (pdu.statusClass << 8) | pdu.statusDetail;
}

t.test('Login.NoAuthentication', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ expStatSN: 77, keys: { InitiatorName: INITIATOR, TargetName: PLAIN, SessionType: 'Normal', AuthMethod: 'CHAP,None' } });
  const security = await peer.loginResponse();
  t.equal(status(security), LoginStatus.SUCCESS);
  t.equal(security.statSN, 77, 'the first Login Response starts StatSN at the initiator ExpStatSN');
  t.ok(security.transit);
  t.equal(security.nsg, 1);
  t.equal(security.tsih, 0);
  t.equal(security.isid.toString('hex'), TEST_ISID.toString('hex'));
  const k1 = parseKeys(security.data);
  t.equal(k1.get('AuthMethod'), 'None');
  t.equal(k1.get('TargetPortalGroupTag'), '1');
  t.equal(k1.get('TargetAlias'), 'plain volume');

  peer.login({
    csg: 1,
    nsg: 3,
    keys: {
      HeaderDigest: 'None,CRC32C',
      DataDigest: 'None',
      MaxRecvDataSegmentLength: '65536',
      MaxBurstLength: '16776192',
      FirstBurstLength: '262144',
      InitialR2T: 'No',
      ImmediateData: 'Yes',
      MaxOutstandingR2T: '32',
      ErrorRecoveryLevel: '2',
      MaxConnections: '4',
      DefaultTime2Wait: '0',
      DefaultTime2Retain: '60',
      DataPDUInOrder: 'Yes',
      DataSequenceInOrder: 'Yes',
      IFMarker: 'No',
      OFMarker: 'No',
      'X-com.example.Vendor': 'whatever',
    },
  });
  const final = await peer.loginResponse();
  t.equal(status(final), LoginStatus.SUCCESS);
  t.equal(final.statSN, 78);
  t.ok(final.transit);
  t.equal(final.nsg, 3);
  t.not(final.tsih, 0, 'the final response carries the new TSIH');
  t.same(Object.fromEntries(parseKeys(final.data)), {
    HeaderDigest: 'None',
    DataDigest: 'None',
    MaxRecvDataSegmentLength: '262144',
    MaxBurstLength: '16776192',
    FirstBurstLength: '262144',
    InitialR2T: 'No',
    ImmediateData: 'Yes',
    MaxOutstandingR2T: '16',
    ErrorRecoveryLevel: '0',
    MaxConnections: '1',
    DefaultTime2Wait: '2',
    DefaultTime2Retain: '20',
    DataPDUInOrder: 'Yes',
    DataSequenceInOrder: 'Yes',
    IFMarker: 'No',
    OFMarker: 'No',
    'X-com.example.Vendor': 'NotUnderstood',
  });
  peer.destroy();
});

t.test('Login.DirectToFullFeature declares MaxRecvDataSegmentLength', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ csg: 1, nsg: 3, keys: { InitiatorName: INITIATOR, TargetName: PLAIN } });
  const final = await peer.loginResponse();
  t.equal(status(final), LoginStatus.SUCCESS);
  t.equal(final.nsg, 3);
  t.equal(parseKeys(final.data).get('MaxRecvDataSegmentLength'), '262144');
  peer.destroy();
});

async function chapLogin(
  t: Test,
  opts: { user: string; secret: string; mutual?: { id: number; challenge: Buffer } },
): Promise<{ peer: PduPeer; last: Awaited<ReturnType<PduPeer['loginResponse']>>; challenge: Buffer }> {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ transit: false, nsg: 0, keys: { InitiatorName: INITIATOR, TargetName: CHAP, AuthMethod: 'CHAP,None' } });
  const r1 = await peer.loginResponse();
  t.equal(parseKeys(r1.data).get('AuthMethod'), 'CHAP');
  peer.login({ transit: false, nsg: 0, keys: { CHAP_A: '7,5' } });
  const r2 = await peer.loginResponse();
  const k2 = parseKeys(r2.data);
  t.equal(k2.get('CHAP_A'), '5');
  const id = Number(k2.get('CHAP_I'));
  const challengeHex = k2.get('CHAP_C')!;
  t.match(challengeHex, /^0x[0-9a-f]{32,}$/, 'a challenge of at least 16 bytes in hex');
  const challenge = Buffer.from(challengeHex.slice(2), 'hex');
  const answer: Record<string, string> = {
    CHAP_N: opts.user,
    CHAP_R: `0x${md5(id, opts.secret, challenge).toString('hex')}`,
  };
  if (opts.mutual !== undefined) {
    answer.CHAP_I = String(opts.mutual.id);
    answer.CHAP_C = `0b${opts.mutual.challenge.toString('base64')}`;
  }
  peer.login({ transit: true, nsg: 1, keys: answer });
  const last = await peer.loginResponse();
  return { peer, last, challenge };
}

t.test('Login.ChapOneWay', async (t) => {
  const { peer, last } = await chapLogin(t, { user: 'alice', secret: 'alice-secret-12' });
  t.equal(status(last), LoginStatus.SUCCESS);
  t.ok(last.transit);
  t.equal(last.nsg, 1);
  peer.login({ csg: 1, nsg: 3, keys: {} });
  const final = await peer.loginResponse();
  t.equal(status(final), LoginStatus.SUCCESS);
  peer.destroy();
});

t.test('Login.ChapMutual', async (t) => {
  const mutual = { id: 9, challenge: Buffer.from('00112233445566778899aabbccddeeff', 'hex') };
  const { peer, last } = await chapLogin(t, { user: 'alice', secret: 'alice-secret-12', mutual });
  t.equal(status(last), LoginStatus.SUCCESS);
  const k = parseKeys(last.data);
  t.equal(k.get('CHAP_N'), 'target-bob');
  t.equal(k.get('CHAP_R'), `0x${md5(9, 'bob-secret-1234', mutual.challenge).toString('hex')}`);
  peer.destroy();
});

t.test('Login.ChapWrongSecret', async (t) => {
  const { peer, last } = await chapLogin(t, { user: 'alice', secret: 'not-the-secret' });
  t.equal(status(last), LoginStatus.AUTHENTICATION_FAILURE);
  t.ok(await peer.closedByTarget(), 'the target closes the connection after a failed login');
});

t.test('Login.ChapWrongUser', async (t) => {
  const { peer, last } = await chapLogin(t, { user: 'mallory', secret: 'alice-secret-12' });
  t.equal(status(last), LoginStatus.AUTHENTICATION_FAILURE);
  peer.destroy();
});

t.test('Login.ChapReflectedChallenge', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ transit: false, nsg: 0, keys: { InitiatorName: INITIATOR, TargetName: CHAP, AuthMethod: 'CHAP' } });
  await peer.loginResponse();
  peer.login({ transit: false, nsg: 0, keys: { CHAP_A: '5' } });
  const k = parseKeys((await peer.loginResponse()).data);
  const id = Number(k.get('CHAP_I'));
  const challenge = Buffer.from(k.get('CHAP_C')!.slice(2), 'hex');
  peer.login({
    nsg: 1,
    keys: {
      CHAP_N: 'alice',
      CHAP_R: `0x${md5(id, 'alice-secret-12', challenge).toString('hex')}`,
      CHAP_I: String(id),
      CHAP_C: k.get('CHAP_C')!,
    },
  });
  t.equal(status(await peer.loginResponse()), LoginStatus.AUTHENTICATION_FAILURE);
  peer.destroy();
});

t.test('Login.ChapRequiredButSkipped', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ csg: 1, nsg: 3, keys: { InitiatorName: INITIATOR, TargetName: CHAP } });
  t.equal(status(await peer.loginResponse()), LoginStatus.AUTHENTICATION_FAILURE);
  peer.destroy();
});

t.test('Login.ChapRequiredButOnlyNoneOffered', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ keys: { InitiatorName: INITIATOR, TargetName: CHAP, AuthMethod: 'None' } });
  t.equal(status(await peer.loginResponse()), LoginStatus.AUTHENTICATION_FAILURE);
  peer.destroy();
});

t.test('Login.UnauthorizedInitiator', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ keys: { InitiatorName: INITIATOR, TargetName: ACL, AuthMethod: 'None' } });
  t.equal(status(await peer.loginResponse()), LoginStatus.AUTHORIZATION_FAILURE);
  const allowed = new PduPeer(testServer(targets()));
  const { final } = await allowed.loginNormal(ACL, {}, 'iqn.2026-11.test:allowed');
  t.equal(status(final), LoginStatus.SUCCESS);
  peer.destroy();
  allowed.destroy();
});

t.test('Login.UnknownTarget', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ keys: { InitiatorName: INITIATOR, TargetName: 'iqn.2026-11.dev.shelfgate:nope', AuthMethod: 'None' } });
  const r = await peer.loginResponse();
  t.equal(status(r), LoginStatus.NOT_FOUND);
  t.notOk(r.transit);
  peer.destroy();
});

t.test('Login.MissingParameters', async (t) => {
  const noTarget = new PduPeer(testServer(targets()));
  noTarget.login({ keys: { InitiatorName: INITIATOR, SessionType: 'Normal' } });
  t.equal(status(await noTarget.loginResponse()), LoginStatus.MISSING_PARAMETER, 'TargetName missing');
  const noInitiator = new PduPeer(testServer(targets()));
  noInitiator.login({ keys: { TargetName: PLAIN } });
  t.equal(status(await noInitiator.loginResponse()), LoginStatus.MISSING_PARAMETER, 'InitiatorName missing');
  const badType = new PduPeer(testServer(targets()));
  badType.login({ keys: { InitiatorName: INITIATOR, SessionType: 'Fancy' } });
  t.equal(status(await badType.loginResponse()), LoginStatus.SESSION_TYPE_NOT_SUPPORTED);
  for (const p of [noTarget, noInitiator, badType]) p.destroy();
});

t.test('Login.UnsupportedVersion', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ versionMin: 1, versionMax: 1, keys: { InitiatorName: INITIATOR, TargetName: PLAIN } });
  const r = await peer.loginResponse();
  t.equal(status(r), LoginStatus.UNSUPPORTED_VERSION);
  t.equal(r.versionMax, 0);
  peer.destroy();
});

t.test('Login.BadStageTransitions', async (t) => {
  const cases: Array<{ name: string; fields: Parameters<PduPeer['login']>[0] }> = [
    { name: 'NSG not after CSG', fields: { csg: 1, nsg: 1 } },
    { name: 'NSG 2 is reserved', fields: { csg: 0, nsg: 2 } },
    { name: 'CSG 3 is not a login stage', fields: { csg: 3, nsg: 3 } },
    { name: 'T and C both set', fields: { transit: true, continue: true } },
  ];
  for (const c of cases) {
    const peer = new PduPeer(testServer(targets()));
    peer.login({ ...c.fields, keys: { InitiatorName: INITIATOR, TargetName: PLAIN, AuthMethod: 'None' } });
    t.equal(status(await peer.loginResponse()), LoginStatus.INITIATOR_ERROR, c.name);
    peer.destroy();
  }
  // Going back to the security stage after moving to operational.
  const peer = new PduPeer(testServer(targets()));
  peer.login({ keys: { InitiatorName: INITIATOR, TargetName: PLAIN, AuthMethod: 'None' } });
  t.equal(status(await peer.loginResponse()), LoginStatus.SUCCESS);
  peer.login({ csg: 0, nsg: 1, keys: {} });
  t.equal(status(await peer.loginResponse()), LoginStatus.INITIATOR_ERROR, 'CSG must be the current stage');
  peer.destroy();
});

t.test('Login.ChangedIsidDuringLogin', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ keys: { InitiatorName: INITIATOR, TargetName: PLAIN, AuthMethod: 'None' } });
  await peer.loginResponse();
  peer.login({ csg: 1, nsg: 3, isid: Buffer.from('800000000009', 'hex') });
  t.equal(status(await peer.loginResponse()), LoginStatus.INITIATOR_ERROR);
  peer.destroy();
});

t.test('Login.DuplicateKey', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  const data = Buffer.from(`InitiatorName=${INITIATOR}\0TargetName=${PLAIN}\0AuthMethod=None\0AuthMethod=None\0`);
  peer.login({ data });
  t.equal(status(await peer.loginResponse()), LoginStatus.INITIATOR_ERROR);
  peer.destroy();
});

t.test('Login.KeyNegotiatedTwice', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ csg: 1, nsg: 3, transit: false, keys: { InitiatorName: INITIATOR, TargetName: PLAIN, MaxBurstLength: '65536' } });
  t.equal(status(await peer.loginResponse()), LoginStatus.SUCCESS);
  peer.login({ csg: 1, nsg: 3, keys: { MaxBurstLength: '65536' } });
  t.equal(status(await peer.loginResponse()), LoginStatus.INITIATOR_ERROR);
  peer.destroy();
});

t.test('Login.TextSpanningPdus', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  const text = Buffer.from(`InitiatorName=${INITIATOR}\0TargetName=${PLAIN}\0AuthMethod=None\0`);
  peer.login({ transit: false, continue: true, data: text.subarray(0, 20) });
  const ack = await peer.loginResponse();
  t.equal(status(ack), LoginStatus.SUCCESS);
  t.equal(ack.data.length, 0, 'a partial request is acknowledged with an empty response');
  t.notOk(ack.transit);
  peer.login({ data: text.subarray(20) });
  const r = await peer.loginResponse();
  t.equal(parseKeys(r.data).get('AuthMethod'), 'None');
  t.ok(r.transit);
  peer.destroy();
});

t.test('Login.SessionReinstatement', async (t) => {
  const lun = new MemoryLun();
  const server = testServer([{ name: PLAIN, luns: new Map([[0, lun]]) }]);
  const first = new PduPeer(server);
  const r1 = await first.loginNormal(PLAIN);
  t.equal(server.sessionsInfo().length, 1);
  const second = new PduPeer(server);
  const r2 = await second.loginNormal(PLAIN);
  t.equal(status(r2.final), LoginStatus.SUCCESS);
  t.not(r2.final.tsih, r1.final.tsih);
  t.ok(await first.closedByTarget(), 'the old session connection is closed');
  t.same(server.sessionsInfo().map((s) => s.tsih), [r2.final.tsih]);
  t.equal(lun.lostNexuses.length, 1, 'the LU forgot the old nexus');
  t.match(lun.lostNexuses[0], new RegExp(`^${INITIATOR},i,0x${TEST_ISID.toString('hex')}\\|${r1.final.tsih}$`));
  second.destroy();
});

t.test('Login.ContinuationOfUnknownSession', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.login({ tsih: 0x4242, keys: { InitiatorName: INITIATOR, TargetName: PLAIN, AuthMethod: 'None' } });
  t.equal(status(await peer.loginResponse()), LoginStatus.SESSION_DOES_NOT_EXIST);
  peer.destroy();
});

t.test('Login.SecondConnectionTooMany', async (t) => {
  const server = testServer(targets());
  const first = new PduPeer(server);
  const { final } = await first.loginNormal(PLAIN);
  const second = new PduPeer(server);
  second.login({ tsih: final.tsih, cid: 2, keys: { InitiatorName: INITIATOR, TargetName: PLAIN, AuthMethod: 'None' } });
  t.equal(status(await second.loginResponse()), LoginStatus.TOO_MANY_CONNECTIONS);
  first.destroy();
  second.destroy();
});

t.test('Login.NonLoginPduDuringLogin closes the connection', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  peer.nopOut({ itt: 1 });
  t.ok(await peer.closedByTarget());
});

t.test('Login.DiscoverySession', async (t) => {
  const peer = new PduPeer(testServer(targets()));
  const r = await peer.loginDiscovery();
  t.equal(status(r), LoginStatus.SUCCESS);
  t.equal(r.opcode, Opcode.LOGIN_RESPONSE);
  t.notOk(parseKeys(r.data).has('TargetPortalGroupTag'));
  peer.destroy();
});

t.test('Negotiation', async (t) => {
  t.test('result functions and limits', async (t) => {
    const n = new Negotiator();
    const answers = n.respond(
      [
        ['MaxBurstLength', '1024'],
        ['FirstBurstLength', '4096'],
        ['MaxOutstandingR2T', '0'],
        ['ImmediateData', 'No'],
        ['InitialR2T', 'Yes'],
        ['DataDigest', 'MD5,CRC32C'],
        ['HeaderDigest', 'MD5'],
        ['DefaultTime2Wait', '0x10'],
        ['IFMarker', 'Yes'],
        ['OFMarkInt', '1-65535'],
        ['TargetAlias', 'sneaky'],
        ['MaxRecvDataSegmentLength', '100'],
        ['Unknown.Key', 'x'],
        ['ImmediateData', 'Yes'],
      ].slice(0, 13) as Array<[string, string]>,
      { discovery: false, phase: 'login' },
    );
    t.same(Object.fromEntries(answers), {
      MaxBurstLength: '1024',
      FirstBurstLength: '1024',
      MaxOutstandingR2T: 'Reject',
      ImmediateData: 'No',
      InitialR2T: 'Yes',
      DataDigest: 'CRC32C',
      HeaderDigest: 'Reject',
      DefaultTime2Wait: '16',
      IFMarker: 'No',
      OFMarkInt: 'Irrelevant',
      TargetAlias: 'Reject',
      MaxRecvDataSegmentLength: 'Reject',
      'Unknown.Key': 'NotUnderstood',
    });
    const p = n.params();
    t.equal(p.maxBurstLength, 1024);
    t.equal(p.firstBurstLength, 1024);
    t.equal(p.immediateData, false);
    t.equal(p.initialR2T, true);
    t.equal(p.dataDigest, true);
    t.equal(p.headerDigest, false);
    t.equal(p.initiatorMaxRecvDataSegmentLength, 8192, 'a rejected declaration keeps the default');
  });
  t.test('FirstBurstLength irrelevant with InitialR2T=Yes and ImmediateData=No', async (t) => {
    const n = new Negotiator();
    const a = n.respond([['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['FirstBurstLength', '65536']], { discovery: false, phase: 'login' });
    t.same(a[2], ['FirstBurstLength', 'Irrelevant']);
  });
  t.test('session keys are irrelevant in discovery', async (t) => {
    const n = new Negotiator();
    const a = n.respond([['MaxBurstLength', '65536'], ['HeaderDigest', 'None']], { discovery: true, phase: 'login' });
    t.same(a, [['MaxBurstLength', 'Irrelevant'], ['HeaderDigest', 'None']]);
  });
  t.test('full feature phase: only ALL keys', async (t) => {
    const n = new Negotiator();
    const a = n.respond([['MaxBurstLength', '65536'], ['MaxRecvDataSegmentLength', '4096'], ['MaxRecvDataSegmentLength', '8192']], { discovery: false, phase: 'fullFeature' });
    t.same(a, [['MaxBurstLength', 'Reject'], ['MaxRecvDataSegmentLength', '262144'], ['MaxRecvDataSegmentLength', 'Reject']]);
    t.equal(n.params().initiatorMaxRecvDataSegmentLength, 4096);
  });
  t.test('values longer than 255 bytes are rejected', async (t) => {
    const n = new Negotiator();
    t.same(n.respond([['InitiatorAlias', 'a'.repeat(256)]], { discovery: false, phase: 'login' }), [['InitiatorAlias', 'Reject']]);
  });
  t.test('text format', async (t) => {
    t.same(parseTextData(Buffer.from('A=1\0B=\0C=x=y\0\0\0')), [['A', '1'], ['B', ''], ['C', 'x=y']]);
    t.throws(() => parseTextData(Buffer.from('novalue\0')));
    t.throws(() => parseTextData(Buffer.from('=1\0')));
    t.throws(() => parseTextData(Buffer.from(`${'K'.repeat(64)}=1\0`)));
  });
});
