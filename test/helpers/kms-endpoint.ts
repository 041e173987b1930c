// A protocol-faithful AWS KMS endpoint (JSON 1.1, "TrentService") for tests, on 127.0.0.1:0. No
// offline KMS exists, so this one enforces what the KMS API reference says the service checks, and
// the real @aws-sdk/client-kms talks to it with only the endpoint URL changed:
//   - every request: POST /, Content-Type application/x-amz-json-1.1, X-Amz-Target
//     TrentService.<Operation>, a valid SigV4 signature for service `kms` (known test credentials);
//   - KeyId as key id, key ARN, alias name (alias/…) or alias ARN; unknown → NotFoundException;
//     a disabled key → DisabledException; a key whose policy denies the caller → AccessDeniedException;
//   - GenerateDataKey: exactly one of KeySpec (AES_256 | AES_128) and NumberOfBytes (1–1024);
//     Encrypt: Plaintext of 1–4096 bytes; both answer the key ARN;
//   - Decrypt: the ciphertext names its key; a KeyId that is not that key → IncorrectKeyException;
//     an EncryptionContext that is not exactly the one given at encryption → InvalidCiphertextException;
//   - throttling on demand (`throttleNext`): 400 ThrottlingException;
//   - errors as KMS sends them: HTTP 400 with JSON {__type, message}.
// Ciphertext blobs are this endpoint's own (AES-256-GCM under the key's secret): opaque to clients.

import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AwsApiError } from '../../src/api/aws/aws-error.js';
import { verifySigV4 } from '../../src/api/aws/sigv4.js';

export const KMS_TEST_CREDENTIALS = { accessKeyId: 'AKIDKMSTEST', secretAccessKey: 'kms-test-secret' };
export const KMS_TEST_REGION = 'us-east-1';
const ACCOUNT_ID = '123456789012';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Key {
  id: string;
  arn: string;
  secret: Buffer;
  enabled: boolean;
  /** The key policy denies the test credentials every use. */
  denied: boolean;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export class KmsEndpoint {
  /** Every operation received (X-Amz-Target without the prefix) with its JSON body. */
  readonly calls: Array<{ operation: string; body: Record<string, unknown> }> = [];
  /** The next this-many requests fail with ThrottlingException. */
  throttleNext = 0;
  readonly #keys = new Map<string, Key>();
  readonly #aliases = new Map<string, string>();
  #server: Server | null = null;
  #port = 0;

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** A new enabled symmetric key; `alias` without the alias/ prefix. */
  createKey(opts: { alias?: string } = {}): { keyId: string; arn: string } {
    const id = randomUUID();
    const key: Key = { id, arn: `arn:aws:kms:${KMS_TEST_REGION}:${ACCOUNT_ID}:key/${id}`, secret: randomBytes(32), enabled: true, denied: false };
    this.#keys.set(id, key);
    if (opts.alias !== undefined) this.#aliases.set(`alias/${opts.alias}`, id);
    return { keyId: id, arn: key.arn };
  }

  /** DisableKey / EnableKey. */
  setEnabled(keyId: string, enabled: boolean): void {
    this.#keys.get(keyId)!.enabled = enabled;
  }

  /** A key policy that denies (true) or allows (false) the test credentials. */
  setDenied(keyId: string, denied: boolean): void {
    this.#keys.get(keyId)!.denied = denied;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    try {
      const answer = this.#dispatch(req, body);
      send(res, 200, answer);
    } catch (err) {
      if (err instanceof KmsError) return send(res, 400, { __type: err.type, message: err.message });
      if (err instanceof AwsApiError) return send(res, err.statusCode, { __type: err.type, message: err.message });
      send(res, 500, { __type: 'KMSInternalException', message: String(err) });
    }
  }

  #dispatch(req: IncomingMessage, body: Buffer): Record<string, unknown> {
    if (req.method !== 'POST' || req.url !== '/') throw new KmsError('UnknownOperationException', `${req.method} ${req.url} is not a KMS operation`);
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') {
      throw new KmsError('SerializationException', 'Content-Type must be application/x-amz-json-1.1');
    }
    verifySigV4(
      { method: 'POST', url: '/', headers: req.headers, body },
      { keys: [KMS_TEST_CREDENTIALS], region: KMS_TEST_REGION, service: 'kms', nowMs: Date.now() },
    );
    const target = req.headers['x-amz-target'];
    if (typeof target !== 'string' || !target.startsWith('TrentService.')) throw new KmsError('UnknownOperationException', 'X-Amz-Target must be TrentService.<Operation>');
    const operation = target.slice('TrentService.'.length);
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new KmsError('SerializationException', 'the body is not JSON');
    }
    this.calls.push({ operation, body: input });
    if (this.throttleNext > 0) {
      this.throttleNext--;
      throw new KmsError('ThrottlingException', 'Rate exceeded');
    }
    switch (operation) {
      case 'GenerateDataKey':
        return this.#generateDataKey(input);
      case 'Encrypt':
        return this.#encrypt(input);
      case 'Decrypt':
        return this.#decrypt(input);
      default:
        throw new KmsError('UnknownOperationException', `unknown operation ${operation}`);
    }
  }

  #generateDataKey(input: Record<string, unknown>): Record<string, unknown> {
    const key = this.#usableKey(input.KeyId);
    const context = encryptionContext(input.EncryptionContext);
    const hasSpec = input.KeySpec !== undefined;
    const hasBytes = input.NumberOfBytes !== undefined;
    if (hasSpec === hasBytes) throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
    let lengthBytes: number;
    if (hasSpec) {
      if (input.KeySpec !== 'AES_256' && input.KeySpec !== 'AES_128') throw new KmsError('ValidationException', `1 validation error detected: Value '${String(input.KeySpec)}' at 'keySpec' failed to satisfy constraint`);
      lengthBytes = input.KeySpec === 'AES_256' ? 32 : 16;
    } else {
      lengthBytes = Number(input.NumberOfBytes);
      if (!Number.isInteger(lengthBytes) || lengthBytes < 1 || lengthBytes > 1024) throw new KmsError('ValidationException', 'NumberOfBytes must be 1 to 1024');
    }
    const plaintext = randomBytes(lengthBytes);
    return { KeyId: key.arn, Plaintext: plaintext.toString('base64'), CiphertextBlob: seal(key, plaintext, context).toString('base64') };
  }

  #encrypt(input: Record<string, unknown>): Record<string, unknown> {
    const key = this.#usableKey(input.KeyId);
    const plaintext = Buffer.from(String(input.Plaintext ?? ''), 'base64');
    if (plaintext.length < 1 || plaintext.length > 4096) throw new KmsError('ValidationException', 'Plaintext must be 1 to 4096 bytes');
    return { KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', CiphertextBlob: seal(key, plaintext, encryptionContext(input.EncryptionContext)).toString('base64') };
  }

  #decrypt(input: Record<string, unknown>): Record<string, unknown> {
    const blob = Buffer.from(String(input.CiphertextBlob ?? ''), 'base64');
    const keyUuid = blob.subarray(1, 37).toString('ascii');
    const key = blob[0] === 1 ? this.#keys.get(keyUuid) : undefined;
    if (key === undefined) throw new KmsError('InvalidCiphertextException', '');
    if (input.KeyId !== undefined && this.#resolve(input.KeyId) !== key) {
      throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
    }
    this.#checkUsable(key);
    const plaintext = open(key, blob, encryptionContext(input.EncryptionContext));
    if (plaintext === null) throw new KmsError('InvalidCiphertextException', '');
    return { KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', Plaintext: plaintext.toString('base64') };
  }

  #resolve(keyId: unknown): Key {
    if (typeof keyId !== 'string' || keyId.length === 0) throw new KmsError('ValidationException', 'KeyId is required');
    let id: string | undefined;
    const arn = /^arn:aws:kms:([^:]+):(\d{12}):(key\/.+|alias\/.+)$/.exec(keyId);
    const resource = arn === null ? keyId : arn[1] === KMS_TEST_REGION && arn[2] === ACCOUNT_ID ? arn[3] : undefined;
    if (resource === undefined) id = undefined;
    else if (resource.startsWith('alias/')) id = this.#aliases.get(resource);
    else if (resource.startsWith('key/')) id = resource.slice(4);
    else if (UUID.test(resource)) id = resource;
    const key = id === undefined ? undefined : this.#keys.get(id);
    if (key === undefined) {
      throw new KmsError('NotFoundException', keyId.includes('alias/') ? `Alias ${keyId} is not found.` : `Key '${keyId}' does not exist`);
    }
    return key;
  }

  #usableKey(keyId: unknown): Key {
    const key = this.#resolve(keyId);
    this.#checkUsable(key);
    return key;
  }

  #checkUsable(key: Key): void {
    if (key.denied) {
      throw new KmsError('AccessDeniedException', `User: arn:aws:iam::${ACCOUNT_ID}:user/test is not authorized to perform this operation on resource ${key.arn} because no resource-based policy allows it`);
    }
    if (!key.enabled) throw new KmsError('DisabledException', `${key.arn} is disabled.`);
  }
}

function encryptionContext(value: unknown): Buffer {
  if (value === undefined) return Buffer.from('[]');
  if (typeof value !== 'object' || value === null || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new KmsError('ValidationException', 'EncryptionContext must map strings to strings');
  }
  const pairs = Object.entries(value as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(pairs));
}

function seal(key: Key, plaintext: Buffer, context: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.secret, iv);
  cipher.setAAD(context);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(1), Buffer.from(key.id, 'ascii'), iv, body, cipher.getAuthTag()]);
}

function open(key: Key, blob: Buffer, context: Buffer): Buffer | null {
  if (blob.length < 1 + 36 + 12 + 16) return null;
  const decipher = createDecipheriv('aes-256-gcm', key.secret, blob.subarray(37, 49));
  decipher.setAAD(context);
  decipher.setAuthTag(blob.subarray(blob.length - 16));
  try {
    return Buffer.concat([decipher.update(blob.subarray(49, blob.length - 16)), decipher.final()]);
  } catch {
    return null;
  }
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
