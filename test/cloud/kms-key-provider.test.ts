// KmsKeyProvider through the real @aws-sdk/client-kms against the protocol-faithful KMS endpoint
// (test/helpers/kms-endpoint.ts): key ids, ARNs and aliases; the encryption context KMS requires
// on Decrypt; wrong, disabled and denied keys; throttling; rotation from one KMS key to another.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EncryptingObjectStore } from '../../src/cloud/encrypting-object-store.js';
import { KmsKeyProvider, type KmsKeyProviderOptions } from '../../src/cloud/kms-key-provider.js';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import { KMS_TEST_CREDENTIALS, KMS_TEST_REGION, KmsEndpoint } from '../helpers/kms-endpoint.js';
import { pattern } from '../helpers/pattern.js';

const kms = new KmsEndpoint();
t.before(() => kms.start());
t.teardown(() => kms.stop());

function provider(keyId: string, opts: Partial<KmsKeyProviderOptions> = {}): KmsKeyProvider {
  return new KmsKeyProvider({ keyId, region: KMS_TEST_REGION, endpoint: kms.endpoint, credentials: KMS_TEST_CREDENTIALS, maxAttempts: 1, ...opts });
}

async function objectStore(t: { teardown(fn: () => Promise<void>): void }): Promise<LocalObjectStore> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-kms-objects-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return LocalObjectStore.open(dir);
}

const CONTEXT = { 'shelfgate:purpose': 'data-key', 'shelfgate:group': 'g1' };

t.test('GenerateDataKey and Decrypt by key id, ARN, alias and alias ARN; the context must match', async (t) => {
  const key = kms.createKey({ alias: 'shelfgate-test' });
  for (const keyId of [key.keyId, key.arn, 'alias/shelfgate-test', `arn:aws:kms:${KMS_TEST_REGION}:123456789012:alias/shelfgate-test`]) {
    const p = provider(keyId);
    const { plaintext, wrapped } = await p.generateDataKey(CONTEXT);
    t.equal(plaintext.length, 32, `${keyId}: a 256-bit data key`);
    t.same({ provider: wrapped.provider, keyId: wrapped.keyId }, { provider: 'kms', keyId: key.arn }, 'wrapped under the key ARN');
    t.ok((await p.unwrap(wrapped, CONTEXT)).equals(plaintext), 'unwraps');
    await t.rejects(p.unwrap(wrapped, { ...CONTEXT, 'shelfgate:group': 'g2' }), { code: 'CLOUD_KEY', message: /InvalidCiphertextException/ }, 'other context');
    await t.rejects(p.unwrap(wrapped, { 'shelfgate:purpose': 'data-key' }), { code: 'CLOUD_KEY', message: /InvalidCiphertextException/ }, 'missing pair');
  }
  const generate = kms.calls.find((c) => c.operation === 'GenerateDataKey');
  t.same(generate?.body, { KeyId: key.keyId, KeySpec: 'AES_256', EncryptionContext: CONTEXT }, 'the request KMS received');
  const decrypt = kms.calls.find((c) => c.operation === 'Decrypt');
  t.match(decrypt?.body, { KeyId: key.arn, EncryptionContext: CONTEXT, CiphertextBlob: String });
});

t.test('wrong key id, another key, disabled and denied keys', async (t) => {
  const key = kms.createKey();
  const other = kms.createKey();
  await t.rejects(provider('alias/no-such-alias').generateDataKey(CONTEXT), { code: 'CLOUD_KEY', transient: false, message: /NotFoundException.*check encryption.kmsKeyId/ });
  await t.rejects(provider('0b0b0b0b-1111-2222-3333-444444444444').generateDataKey(CONTEXT), { code: 'CLOUD_KEY', message: /NotFoundException/ });
  const { wrapped } = await provider(key.keyId).generateDataKey(CONTEXT);
  await t.rejects(provider(other.arn).unwrap({ ...wrapped, keyId: other.arn }, CONTEXT), { code: 'CLOUD_KEY', message: /IncorrectKeyException/ }, 'Decrypt naming another key');
  kms.setEnabled(key.keyId, false);
  await t.rejects(provider(key.keyId).unwrap(wrapped, CONTEXT), { code: 'CLOUD_KEY', message: /DisabledException.*enable it in KMS/ });
  await t.rejects(provider(key.keyId).generateDataKey(CONTEXT), { code: 'CLOUD_KEY', message: /DisabledException/ });
  kms.setEnabled(key.keyId, true);
  kms.setDenied(key.keyId, true);
  await t.rejects(provider(key.keyId).unwrap(wrapped, CONTEXT), { code: 'CLOUD_AUTH', message: /AccessDeniedException.*key policy/ });
  kms.setDenied(key.keyId, false);
  t.equal((await provider(key.keyId).unwrap(wrapped, CONTEXT)).length, 32, 'usable again');
  await t.rejects(
    new KmsKeyProvider({ keyId: key.keyId, region: KMS_TEST_REGION, endpoint: kms.endpoint, credentials: { accessKeyId: KMS_TEST_CREDENTIALS.accessKeyId, secretAccessKey: 'wrong' }, maxAttempts: 1 }).generateDataKey(CONTEXT),
    { code: 'CLOUD_AUTH', message: /InvalidSignatureException/ },
    'SigV4 checked',
  );
});

t.test('throttling: retried by the SDK, then CLOUD_THROTTLED (transient)', async (t) => {
  const key = kms.createKey();
  kms.throttleNext = 1;
  t.equal((await provider(key.keyId, { maxAttempts: 3 }).generateDataKey(CONTEXT)).plaintext.length, 32, 'one throttle is retried');
  kms.throttleNext = 2;
  await t.rejects(provider(key.keyId, { maxAttempts: 2 }).generateDataKey(CONTEXT), { code: 'CLOUD_THROTTLED', transient: true, message: /ThrottlingException/ });
  t.equal(kms.throttleNext, 0, 'both attempts reached the endpoint');
});

t.test('an encrypted store under KMS; rotation to another KMS key; the old key disabled', async (t) => {
  const keyA = kms.createKey({ alias: 'shelfgate-a' });
  const keyB = kms.createKey({ alias: 'shelfgate-b' });
  const inner = await objectStore(t);
  const store = await EncryptingObjectStore.open({ inner, provider: provider('alias/shelfgate-a') });
  const body = pattern(200_000, 11);
  await store.put('tapes/T1/index.json', body);
  const before = await inner.get('tapes/T1/index.json');

  const rewrapped = await store.keys.rewrapAll(provider('alias/shelfgate-b'));
  t.equal(rewrapped, 2, 'naming key and one data key re-wrapped');
  t.ok((await inner.get('tapes/T1/index.json')).equals(before), 'data not rewritten');
  kms.setEnabled(keyA.keyId, false);
  const reopened = await EncryptingObjectStore.open({ inner, provider: provider('alias/shelfgate-b') });
  t.ok((await reopened.get('tapes/T1/index.json')).equals(body), 'reads with key B alone');
  kms.setEnabled(keyB.keyId, false);
  await t.rejects(EncryptingObjectStore.open({ inner, provider: provider('alias/shelfgate-b') }), { code: 'CLOUD_KEY', message: /does not have .*DisabledException/ }, 'a disabled key stops the store opening, clearly');
});
