// The VM appliance (docker/appliance/build.sh): its qcow2 boots under qemu-system-x86_64 (TCG, no
// KVM) with a blank data disk and user-mode networking with host port forwards; the advertised
// portal comes from the hypervisor (fw_cfg opt/shelfgate/environment). From the host: the console
// banner gives the admin token, the REST API creates a volume and tapes, libiscsi discovers and
// logs in to every target, our initiator writes and reads the volume and moves a tape into a drive
// and writes it. ACPI power-off stops the gateway cleanly; a second boot finds the data. The OVA
// (OVF descriptor, manifest, streamOptimized VMDKs) and the VHDX are checked structurally.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../helpers/gateway-process.js';
import { runTool } from '../helpers/libiscsi.js';
import {
  IQN_PREFIX,
  discoverAndLogin,
  expectedTapeRecord,
  expectedVolumeData,
  freePort,
  library,
  loadAndWriteTape,
  readTapeRecord,
  readVolume,
  writeVolume,
} from '../helpers/appliance.js';

const BUILD_TIMEOUT_MS = 40 * 60_000;
const BOOT_TIMEOUT_MS = 15 * 60_000;
const POWEROFF_TIMEOUT_MS = 5 * 60_000;

function missing(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (debootstrap)';
  for (const tool of ['debootstrap', 'qemu-system-x86_64', 'qemu-img', 'syslinux', 'mcopy', 'mkfs.vfat', 'sfdisk', 'iscsi-ls']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (.ci/run installs it)`;
  }
  return false;
}

async function tool(command: string, ...args: string[]): Promise<string> {
  const result = await runTool(command, args, { timeoutMs: 300_000 });
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  return result.stdout;
}

interface Vm {
  child: ChildProcess;
  console(): string;
  iscsiPort: number;
  apiPort: number;
  exited: Promise<number>;
  /** Resolves once `pattern` has appeared `count` times on the serial console. */
  waitFor(pattern: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  /** ACPI power button through QMP. */
  powerdown(): Promise<void>;
}

async function boot(dir: string, run: number): Promise<Vm> {
  const iscsiPort = await freePort();
  const apiPort = await freePort();
  const qmp = join(dir, `qmp-${run}.sock`);
  // prettier-ignore
  const child = spawn('qemu-system-x86_64', [
    '-machine', 'pc,accel=tcg', '-cpu', 'max', '-smp', '2', '-m', '2048',
    '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-qmp', `unix:${qmp},server=on,wait=off`,
    '-drive', `file=${join(dir, 'system.qcow2')},if=virtio,format=qcow2`,
    '-drive', `file=${join(dir, 'data.qcow2')},if=virtio,format=qcow2`,
    '-drive', `file=${join(dir, 'extra.qcow2')},if=virtio,format=qcow2`,
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${iscsiPort}-:3260,hostfwd=tcp:127.0.0.1:${apiPort}-:8080`,
    '-device', 'virtio-net-pci,netdev=net0',
    '-fw_cfg', `name=opt/shelfgate/environment,string=SHELFGATE_ADVERTISE=127.0.0.1:${iscsiPort}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 128)));
  const vm: Vm = {
    child,
    console: () => text,
    iscsiPort,
    apiPort,
    exited,
    waitFor: (pattern, count = 1, timeoutMs = BOOT_TIMEOUT_MS) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if ((text.match(new RegExp(pattern.source, 'gm')) ?? []).length >= count) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`no ${pattern} on the console within ${timeoutMs} ms:\n${text.slice(-6000)}`));
        }, timeoutMs);
        waiters.push(check);
        void exited.then(() => {
          if (waiters.includes(check)) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            reject(new Error(`qemu exited before ${pattern}:\n${text.slice(-6000)}`));
          }
        });
        check();
      }),
    powerdown: () =>
      new Promise((resolve, reject) => {
        const socket = net.connect(qmp);
        let greeted = false;
        socket.setEncoding('utf8');
        socket.on('data', (data: string) => {
          // QMP: greeting, then qmp_capabilities, then the command (qemu-qmp-ref).
          if (!greeted) {
            greeted = true;
            socket.write('{"execute":"qmp_capabilities"}\n{"execute":"system_powerdown"}\n');
          } else if (data.includes('"return"')) {
            socket.end();
            resolve();
          }
        });
        socket.on('error', reject);
      }),
  };
  return vm;
}

/** The value after `label` in the console banner (the console may prefix the line with the
 *  unit's name). */
function bannerValue(text: string, label: string): string {
  const match = new RegExp(` ${label} +(\\S+)`).exec(text.replace(/\r/g, ''));
  if (match === null) throw new Error(`no "${label}" in the console banner`);
  return match[1]!;
}

t.test('Appliance.VM: boot the qcow2, use it from the host, power off, boot again', { skip: missing() }, async (t) => {
  const buildStarted = Date.now();
  const build = await runTool(`${repoRoot()}/docker/appliance/build.sh`, [], { timeoutMs: BUILD_TIMEOUT_MS, cwd: repoRoot() });
  t.equal(build.exitCode, 0, `docker/appliance/build.sh (stderr: ${build.stderr.slice(-4000)})`);
  if (build.exitCode !== 0) return;
  const images = build.stdout.trim().split('\n').at(-1)!;
  t.comment(`appliance images in ${images}, built (or found) in ${Math.round((Date.now() - buildStarted) / 1000)} s`);

  t.test('OVA: OVF descriptor first, manifest digests, streamOptimized VMDKs', async (t) => {
    const ova = join(images, 'shelfgate-appliance.ova');
    const members = (await tool('tar', '-tf', ova)).trim().split('\n');
    t.same(members, ['shelfgate-appliance.ovf', 'shelfgate-appliance.mf', 'shelfgate-system.vmdk', 'shelfgate-data.vmdk'], 'OVF 2.0 5.3: the descriptor is the first member');
    const dir = await mkdtemp(join(tmpdir(), 'shelfgate-ova-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await tool('tar', '-xf', ova, '-C', dir);
    const ovf = await readFile(join(dir, 'shelfgate-appliance.ovf'), 'utf8');
    t.match(ovf, /<Envelope [^>]*xmlns="http:\/\/schemas\.dmtf\.org\/ovf\/envelope\/1"/, 'OVF 1.x envelope namespace');
    for (const vmdk of ['shelfgate-system.vmdk', 'shelfgate-data.vmdk']) {
      const bytes = await readFile(join(dir, vmdk));
      const info = JSON.parse(await tool('qemu-img', 'info', '--output=json', join(dir, vmdk))) as { format: string; 'virtual-size': number; 'format-specific'?: { data?: { 'create-type'?: string } } };
      t.equal(info.format, 'vmdk', `${vmdk}: VMDK`);
      t.equal(info['format-specific']?.data?.['create-type'], 'streamOptimized', `${vmdk}: streamOptimized, as ESXi imports`);
      const file = new RegExp(`<File ovf:href="${vmdk}" ovf:id="(\\w+)" ovf:size="(\\d+)"/>`).exec(ovf);
      t.equal(Number(file?.[2]), bytes.length, `${vmdk}: References/File size is the file's`);
      const disk = new RegExp(`<Disk ovf:capacity="(\\d+)" ovf:capacityAllocationUnits="byte" ovf:diskId="(\\w+)" ovf:fileRef="${file?.[1]}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`).exec(ovf);
      t.equal(Number(disk?.[1]), info['virtual-size'], `${vmdk}: DiskSection capacity is the virtual size`);
      t.match(ovf, `<rasd:HostResource>ovf:/disk/${disk?.[2]}</rasd:HostResource>`, `${vmdk}: attached in the VirtualHardwareSection`);
      const manifest = await readFile(join(dir, 'shelfgate-appliance.mf'), 'utf8');
      t.match(manifest, `SHA256(${vmdk})= ${createHash('sha256').update(bytes).digest('hex')}`, `${vmdk}: manifest digest`);
    }
    // CIM RASD resource types VMware maps: 3 processor, 4 memory, 6 SCSI controller, 10 NIC, 17 disk.
    for (const type of [3, 4, 6, 10, 17]) t.match(ovf, `<rasd:ResourceType>${type}</rasd:ResourceType>`, `RASD ResourceType ${type}`);
    t.match(ovf, /<vssd:VirtualSystemType>vmx-\d+<\/vssd:VirtualSystemType>/, 'a VMware virtual hardware version');
    t.match(ovf, /<OperatingSystemSection ovf:id="\d+"/, 'the guest OS');
  });

  t.test('VHDX: a dynamic VHDX of the system disk', async (t) => {
    const vhdx = JSON.parse(await tool('qemu-img', 'info', '--output=json', join(images, 'shelfgate-appliance.vhdx'))) as { format: string; 'virtual-size': number };
    const qcow2 = JSON.parse(await tool('qemu-img', 'info', '--output=json', join(images, 'shelfgate-appliance.qcow2'))) as { format: string; 'virtual-size': number };
    t.equal(vhdx.format, 'vhdx');
    t.equal(qcow2.format, 'qcow2');
    t.equal(vhdx['virtual-size'], qcow2['virtual-size'], 'the same disk');
    const check = await runTool('qemu-img', ['check', join(images, 'shelfgate-appliance.vhdx')]);
    t.equal(check.exitCode, 0, `qemu-img check: ${check.stdout}${check.stderr}`);
  });

  t.test('Boot: ready on the console, used from the host, clean power-off, data after a second boot', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'shelfgate-appliance-vm-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await tool('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(images, 'shelfgate-appliance.qcow2'), join(dir, 'system.qcow2'));
    await tool('qemu-img', 'create', '-q', '-f', 'qcow2', join(dir, 'data.qcow2'), '8G');
    await tool('qemu-img', 'create', '-q', '-f', 'qcow2', join(dir, 'extra.qcow2'), '4G');

    const started = Date.now();
    const vm = await boot(dir, 1);
    t.teardown(() => {
      vm.child.kill('SIGKILL');
    });
    await vm.waitFor(/shelfgate ready /);
    t.comment(`first boot to "shelfgate ready": ${Math.round((Date.now() - started) / 1000)} s (TCG)`);
    const text = vm.console();
    t.match(text, /formatting \/dev\/vdb \(8 GiB\) as the data disk/, 'the first blank disk became the data disk');
    t.comment(text.split('\n').filter((line) => /shelfgate|=====/.test(line)).slice(0, 30).join('\n'));
    const token = bannerValue(text, 'admin token');
    t.equal(bannerValue(text, 'iSCSI portal'), `127.0.0.1:${vm.iscsiPort}`, 'the portal from the hypervisor (fw_cfg) is advertised');
    const api = `http://127.0.0.1:${vm.apiPort}`;
    const post = async (path: string, body: unknown): Promise<void> => {
      const response = await fetch(`${api}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      t.ok(response.status < 300, `POST ${path}: HTTP ${response.status} ${await response.clone().text()}`);
    };
    await post('/v1/volumes', { name: 'vol1', size: '1GiB' });
    await post('/v1/tapes', { prefix: 'VMA', count: 2, sizeBytes: 100 * 2 ** 30 });

    const listed = await discoverAndLogin('127.0.0.1', vm.iscsiPort);
    t.equal(listed.length, 12, 'the volume, the changer and ten drives');
    t.ok(listed.every((l) => l.portal === `127.0.0.1:${vm.iscsiPort},1` && l.luns === 1), 'each logged in at the forwarded portal');
    await writeVolume('127.0.0.1', vm.iscsiPort, `${IQN_PREFIX}shelfgate-vol1`);
    const barcode = await loadAndWriteTape('127.0.0.1', vm.iscsiPort, await library(api, token));

    await vm.powerdown();
    const code = await Promise.race([vm.exited, new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`no power-off within ${POWEROFF_TIMEOUT_MS} ms:\n${vm.console().slice(-4000)}`)), POWEROFF_TIMEOUT_MS).unref())]);
    t.equal(code, 0, 'qemu exited after the guest powered off');
    t.match(vm.console(), /node\[\d+\]: \S+ INFO +stopped/, 'the gateway logged its clean shutdown');

    const again = Date.now();
    const vm2 = await boot(dir, 2);
    t.teardown(() => {
      vm2.child.kill('SIGKILL');
    });
    await vm2.waitFor(/shelfgate ready /);
    t.comment(`second boot to "shelfgate ready": ${Math.round((Date.now() - again) / 1000)} s (TCG)`);
    t.equal(bannerValue(vm2.console(), 'admin token'), token, 'the token is kept on the data disk');
    t.notMatch(vm2.console(), /formatting/, 'the data disk is not formatted again');
    t.ok((await readVolume('127.0.0.1', vm2.iscsiPort, `${IQN_PREFIX}shelfgate-vol1`)).equals(expectedVolumeData()), 'the volume data survived');
    const view = await library(`http://127.0.0.1:${vm2.apiPort}`, token);
    const drive1 = view.drives.find((d) => d.index === 1)!;
    t.equal(drive1.barcode, barcode, 'the tape is still in drive 1');
    t.ok((await readTapeRecord('127.0.0.1', vm2.iscsiPort, drive1.targetName)).equals(expectedTapeRecord()), 'the tape record survived');
    await vm2.powerdown();
    await vm2.exited;
  });
});
