// Bacula 9.6 from Debian 12 in a guest under qemu-system-x86_64, through the kernel initiator, with
// the gateway's changer and two drives and Debian's stock mtx-changer settings (offline=0; issue
// 13): btape's autochanger test, label barcodes for three tapes, a full and an
// incremental backup, a restore and a diff, an export to the I/E slot that reaches ARCHIVED. The
// guest's script is test/vm/guest/bacula.sh, the configuration test/vm/guest/bacula/*.conf (the
// files docs/backup-software.md shows; test/backup-docs.test.ts keeps them equal).
import t from 'tap';
import { followExport, startGuestGateway } from '../helpers/guest-gateway.js';
import { disposeGuestRun, guestImage, guestSkipReason, HOST_FROM_GUEST, reportGuestChecks, runGuest } from '../helpers/guest-vm.js';

const STORAGE_SLOTS = 8;
const IE_SLOTS = 2;
const CHECKS = [
  'login',
  'bacula-config',
  'btape-autochanger',
  'bacula-start',
  'bacula-label-barcodes',
  'bacula-full-backup',
  'bacula-incremental-backup',
  'bacula-restore-diff',
  'bacula-export-to-ie-slot',
];

const skip = guestSkipReason();
t.test('Backup.Bacula', skip ? { skip } : {}, async (t) => {
  const image = await guestImage();
  const gw = await startGuestGateway(t, { tapes: 'BAC:4', slots: `${STORAGE_SLOTS}:${IE_SLOTS}` });
  let shelf: string[] = [];
  const run = await runGuest(image, {
    script: 'bacula.sh',
    files: ['bacula/bacula-dir.conf', 'bacula/bacula-sd.conf', 'bacula/bacula-fd.conf', 'bacula/bconsole.conf'],
    env: { GATEWAY_HOST: HOST_FROM_GUEST, GATEWAY_PORT: gw.gateway.iscsiPort, IE_SLOT: STORAGE_SLOTS + 1 },
    timeoutMs: 25 * 60_000,
    whileRunning: async (jobDir, running) => {
      shelf = await followExport(gw, jobDir, running, { retrieve: false });
    },
  });
  t.teardown(() => disposeGuestRun(run));
  reportGuestChecks(t, run, CHECKS, () => gw.gateway.stderr());
  t.same(shelf, ['ARCHIVED'], 'the exported volume reached the shelf');
});
