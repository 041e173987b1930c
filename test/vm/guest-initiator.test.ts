// The Linux kernel's iSCSI initiator (open-iscsi, sd, st, ch, sg) in a Debian 12 guest under
// qemu-system-x86_64 against a real gateway process (issue 13): discovery and login to a volume,
// the changer and two drives; raw I/O and ext4 on the volume; mtx status/load/unload/transfer; mt
// rewind/weof/fsf/bsf/eod/tell/seek/setblk; tar in variable and fixed records, on two drives at
// once; an unload with MOVE MEDIUM alone (no `mt offline`); an export to the I/E slot that reaches
// ARCHIVED on the shelf, then the retrieved tape read back. The guest's script is
// test/vm/guest/initiator.sh; each of its checks is one test point here.
import t from 'tap';
import { followExport, startGuestGateway } from '../helpers/guest-gateway.js';
import { disposeGuestRun, guestImage, guestSkipReason, HOST_FROM_GUEST, reportGuestChecks, runGuest } from '../helpers/guest-vm.js';

const STORAGE_SLOTS = 12;
const IE_SLOTS = 2;
/** Checks the guest's script makes, in order (a missing one fails: the script stopped early). */
const CHECKS = [
  'login',
  'devices',
  'volume-raw-io',
  'volume-ext4',
  'mtx-status-load-unload-transfer',
  'mt-tar-variable',
  'mt-tar-fixed-64k',
  'tar-two-drives-at-once',
  'mtx-unload-without-mt-offline',
  'mtx-export-to-ie-slot',
  'retrieved-tape-reads-back',
];

const skip = guestSkipReason();
t.test('Guest.KernelInitiator', skip ? { skip } : {}, async (t) => {
  const image = await guestImage();
  const gw = await startGuestGateway(t, { volumes: ['vol1:1GiB'], tapes: 'VMT:4', slots: `${STORAGE_SLOTS}:${IE_SLOTS}` });
  let shelf: string[] = [];
  const run = await runGuest(image, {
    script: 'initiator.sh',
    env: { GATEWAY_HOST: HOST_FROM_GUEST, GATEWAY_PORT: gw.gateway.iscsiPort, IE_SLOT: STORAGE_SLOTS + 1 },
    timeoutMs: 25 * 60_000,
    // The guest exports a tape and waits for the host to bring it back from the shelf.
    whileRunning: async (jobDir, running) => {
      shelf = await followExport(gw, jobDir, running, { retrieve: true });
    },
  });
  t.teardown(() => disposeGuestRun(run));
  reportGuestChecks(t, run, CHECKS, () => gw.gateway.stderr());
  t.same(shelf, ['ARCHIVED', 'RETRIEVED'], 'the exported tape reached the shelf and came back');
});
