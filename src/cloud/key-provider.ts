// Key-encryption keys (docs/encryption.md): a KeyProvider wraps and unwraps the 256-bit data keys
// the encrypting stores use, and never hands out its own key. Implementations: LocalKeyProvider (a
// key file the user keeps) and KmsKeyProvider (AWS KMS). Every call binds an encryption context
// (KMS's term: string pairs that must be given again, unchanged, to unwrap), so a wrapped key copied
// to another purpose does not unwrap there. Errors are CloudError: CLOUD_KEY for a key that cannot
// be used (permanent), CLOUD_THROTTLED / CLOUD_UNAVAILABLE for KMS being busy or away (transient).

/** A data key as stored in the bucket: which provider and key wrapped it, and the wrapped bytes. */
export interface WrappedDataKey {
  provider: 'local' | 'kms';
  /** The key-encryption key: a key id of the key file, or the KMS key ARN. */
  keyId: string;
  /** Base64 of the provider's ciphertext. */
  ciphertext: string;
}

export type EncryptionContext = Record<string, string>;

export interface KeyProvider {
  readonly kind: 'local' | 'kms';
  /** The key-encryption key new data keys are wrapped with (for logs and status). */
  readonly keyId: string;
  /** A fresh random 256-bit data key and its wrapped form. */
  generateDataKey(context: EncryptionContext): Promise<{ plaintext: Buffer; wrapped: WrappedDataKey }>;
  /** Wraps an existing data key with the current key-encryption key (rotation). */
  wrap(plaintext: Buffer, context: EncryptionContext): Promise<WrappedDataKey>;
  unwrap(wrapped: WrappedDataKey, context: EncryptionContext): Promise<Buffer>;
}

export const DATA_KEY_BYTES = 32;

/** The context as one canonical string (keys sorted), for AEAD associated data. */
export function canonicalContext(context: EncryptionContext): Buffer {
  const sorted = Object.keys(context)
    .sort()
    .map((k) => [k, context[k]]);
  return Buffer.from(JSON.stringify(sorted), 'utf8');
}
