// A real S3 server for tests: Ceph RGW from Debian's packages (ceph-mon, ceph-osd, radosgw,
// ceph-common; 16.2.15 on Debian 12), as a single-host cluster in a temporary directory:
//   - one monitor (ceph-mon) on a port chosen at run time, `auth … required = none`;
//   - one OSD on memstore (data in RAM, no block or loop device), pool size 1, no mgr;
//   - radosgw with the beast frontend on 127.0.0.1 and a port chosen at run time.
// The zone's default placement gets the storage classes GLACIER and DEEP_ARCHIVE (RGW refuses a
// PutObject with a storage class its placement does not list); in RGW they are labels only.
//
//   const rgw = await startCephRgw(t);
//   if ('skip' in rgw) { t.skip(rgw.skip); return; }   // packages absent: a skip with the reason
//   const bucket = await rgw.bucket();                  // a new empty bucket per call
//   new S3ObjectStore({ endpoint: rgw.endpoint, forcePathStyle: true, bucket, credentials: rgw.credentials })
//
// The cluster is stopped (SIGTERM, then SIGKILL) and its directory removed by the test's teardown,
// or at the latest when the test process exits. Known facts of Ceph 16.2.15 the setup depends on:
// with auth none, radosgw hangs at start unless its client section also sets `ms mon client mode =
// crc secure` and `auth client required = none`; `radosgw-admin user create` creates the default
// realm-less zone and zonegroup, after which `zone(group) placement add` works before radosgw runs.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const execFileAsync = promisify(execFile);

/** The programs the cluster needs, with the Debian package that ships each. */
const REQUIRED_PROGRAMS: ReadonlyArray<[program: string, pkg: string]> = [
  ['monmaptool', 'ceph-mon'],
  ['ceph-mon', 'ceph-mon'],
  ['ceph-osd', 'ceph-osd'],
  ['radosgw', 'radosgw'],
  ['radosgw-admin', 'radosgw'],
  ['ceph', 'ceph-common'],
  ['rados', 'ceph-common'],
];
const START_TIMEOUT_MS = 120_000;
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

export interface CephRgwOptions {
  /** The memstore OSD's capacity (RAM): every object and RGW's garbage until its GC runs. Default 1 GiB. */
  memstoreBytes?: number;
  /** rgw_multipart_min_part_size: every part but the last must be at least this long, else
   *  CompleteMultipartUpload answers 400 EntityTooSmall. Default 5 MiB (RGW's and AWS's). */
  multipartMinPartBytes?: number;
}

export interface CephRgw {
  /** http://127.0.0.1:<port> (path-style addressing). */
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** Seconds from the first command to radosgw answering HTTP. */
  readonly startSeconds: number;
  /** Creates a new empty bucket and returns its name. */
  bucket(): Promise<string>;
  /** A raw S3 client on the cluster (the SDK's own checksums off, one attempt), for tests that go
   *  around the code under test. Destroyed with the cluster. */
  client(): S3Client;
  /** Flips one byte of a multipart object's part as RADOS stores it, behind RGW's back (ETag and
   *  metadata unchanged, as a bit rot at rest would). Parts up to 4 MiB (one RADOS object each). */
  flipMultipartByte(bucket: string, key: string, partNumber: number, offsetInPartBytes: number): Promise<void>;
  /** Stops the daemons and removes the directory; idempotent. */
  stop(): Promise<void>;
}

/** Why the cluster cannot start here (a missing program and its package), or null. */
export async function cephRgwUnavailable(): Promise<string | null> {
  const missing: string[] = [];
  for (const [program, pkg] of REQUIRED_PROGRAMS) {
    if ((await findProgram(program)) === null) missing.push(`${program} (Debian package ${pkg})`);
  }
  if (missing.length === 0) return null;
  return `Ceph RGW is not installed: missing ${missing.join(', ')}; install with apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common`;
}

/** Starts a cluster stopped by `t`'s teardown, or answers { skip } when Ceph is not installed. */
export async function startCephRgw(
  t: { teardown(fn: () => Promise<void> | void): void },
  opts: CephRgwOptions = {},
): Promise<CephRgw | { skip: string }> {
  const unavailable = await cephRgwUnavailable();
  if (unavailable !== null) return { skip: unavailable };
  const cluster = new CephCluster(opts);
  t.teardown(() => cluster.stop());
  await cluster.start();
  return cluster;
}

class CephCluster implements CephRgw {
  readonly region = 'us-east-1';
  readonly credentials = { accessKeyId: `SHELFGATE${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(24).toString('base64url') };
  endpoint = '';
  startSeconds = 0;
  readonly #memstoreBytes: number;
  readonly #multipartMinPartBytes: number;
  readonly #daemons: ChildProcess[] = [];
  readonly #clients: S3Client[] = [];
  #dir = '';
  #conf = '';
  #buckets = 0;
  #stopped: Promise<void> | null = null;
  readonly #killOnExit = (): void => {
    for (const child of this.#daemons) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };

  constructor(opts: CephRgwOptions) {
    this.#memstoreBytes = opts.memstoreBytes ?? GIB;
    this.#multipartMinPartBytes = opts.multipartMinPartBytes ?? 5 * MIB;
  }

  async start(): Promise<void> {
    const startedMs = Date.now();
    process.once('exit', this.#killOnExit);
    this.#dir = await mkdtemp(join(tmpdir(), 'shelfgate-ceph-'));
    const dir = this.#dir;
    for (const sub of ['run', 'log', 'mon', 'osd', 'rgw']) await mkdir(join(dir, sub));
    const fsid = randomUUID();
    const monPort = await freePort();
    const rgwPort = await freePort();
    this.#conf = join(dir, 'ceph.conf');
    await writeFile(this.#conf, cephConf({ dir, fsid, monPort, rgwPort, memstoreBytes: this.#memstoreBytes, multipartMinPartBytes: this.#multipartMinPartBytes }));
    try {
      await this.#run('monmaptool', ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, join(dir, 'monmap')]);
      await this.#run('ceph-mon', ['--mkfs', '-i', 'a', '-c', this.#conf, '--monmap', join(dir, 'monmap')]);
      this.#daemon('ceph-mon', ['-f', '-i', 'a', '-c', this.#conf]);
      const osdUuid = randomUUID();
      // `ceph osd new` waits for the monitor, so it is also the monitor's readiness check.
      await this.#run('ceph', ['-c', this.#conf, '--connect-timeout', '60', 'osd', 'new', osdUuid]);
      await this.#run('ceph-osd', ['--mkfs', '-i', '0', '-c', this.#conf, '--osd-uuid', osdUuid]);
      this.#daemon('ceph-osd', ['-f', '-i', '0', '-c', this.#conf]);
      // Creates RGW's pools (waiting for the OSD) and the default zone and zonegroup.
      const admin = ['-c', this.#conf, '-n', 'client.rgw'];
      await this.#run('radosgw-admin', [...admin, 'user', 'create', '--uid=shelfgate', '--display-name=shelfgate tests',
        `--access-key=${this.credentials.accessKeyId}`, `--secret-key=${this.credentials.secretAccessKey}`]);
      for (const storageClass of ['GLACIER', 'DEEP_ARCHIVE']) {
        await this.#run('radosgw-admin', [...admin, 'zonegroup', 'placement', 'add', '--rgw-zonegroup=default', '--placement-id=default-placement', `--storage-class=${storageClass}`]);
        await this.#run('radosgw-admin', [...admin, 'zone', 'placement', 'add', '--rgw-zone=default', '--placement-id=default-placement', `--storage-class=${storageClass}`, '--data-pool=default.rgw.buckets.data']);
      }
      this.#daemon('radosgw', ['-f', '-n', 'client.rgw', '-c', this.#conf]);
      this.endpoint = `http://127.0.0.1:${rgwPort}`;
      await this.#waitForHttp(startedMs + START_TIMEOUT_MS);
    } catch (err) {
      const logs = await this.#logTails();
      await this.stop();
      throw new Error(`Ceph RGW did not start: ${(err as Error).message}\n${logs}`, { cause: err });
    }
    this.startSeconds = (Date.now() - startedMs) / 1000;
  }

  async bucket(): Promise<string> {
    const name = `shelfgate-${++this.#buckets}-${randomBytes(4).toString('hex')}`;
    const client = this.client();
    await client.send(new CreateBucketCommand({ Bucket: name }));
    return name;
  }

  client(): S3Client {
    const client = new S3Client({
      endpoint: this.endpoint,
      region: this.region,
      forcePathStyle: true,
      credentials: this.credentials,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.#clients.push(client);
    return client;
  }

  async flipMultipartByte(bucket: string, key: string, partNumber: number, offsetInPartBytes: number): Promise<void> {
    const conf = ['-c', this.#conf];
    const stats = JSON.parse(await this.#output('radosgw-admin', [...conf, '-n', 'client.rgw', 'bucket', 'stats', `--bucket=${bucket}`])) as { marker: string };
    // RGW names a part's RADOS object <bucket marker>__multipart_<key>.<upload id>.<part number>.
    const prefix = `${stats.marker}__multipart_${key}.`;
    const names = (await this.#output('rados', [...conf, '-p', 'default.rgw.buckets.data', 'ls']))
      .split('\n')
      .filter((name) => name.startsWith(prefix) && name.endsWith(`.${partNumber}`));
    if (names.length !== 1) throw new Error(`expected one RADOS object for part ${partNumber} of ${bucket}/${key}, found ${names.length}`);
    const file = join(this.#dir, 'part.bin');
    await this.#run('rados', [...conf, '-p', 'default.rgw.buckets.data', 'get', names[0], file]);
    const bytes = await readFile(file);
    bytes[offsetInPartBytes] ^= 0xff;
    await writeFile(file, bytes);
    await this.#run('rados', [...conf, '-p', 'default.rgw.buckets.data', 'put', names[0], file]);
    await rm(file);
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    for (const client of this.#clients) client.destroy();
    // radosgw first, the monitor last, so no daemon waits for one already gone.
    for (const child of [...this.#daemons].reverse()) await stopChild(child);
    process.off('exit', this.#killOnExit);
    if (this.#dir !== '') await rm(this.#dir, { recursive: true, force: true });
  }

  #daemon(program: string, args: string[]): void {
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'ignore'] });
    child.on('error', () => undefined); // reported by the readiness checks and the log tails
    this.#daemons.push(child);
  }

  async #run(program: string, args: string[]): Promise<void> {
    await this.#output(program, args);
  }

  async #output(program: string, args: string[]): Promise<string> {
    try {
      return (await execFileAsync(program, args, { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${program} ${args.filter((a) => !a.startsWith('--secret-key')).join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim().slice(-2000)}`);
    }
  }

  /** Polls radosgw until it answers HTTP (any status), failing early when a daemon exits. */
  async #waitForHttp(deadlineMs: number): Promise<void> {
    for (;;) {
      const dead = this.#daemons.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead !== undefined) throw new Error(`${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode})`);
      if (await answersHttp(this.endpoint)) return;
      if (Date.now() > deadlineMs) throw new Error(`radosgw did not answer on ${this.endpoint} within ${START_TIMEOUT_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async #logTails(): Promise<string> {
    const parts: string[] = [];
    for (const name of ['mon.a', 'osd.0', 'client.rgw']) {
      const text = await readFile(join(this.#dir, 'log', `${name}.log`), 'utf8').catch(() => '');
      if (text !== '') parts.push(`--- ${name}.log (tail)\n${text.split('\n').slice(-15).join('\n')}`);
    }
    return parts.join('\n');
  }
}

function cephConf(c: { dir: string; fsid: string; monPort: number; rgwPort: number; memstoreBytes: number; multipartMinPartBytes: number }): string {
  return `[global]
fsid = ${c.fsid}
mon host = v2:127.0.0.1:${c.monPort}
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
run dir = ${c.dir}/run
log file = ${c.dir}/log/$name.log
admin socket = ${c.dir}/run/$name.asok
pid file = ${c.dir}/run/$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = ${c.memstoreBytes}

[mon.a]
mon data = ${c.dir}/mon

[osd.0]
osd data = ${c.dir}/osd

[client]
ms mon client mode = crc secure
auth client required = none

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${c.rgwPort}
rgw data = ${c.dir}/rgw
rgw multipart min part size = ${c.multipartMinPartBytes}
`;
}

async function findProgram(program: string): Promise<string | null> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, program);
    if (await access(path, 1).then(() => true, () => false)) return path;
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function answersHttp(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
