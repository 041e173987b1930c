// LocalObjectStore: an ObjectStore in a directory — the embedded default, so `shelfgate start`
// needs no cloud account (and a target for NFS/removable disks).
//
// Key → path: the key is split on '/'; every segment is percent-encoded byte-wise (everything
// outside [A-Za-z0-9_-] becomes %XX, so '.', '..' and hidden names cannot occur); inner segments
// become directories named `<segment>.d`, the last one a file `<segment>.obj`. The suffixes keep
// the keys "a" and "a/b" apart (a.obj and a.d/b.obj). An encoded segment longer than 240
// characters is refused (file name limits); S3 allows it, our layout never needs it.
//
// Object file:
//   offset 0   4 bytes  magic "SGO1"
//   offset 4   4 bytes  header length N (uint32 big-endian)
//   offset 8   N bytes  header JSON { sizeBytes, sha256 (base64), metadata }
//   offset 8+N          body
// One file per object means one atomic rename commits body and checksum together: write
// `.tmp/<random>`, fsync, rename over the target, fsync the directory.

import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CloudError } from './cloud-error.js';
import {
  preparePut,
  validateKey,
  validateListOptions,
  validateRange,
  verifyWholeObject,
  type ListOptions,
  type ObjectHead,
  type ObjectListEntry,
  type ObjectRange,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from './object-store.js';

const MAGIC = Buffer.from('SGO1', 'latin1');
const PREAMBLE_BYTES = 8;
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_ENCODED_SEGMENT_CHARS = 240;
const OBJECT_SUFFIX = '.obj';
const DIR_SUFFIX = '.d';
const TMP_DIR = '.tmp';
const UNRESERVED_BYTE = /^[A-Za-z0-9_-]$/;
/** errno codes a later retry may get past (descriptor exhaustion, a full disk being cleaned). */
const TRANSIENT_ERRNO = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'ENOSPC', 'EDQUOT']);

interface ObjectHeader {
  sizeBytes: number;
  sha256: string;
  metadata: Record<string, string>;
}

export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local';
  readonly rootDir: string;
  readonly #tmpDir: string;

  private constructor(rootDir: string) {
    this.rootDir = rootDir;
    this.#tmpDir = join(rootDir, TMP_DIR);
  }

  /** Creates the directory if needed and removes temporary files left by a crash. */
  static async open(rootDir: string): Promise<LocalObjectStore> {
    const store = new LocalObjectStore(resolve(rootDir));
    try {
      await rm(store.#tmpDir, { recursive: true, force: true });
      await mkdir(store.#tmpDir, { recursive: true });
    } catch (err) {
      throw ioError(`cannot open object directory ${store.rootDir}`, err);
    }
    return store;
  }

  async put(key: string, body: Buffer, opts: PutOptions = {}): Promise<PutResult> {
    validateKey(key);
    const target = this.#objectPath(key);
    const { checksumSha256, metadata } = await preparePut(body, opts);
    const header: ObjectHeader = { sizeBytes: body.length, sha256: checksumSha256, metadata };
    const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
    const preamble = Buffer.alloc(PREAMBLE_BYTES);
    MAGIC.copy(preamble, 0);
    preamble.writeUInt32BE(headerBytes.length, 4);

    const tmp = join(this.#tmpDir, randomUUID());
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(Buffer.concat([preamble, headerBytes]));
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await moveIntoPlace(tmp, target, opts.createOnly === true);
    } catch (err) {
      await rm(tmp, { force: true });
      if (opts.createOnly === true && (err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new CloudError('CLOUD_EXISTS', `object ${JSON.stringify(key)} exists already (create-only put)`, { cause: err });
      }
      throw ioError(`put ${JSON.stringify(key)} failed`, err);
    }
    return { etag: etagOf(checksumSha256), checksumSha256 };
  }

  async get(key: string, range?: ObjectRange): Promise<Buffer> {
    validateKey(key);
    if (range !== undefined) {
      validateRange(range);
    }
    const fh = await this.#openObject(key);
    if (fh === null) {
      throw new CloudError('CLOUD_NOT_FOUND', `no object ${JSON.stringify(key)}`);
    }
    try {
      const { header, bodyOffset } = await readHeader(fh, key);
      if (range === undefined) {
        const body = await readExactly(fh, bodyOffset, header.sizeBytes, key);
        verifyWholeObject(key, body, header.sha256);
        return body;
      }
      const offsetBytes = Math.min(range.offsetBytes, header.sizeBytes);
      const lengthBytes = Math.min(range.lengthBytes, header.sizeBytes - offsetBytes);
      return await readExactly(fh, bodyOffset + offsetBytes, lengthBytes, key);
    } catch (err) {
      throw ioError(`get ${JSON.stringify(key)} failed`, err);
    } finally {
      await fh.close();
    }
  }

  async head(key: string): Promise<ObjectHead | null> {
    validateKey(key);
    const fh = await this.#openObject(key);
    if (fh === null) {
      return null;
    }
    try {
      const { header } = await readHeader(fh, key);
      return {
        sizeBytes: header.sizeBytes,
        etag: etagOf(header.sha256),
        checksumSha256: header.sha256,
        metadata: { ...header.metadata },
      };
    } catch (err) {
      throw ioError(`head ${JSON.stringify(key)} failed`, err);
    } finally {
      await fh.close();
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    const target = this.#objectPath(key);
    try {
      await unlink(target);
    } catch (err) {
      if (isMissing(err)) {
        return;
      }
      throw ioError(`delete ${JSON.stringify(key)} failed`, err);
    }
    try {
      await fsyncDir(dirname(target));
    } catch (err) {
      throw ioError(`delete ${JSON.stringify(key)} failed`, err);
    }
    await this.#pruneEmptyDirs(dirname(target));
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    keys.forEach(validateKey);
    for (const key of keys) {
      await this.delete(key);
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectListEntry> {
    validateListOptions(prefix, opts);
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    if (limit === 0) {
      return;
    }
    const segments = prefix.split('/');
    const partial = segments.pop() ?? '';
    const encoded = segments.map(encodeSegment);
    if (encoded.some((e) => e.length > MAX_ENCODED_SEGMENT_CHARS)) {
      return;
    }
    const dir = join(this.rootDir, ...encoded.map((e) => e + DIR_SUFFIX));
    const keyPrefix = segments.map((s) => s + '/').join('');
    let count = 0;
    for await (const entry of walk(dir, keyPrefix, partial, opts.startAfter)) {
      yield entry;
      if (++count >= limit) {
        return;
      }
    }
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  #objectPath(key: string): string {
    const encoded = key.split('/').map(encodeSegment);
    if (encoded.some((e) => e.length > MAX_ENCODED_SEGMENT_CHARS)) {
      throw new CloudError('CLOUD_INVALID_REQUEST', `a segment of ${JSON.stringify(key)} is too long for a file name`);
    }
    const file = (encoded.pop() ?? '') + OBJECT_SUFFIX;
    return join(this.rootDir, ...encoded.map((e) => e + DIR_SUFFIX), file);
  }

  async #openObject(key: string): Promise<FileHandle | null> {
    try {
      return await open(this.#objectPath(key), 'r');
    } catch (err) {
      if (isMissing(err)) {
        return null;
      }
      throw ioError(`open ${JSON.stringify(key)} failed`, err);
    }
  }

  /** Removes directories left empty by a delete, up to the root; stops at the first non-empty one.
   *  A put racing with this retries its rename (moveIntoPlace). */
  async #pruneEmptyDirs(dir: string): Promise<void> {
    for (let d = dir; d !== this.rootDir && d.startsWith(this.rootDir); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
    }
  }
}

function etagOf(checksumSha256: string): string {
  return Buffer.from(checksumSha256, 'base64').toString('hex');
}

function encodeSegment(segment: string): string {
  let out = '';
  for (const byte of Buffer.from(segment, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += UNRESERVED_BYTE.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Inverse of encodeSegment; null for names this store did not write. */
function decodeSegment(name: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '%') {
      const hex = name.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) {
        return null;
      }
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (UNRESERVED_BYTE.test(ch)) {
      bytes.push(ch.charCodeAt(0));
    } else {
      return null;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

interface DirChild {
  name: string;
  /** For a file its key; for a directory the prefix shared by every key below it (ends in '/'). */
  sortKey: string;
  sortBytes: Buffer;
  isDir: boolean;
}

/** Yields the objects under dir in UTF-8 byte order of their keys. Ordering children by
 *  `segment` (files) and `segment + '/'` (directories) is the global key order, because a segment
 *  never contains '/'. */
async function* walk(dir: string, keyPrefix: string, partial: string, startAfter: string | undefined): AsyncGenerator<ObjectListEntry> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isMissing(err)) {
      return;
    }
    throw ioError(`list ${dir} failed`, err);
  }
  const children: DirChild[] = [];
  for (const name of names) {
    const isDir = name.endsWith(DIR_SUFFIX);
    if (!isDir && !name.endsWith(OBJECT_SUFFIX)) {
      continue;
    }
    const segment = decodeSegment(name.slice(0, -(isDir ? DIR_SUFFIX : OBJECT_SUFFIX).length));
    if (segment === null || !segment.startsWith(partial)) {
      continue;
    }
    const sortKey = keyPrefix + segment + (isDir ? '/' : '');
    children.push({ name, sortKey, sortBytes: Buffer.from(sortKey, 'utf8'), isDir });
  }
  children.sort((a, b) => Buffer.compare(a.sortBytes, b.sortBytes));
  const startAfterBytes = startAfter === undefined ? undefined : Buffer.from(startAfter, 'utf8');
  for (const child of children) {
    const path = join(dir, child.name);
    if (child.isDir) {
      // Every key below shares sortKey: skip the subtree when all of it sorts before startAfter.
      if (
        startAfter !== undefined &&
        startAfterBytes !== undefined &&
        Buffer.compare(child.sortBytes, startAfterBytes) < 0 &&
        !startAfter.startsWith(child.sortKey)
      ) {
        continue;
      }
      yield* walk(path, child.sortKey, '', startAfter);
      continue;
    }
    if (startAfterBytes !== undefined && Buffer.compare(child.sortBytes, startAfterBytes) <= 0) {
      continue;
    }
    const object = await objectSize(path);
    if (object !== null) {
      yield { key: child.sortKey, sizeBytes: object.sizeBytes, lastModified: object.lastModified };
    }
  }
}

/** Body size from the preamble and the file size, and the file's mtime; null if the object
 *  vanished meanwhile. */
async function objectSize(path: string): Promise<{ sizeBytes: number; lastModified: Date } | null> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (isMissing(err)) {
      return null;
    }
    throw ioError(`list ${path} failed`, err);
  }
  try {
    const preamble = Buffer.alloc(PREAMBLE_BYTES);
    const { bytesRead } = await fh.read(preamble, 0, PREAMBLE_BYTES, 0);
    const { size, mtime } = await fh.stat();
    if (bytesRead < PREAMBLE_BYTES || !preamble.subarray(0, 4).equals(MAGIC)) {
      throw new CloudError('CLOUD_INTEGRITY', `${path} is not an object file`);
    }
    return { sizeBytes: size - PREAMBLE_BYTES - preamble.readUInt32BE(4), lastModified: mtime };
  } finally {
    await fh.close();
  }
}

async function readHeader(fh: FileHandle, key: string): Promise<{ header: ObjectHeader; bodyOffset: number }> {
  const preamble = Buffer.alloc(PREAMBLE_BYTES);
  const { bytesRead } = await fh.read(preamble, 0, PREAMBLE_BYTES, 0);
  const headerLength = preamble.readUInt32BE(4);
  if (bytesRead < PREAMBLE_BYTES || !preamble.subarray(0, 4).equals(MAGIC) || headerLength > MAX_HEADER_BYTES) {
    throw new CloudError('CLOUD_INTEGRITY', `object ${JSON.stringify(key)} has a damaged header`);
  }
  const headerBytes = await readExactly(fh, PREAMBLE_BYTES, headerLength, key);
  let header: ObjectHeader;
  try {
    header = JSON.parse(headerBytes.toString('utf8')) as ObjectHeader;
  } catch (err) {
    throw new CloudError('CLOUD_INTEGRITY', `object ${JSON.stringify(key)} has a damaged header`, { cause: err });
  }
  if (!Number.isSafeInteger(header.sizeBytes) || typeof header.sha256 !== 'string' || typeof header.metadata !== 'object') {
    throw new CloudError('CLOUD_INTEGRITY', `object ${JSON.stringify(key)} has a damaged header`);
  }
  const { size } = await fh.stat();
  if (size !== PREAMBLE_BYTES + headerLength + header.sizeBytes) {
    throw new CloudError('CLOUD_INTEGRITY', `object ${JSON.stringify(key)} is ${size} bytes, its header says otherwise`);
  }
  return { header, bodyOffset: PREAMBLE_BYTES + headerLength };
}

async function readExactly(fh: FileHandle, position: number, lengthBytes: number, key: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(lengthBytes);
  let done = 0;
  while (done < lengthBytes) {
    const { bytesRead } = await fh.read(buf, done, lengthBytes - done, position + done);
    if (bytesRead === 0) {
      throw new CloudError('CLOUD_INTEGRITY', `object ${JSON.stringify(key)} is truncated`);
    }
    done += bytesRead;
  }
  return buf;
}

/** rename(2) tmp over target — or, create-only, link(2) it there (EEXIST when the target exists:
 *  the check and the create are one atomic step) and unlink tmp — creating (durably) the
 *  directories on the way; retried when a concurrent delete prunes a directory between mkdir and
 *  rename. */
async function moveIntoPlace(tmp: string, target: string, createOnly: boolean): Promise<void> {
  const dir = dirname(target);
  for (let attempt = 0; ; attempt++) {
    try {
      const firstCreated = await mkdir(dir, { recursive: true });
      if (firstCreated !== undefined) {
        // New directory entries are durable once their parents are fsynced.
        for (let d = dir; d !== dirname(firstCreated); d = dirname(d)) {
          await fsyncDir(dirname(d));
        }
      }
      if (createOnly) {
        await link(tmp, target);
        await unlink(tmp);
      } else {
        await rename(tmp, target);
      }
      break;
    } catch (err) {
      if (attempt >= 3 || (err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw err;
      }
    }
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function ioError(message: string, err: unknown): CloudError {
  if (err instanceof CloudError) {
    return err;
  }
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return new CloudError('CLOUD_IO', `${message}: ${code ?? String(err)}`, {
    transient: code !== undefined && TRANSIENT_ERRNO.has(code),
    cause: err,
  });
}
