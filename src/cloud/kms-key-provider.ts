// AWS KMS as the key-encryption key (docs/encryption.md "AWS KMS"): data keys come from
// GenerateDataKey (AES_256) and are unwrapped with Decrypt; rotation to another KMS key wraps with
// Encrypt. The key is named by key id, key ARN, alias name or alias ARN, as KMS accepts it; the
// wrapped form records the key ARN KMS answers with, and Decrypt names it (KMS checks it matches).
// Every call carries the encryption context, which KMS requires unchanged on Decrypt.

import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CloudError } from './cloud-error.js';
import type { EncryptionContext, KeyProvider, WrappedDataKey } from './key-provider.js';
import { sdkRequestHandler } from './sdk-request-handler.js';

export interface KmsKeyProviderOptions {
  /** Key id, key ARN, alias/name or alias ARN. */
  keyId: string;
  region: string;
  /** KMS-compatible endpoint; omit for AWS. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** SDK attempts per call (throttling and 5xx are retried with backoff); default 3. */
  maxAttempts?: number;
  /** PEM CA bundle for an endpoint with a private certificate. */
  caBundle?: string;
}

export class KmsKeyProvider implements KeyProvider {
  readonly kind = 'kms';
  readonly keyId: string;
  readonly #client: KMSClient;

  constructor(opts: KmsKeyProviderOptions) {
    this.keyId = opts.keyId;
    this.#client = new KMSClient({
      region: opts.region,
      maxAttempts: opts.maxAttempts ?? 3,
      requestHandler: sdkRequestHandler({ ...(opts.caBundle !== undefined ? { caBundle: opts.caBundle } : {}) }, { requestTimeoutMs: 30_000, socketIdleTimeoutMs: 30_000 }),
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
    });
  }

  async generateDataKey(context: EncryptionContext): Promise<{ plaintext: Buffer; wrapped: WrappedDataKey }> {
    const res = await this.#call('GenerateDataKey', this.keyId, () =>
      this.#client.send(new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: context })),
    );
    if (res.Plaintext === undefined || res.CiphertextBlob === undefined || res.KeyId === undefined) {
      throw new CloudError('CLOUD_KEY', `KMS GenerateDataKey with key ${this.keyId} answered without a data key`);
    }
    return {
      plaintext: Buffer.from(res.Plaintext),
      wrapped: { provider: 'kms', keyId: res.KeyId, ciphertext: Buffer.from(res.CiphertextBlob).toString('base64') },
    };
  }

  async wrap(plaintext: Buffer, context: EncryptionContext): Promise<WrappedDataKey> {
    const res = await this.#call('Encrypt', this.keyId, () =>
      this.#client.send(new EncryptCommand({ KeyId: this.keyId, Plaintext: plaintext, EncryptionContext: context })),
    );
    if (res.CiphertextBlob === undefined || res.KeyId === undefined) {
      throw new CloudError('CLOUD_KEY', `KMS Encrypt with key ${this.keyId} answered without a ciphertext`);
    }
    return { provider: 'kms', keyId: res.KeyId, ciphertext: Buffer.from(res.CiphertextBlob).toString('base64') };
  }

  async unwrap(wrapped: WrappedDataKey, context: EncryptionContext): Promise<Buffer> {
    if (wrapped.provider !== 'kms') {
      throw new CloudError('CLOUD_KEY', `a data key is wrapped by key ${wrapped.keyId} of a local key file, but encryption.keySource is "kms": configure that key file`);
    }
    const res = await this.#call('Decrypt', wrapped.keyId, () =>
      this.#client.send(new DecryptCommand({ KeyId: wrapped.keyId, CiphertextBlob: Buffer.from(wrapped.ciphertext, 'base64'), EncryptionContext: context })),
    );
    if (res.Plaintext === undefined) throw new CloudError('CLOUD_KEY', `KMS Decrypt with key ${wrapped.keyId} answered without plaintext`);
    return Buffer.from(res.Plaintext);
  }

  async #call<T>(operation: string, keyId: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      throw classifyKmsError(err, `KMS ${operation} with key ${keyId}`);
    }
  }
}

/** KMS API reference "Errors" of GenerateDataKey, Encrypt and Decrypt → CloudError. */
export function classifyKmsError(err: unknown, what: string): CloudError {
  const name = (err as { name?: string }).name ?? 'Error';
  const message = `${what} failed: ${name}: ${(err as Error).message}`;
  switch (name) {
    case 'ThrottlingException':
    case 'LimitExceededException':
      return new CloudError('CLOUD_THROTTLED', message, { cause: err });
    case 'KMSInternalException':
    case 'DependencyTimeoutException':
    case 'KeyUnavailableException':
      return new CloudError('CLOUD_UNAVAILABLE', message, { cause: err });
    case 'NotFoundException':
      return new CloudError('CLOUD_KEY', `${message} (check encryption.kmsKeyId: no such key or alias in this account and region)`, { cause: err });
    case 'DisabledException':
      return new CloudError('CLOUD_KEY', `${message} (the key is disabled: enable it in KMS, or the data under it cannot be read)`, { cause: err });
    case 'KMSInvalidStateException':
      return new CloudError('CLOUD_KEY', `${message} (the key is pending deletion or import: cancel the deletion in KMS)`, { cause: err });
    case 'AccessDeniedException':
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
      return new CloudError('CLOUD_AUTH', `${message} (the gateway's credentials may not use this key: allow kms:GenerateDataKey, kms:Encrypt and kms:Decrypt in the key policy)`, { cause: err });
    case 'InvalidCiphertextException':
    case 'IncorrectKeyException':
    case 'InvalidKeyUsageException':
      return new CloudError('CLOUD_KEY', `${message} (the wrapped key does not belong to this key or context)`, { cause: err });
  }
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === undefined || status >= 500) return new CloudError('CLOUD_UNAVAILABLE', message, { cause: err });
  return new CloudError('CLOUD_INVALID_REQUEST', message, { cause: err });
}
