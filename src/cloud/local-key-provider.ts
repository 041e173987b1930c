// The local key file (docs/encryption.md "Key file"): key-encryption keys the user keeps on the
// gateway's disk. Created on the first start with mode 0600; LOSING IT LOSES THE DATA, so the
// gateway warns when it creates one. Rotation adds a key and makes it current; older keys stay
// until every wrapped data key has been re-wrapped (DataKeyRing.rewrapAll), then may be retired.
//
// File: { "format": 1, "current": "<id>", "keys": [ { "id", "createdAt", "key": base64 32 bytes } ] }
// A data key is wrapped with AES-256-GCM under the key (NIST SP 800-38D): iv (12) | ciphertext |
// tag (16), the encryption context as associated data.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { CloudError } from './cloud-error.js';
import { canonicalContext, DATA_KEY_BYTES, type EncryptionContext, type KeyProvider, type WrappedDataKey } from './key-provider.js';

const keyFileSchema = z.strictObject({
  format: z.literal(1),
  current: z.string().min(1),
  keys: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
        createdAt: z.string(),
        key: z.string().refine((k) => Buffer.from(k, 'base64').length === DATA_KEY_BYTES, 'must be 32 bytes, base64'),
      }),
    )
    .min(1),
});
type KeyFile = z.infer<typeof keyFileSchema>;

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface LocalKeyProviderOptions {
  /** Create the file when it does not exist (the gateway's first start). */
  create: boolean;
  /** Told when a key file is created or has loose permissions. */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

export class LocalKeyProvider implements KeyProvider {
  readonly kind = 'local';
  readonly path: string;
  #file: KeyFile;

  private constructor(path: string, file: KeyFile) {
    this.path = path;
    this.#file = file;
  }

  static async open(path: string, opts: LocalKeyProviderOptions): Promise<LocalKeyProvider> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !opts.create) {
        throw new CloudError('CLOUD_KEY', `cannot read the encryption key file ${path}: ${(err as Error).message}; restore it from your backup (without it the encrypted data cannot be read)`, { cause: err });
      }
      const file: KeyFile = { format: 1, current: '', keys: [] };
      const provider = new LocalKeyProvider(path, file);
      provider.#addKey();
      await provider.#save(true);
      opts.warn?.(
        `created the encryption key file ${path}: BACK IT UP NOW and keep it apart from the bucket; if it is lost, the data in the bucket cannot be read by anyone`,
        { keyFile: path, keyId: file.current },
      );
      return provider;
    }
    let parsed: KeyFile;
    try {
      parsed = keyFileSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new CloudError('CLOUD_KEY', `the encryption key file ${path} is damaged (${(err as Error).message}); restore it from your backup`, { cause: err });
    }
    if (!parsed.keys.some((k) => k.id === parsed.current)) {
      throw new CloudError('CLOUD_KEY', `the encryption key file ${path} names current key ${parsed.current}, which it does not hold`);
    }
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      opts.warn?.(`the encryption key file ${path} is readable by others (mode ${mode.toString(8)}); run chmod 600 ${path}`, { keyFile: path });
    }
    return new LocalKeyProvider(path, parsed);
  }

  get keyId(): string {
    return this.#file.current;
  }

  /** Ids of every key in the file, oldest first. */
  keyIds(): string[] {
    return this.#file.keys.map((k) => k.id);
  }

  async generateDataKey(context: EncryptionContext): Promise<{ plaintext: Buffer; wrapped: WrappedDataKey }> {
    const plaintext = randomBytes(DATA_KEY_BYTES);
    return { plaintext, wrapped: await this.wrap(plaintext, context) };
  }

  async wrap(plaintext: Buffer, context: EncryptionContext): Promise<WrappedDataKey> {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key(this.keyId), iv);
    cipher.setAAD(canonicalContext(context));
    const body = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { provider: 'local', keyId: this.keyId, ciphertext: body.toString('base64') };
  }

  async unwrap(wrapped: WrappedDataKey, context: EncryptionContext): Promise<Buffer> {
    if (wrapped.provider !== 'local') {
      throw new CloudError('CLOUD_KEY', `a data key is wrapped by KMS key ${wrapped.keyId}, but encryption.keySource is "local": configure that KMS key`);
    }
    const body = Buffer.from(wrapped.ciphertext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.#key(wrapped.keyId), body.subarray(0, IV_BYTES));
    decipher.setAAD(canonicalContext(context));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), decipher.final()]);
    } catch (err) {
      throw new CloudError('CLOUD_KEY', `a data key wrapped by key ${wrapped.keyId} of ${this.path} does not decrypt: the key file is not the one the data was written with`, { cause: err });
    }
  }

  /** Adds a fresh key and makes it current; wraps from now on use it (unwraps still accept the
   *  older keys). Returns the new key id. */
  async rotate(): Promise<string> {
    this.#addKey();
    await this.#save(false);
    return this.keyId;
  }

  /** Removes keys other than the current one (after DataKeyRing.rewrapAll re-wrapped everything). */
  async retireOldKeys(): Promise<string[]> {
    const retired = this.#file.keys.filter((k) => k.id !== this.keyId).map((k) => k.id);
    this.#file = { ...this.#file, keys: this.#file.keys.filter((k) => k.id === this.keyId) };
    await this.#save(false);
    return retired;
  }

  #key(id: string): Buffer {
    const entry = this.#file.keys.find((k) => k.id === id);
    if (entry === undefined) {
      throw new CloudError(
        'CLOUD_KEY',
        `data in the bucket is encrypted under key ${id}, which is not in the key file ${this.path}: restore the key file the data was written with (the gateway that wrote it has it)`,
      );
    }
    return Buffer.from(entry.key, 'base64');
  }

  #addKey(): void {
    const createdAt = new Date().toISOString();
    const id = `k-${createdAt.slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`;
    this.#file = { ...this.#file, current: id, keys: [...this.#file.keys, { id, createdAt, key: randomBytes(DATA_KEY_BYTES).toString('base64') }] };
  }

  /** Write to a temporary file (0600), fsync, rename over the old one, fsync the directory. */
  async #save(exclusive: boolean): Promise<void> {
    const tmp = join(dirname(this.path), `.${randomBytes(6).toString('hex')}.key-tmp`);
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(this.#file, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (exclusive) {
      // First start: never replace a key file that appeared meanwhile.
      try {
        await stat(this.path);
        await unlink(tmp);
        throw new CloudError('CLOUD_KEY', `the encryption key file ${this.path} appeared while it was being created; start again`);
      } catch (err) {
        if (err instanceof CloudError) throw err;
      }
    }
    await rename(tmp, this.path);
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
