// A scenario through the API alone, against a real gateway process: with the AWS SDK (real SigV4)
// create tapes and see them in the media changer's READ ELEMENT STATUS over iSCSI, then create a
// stored and a cached volume and look at them with libiscsi's iscsi-inq / iscsi-readcapacity16.
import {
  CreateCachediSCSIVolumeCommand,
  CreateStorediSCSIVolumeCommand,
  CreateTapesCommand,
  DescribeVTLDevicesCommand,
  ListGatewaysCommand,
  ListTapesCommand,
  StorageGatewayClient,
} from '@aws-sdk/client-storage-gateway';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startGateway } from '../helpers/gateway-process.js';
import { runTool } from '../helpers/libiscsi.js';
import { loginTarget, mustBeGood } from '../helpers/tape-commands.js';

const ACCESS_KEY = { accessKeyId: 'AKIASHELFGATESCENE01', secretAccessKey: 'scenario/secret/key/0123456789abcdefghij' };
const REGION = 'us-west-2';
const GIB = 1024 ** 3;
const INITIATOR = 'iqn.2026-11.dev.shelfgate:api-scenario';
/** SMC-3 6.10.1 ELEMENT TYPE CODE: storage element. */
const STORAGE_ELEMENT = 0x02;

/** SMC-3 6.10 READ ELEMENT STATUS, VOLTAG=1, for `count` elements of one type from address 0. */
function readElementStatusVoltag(elementType: number, count: number, allocationLength: number): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xb8;
  cdb[1] = 0x10 | elementType;
  cdb.writeUInt16BE(count, 4);
  cdb.writeUIntBE(allocationLength, 7, 3);
  return cdb;
}

/** The full elements' primary volume tags (SMC-3 6.10.2–6.10.3): element status data header,
 *  then pages of descriptors whose bytes 12–43 hold the volume identifier when PVOLTAG is set. */
function fullElementBarcodes(data: Buffer): Map<number, string> {
  const out = new Map<number, string>();
  const reportBytes = data.readUIntBE(5, 3);
  let offset = 8;
  const end = Math.min(data.length, 8 + reportBytes);
  while (offset + 8 <= end) {
    const pvoltag = (data[offset + 1]! & 0x80) !== 0;
    const descriptorLength = data.readUInt16BE(offset + 2);
    const pageBytes = data.readUIntBE(offset + 5, 3);
    const pageEnd = offset + 8 + pageBytes;
    for (let d = offset + 8; d + descriptorLength <= pageEnd; d += descriptorLength) {
      const address = data.readUInt16BE(d);
      const full = (data[d + 2]! & 0x01) !== 0;
      if (full && pvoltag) out.set(address, data.subarray(d + 12, d + 44).toString('ascii').trimEnd());
    }
    offset = pageEnd;
  }
  return out;
}

t.test('Scenario.ApiOnly: tapes seen by the changer, volumes seen by libiscsi', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-api-scenario-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'shelfgate.json');
  await writeFile(configFile, JSON.stringify({ gateway: { region: REGION, accountId: '210987654321' }, api: { accessKeys: [ACCESS_KEY] } }));
  const gateway = await startGateway({ configFile, extraArgs: ['--tape-slots', '16:4'] });
  t.teardown(() => gateway.dispose());
  const sgw = new StorageGatewayClient({ endpoint: `http://127.0.0.1:${gateway.apiPort}`, region: REGION, credentials: ACCESS_KEY, maxAttempts: 1 });
  const GatewayARN = (await sgw.send(new ListGatewaysCommand({}))).Gateways?.[0]?.GatewayARN ?? '';
  t.match(GatewayARN, /^arn:aws:storagegateway:us-west-2:210987654321:gateway\/sgw-[0-9A-F]{8}$/);

  // Tapes: created through the API, visible to backup software in the changer's inventory.
  const { TapeARNs } = await sgw.send(
    new CreateTapesCommand({ GatewayARN, TapeSizeInBytes: 100 * GIB, ClientToken: 'scenario-0001', NumTapesToCreate: 3, TapeBarcodePrefix: 'SCN' }),
  );
  const barcodes = (TapeARNs ?? []).map((arn) => arn.slice(arn.lastIndexOf('/') + 1)).sort();
  t.equal(barcodes.length, 3);
  t.same(((await sgw.send(new ListTapesCommand({}))).TapeInfos ?? []).map((i) => i.TapeBarcode).sort(), barcodes);
  const { VTLDevices } = await sgw.send(new DescribeVTLDevicesCommand({ GatewayARN }));
  const changer = VTLDevices?.find((d) => d.VTLDeviceType === 'Medium Changer');
  const changerTarget = changer?.DeviceiSCSIAttributes?.TargetARN?.split('/target/')[1] ?? '';
  t.equal(changerTarget, 'iqn.2026-11.dev.shelfgate:shelfgate-mediachanger');
  t.equal(changer?.DeviceiSCSIAttributes?.NetworkInterfacePort, gateway.iscsiPort);
  const initiator = await loginTarget(gateway.iscsiPort, INITIATOR, changerTarget);
  t.teardown(() => initiator.destroy());
  const status = mustBeGood('READ ELEMENT STATUS', await initiator.scsi(readElementStatusVoltag(STORAGE_ELEMENT, 0xffff, 0xffff), { readLength: 0xffff }));
  const inventory = fullElementBarcodes(status.dataIn);
  t.same([...inventory.values()].sort(), barcodes, 'READ ELEMENT STATUS shows the new tapes with their barcodes');

  // Volumes: created through the API, served at once.
  const portal = `127.0.0.1:${gateway.iscsiPort}`;
  const stored = await sgw.send(
    new CreateStorediSCSIVolumeCommand({ GatewayARN, DiskId: 'local:2GiB', PreserveExistingData: false, TargetName: 'scn-stored', NetworkInterfaceId: '127.0.0.1' }),
  );
  const cached = await sgw.send(
    new CreateCachediSCSIVolumeCommand({
      GatewayARN,
      VolumeSizeInBytes: 3 * GIB,
      TargetName: 'scn-cached',
      NetworkInterfaceId: '127.0.0.1',
      ClientToken: 'scenario-cached-0001',
    }),
  );
  for (const [created, sizeBytes] of [
    [stored, 2 * GIB],
    [cached, 3 * GIB],
  ] as const) {
    const target = created.TargetARN?.split('/target/')[1] ?? '';
    const url = `iscsi://${portal}/${target}/0`;
    const inq = await runTool('iscsi-inq', ['-i', INITIATOR, url]);
    t.equal(inq.exitCode, 0, `iscsi-inq ${target}`, { stderr: inq.stderr });
    t.match(inq.stdout, /Peripheral Device Type: 0|DIRECT_ACCESS|Direct/i);
    const capacity = await runTool('iscsi-readcapacity16', ['-i', INITIATOR, url]);
    t.equal(capacity.exitCode, 0, `iscsi-readcapacity16 ${target}`, { stderr: capacity.stderr });
    t.match(capacity.stdout, new RegExp(`Total size:${sizeBytes}\\b`), `${target} is ${sizeBytes} bytes`);
  }
});
