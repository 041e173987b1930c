import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig, resolveConfig, type ConfigOverrides } from '../src/config.js';
import { formatSize, parseSize } from '../src/size.js';

/** The error lines resolveConfig throws, or [] when the document is valid. */
function errors(raw: unknown, overrides: ConfigOverrides = {}): string[] {
  try {
    resolveConfig(raw, overrides);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.lines;
    throw err;
  }
}

const secret = 'abcdefghijkl'; // 12 characters

t.test('Size.Parse: binary units, bytes, and helpful refusals', async (t) => {
  t.equal(parseSize('1GiB'), 2 ** 30);
  t.equal(parseSize('16 TiB'), 16 * 2 ** 40);
  t.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  t.equal(parseSize('1073741824'), 2 ** 30);
  t.equal(parseSize(4096), 4096);
  t.throws(() => parseSize('10GB'), { message: 'unknown unit "GB" in "10GB"; use binary units like "10GiB"' });
  t.throws(() => parseSize('lots'), /must be a size like/);
  t.throws(() => parseSize(-1), /whole number of bytes/);
  t.equal(formatSize(3 * 2 ** 30), '3GiB');
  t.equal(formatSize(1536), '1536B');
});

t.test('Config.Defaults', async (t) => {
  t.same(resolveConfig({}, {}), {
    gateway: { name: 'shelfgate' },
    dataDir: './shelfgate-data',
    iscsi: {
      listen: { host: '0.0.0.0', port: 3260 },
      advertise: [],
      // docs/security.md "iSCSI limits": the documented defaults.
      limits: {
        maxTextBytes: 64 * 1024,
        connectionWriteBufferBytes: 32 * 2 ** 20,
        totalWriteBufferBytes: 128 * 2 ** 20,
        connectionResponseBytes: 16 * 2 ** 20,
        totalResponseBytes: 128 * 2 ** 20,
        commandWindow: 128,
        maxTasks: 160,
        stallTimeoutMs: 30_000,
        loginTimeoutMs: 30_000,
      },
      loginThrottle: { enabled: true, baseDelayMs: 250, maxDelayMs: 8000, refuseAfterFailures: 10, refuseForMs: 60_000, forgetAfterMs: 900_000 },
    },
    api: { listen: { host: '127.0.0.1', port: 8080 }, auth: 'token', allowedHosts: [], public: [] },
    log: { level: 'info', format: 'human' },
    volumes: [],
    tapeLibrary: { enabled: true, archive: { type: 'local', retrievalDelayMs: 0 }, changerType: 'AWS-Gateway-VTL', tapes: [] },
    objectStore: { type: 'local' },
    cache: { sizeBytes: 16 * 2 ** 30 },
    uploadBuffer: { sizeBytes: 8 * 2 ** 30, holdMs: 5000 },
    encryption: { keySource: 'none', kmsRegion: 'us-east-1', allowUnencryptedReads: false },
  });
  t.same(resolveConfig(null, {}).volumes, [], 'a null document is an empty configuration');
});

t.test('Config.Encryption: key sources and server-side encryption', async (t) => {
  t.match(resolveConfig({ encryption: { keySource: 'local' } }, {}).encryption, { keySource: 'local' });
  t.throws(() => resolveConfig({ encryption: { keySource: 'kms' } }, {}), { message: 'config error: encryption.kmsKeyId: is required with keySource: kms (a key id, ARN or alias/name)' });
  t.throws(() => resolveConfig({ encryption: { keySource: 'vault' } }, {}), /^config error: encryption.keySource: /);
  t.match(resolveConfig({ objectStore: { type: 's3', bucket: 'b', serverSideEncryption: 'aws:kms', sseKmsKeyId: 'alias/s3' } }, {}).objectStore, {
    serverSideEncryption: 'aws:kms',
    sseKmsKeyId: 'alias/s3',
  });
});

t.test('Config.TapeLibrary: changer type, slots, tapes and flags', async (t) => {
  const config = resolveConfig(
    {
      tapeLibrary: {
        changerType: 'STK-L700',
        slots: { storage: 100, importExport: 10 },
        tapes: [{ prefix: 'VTL', count: 10 }, { prefix: 'BIG', count: 2, size: '15TiB' }],
      },
    },
    {},
  );
  t.same(config.tapeLibrary, {
    enabled: true,
    archive: { type: 'local', retrievalDelayMs: 0 },
    changerType: 'STK-L700',
    slots: { storage: 100, importExport: 10 },
    tapes: [
      { prefix: 'VTL', count: 10, sizeBytes: 100 * 2 ** 30 },
      { prefix: 'BIG', count: 2, sizeBytes: 15 * 2 ** 40 },
    ],
  });
  const flags = resolveConfig(
    { tapeLibrary: { tapes: [{ prefix: 'FILE', count: 1 }] } },
    { tapes: ['AB:5', 'CD:1:200GiB'], changerType: 'IBM-03584L32-0402', tapeSlots: '50:5' },
  );
  t.same(flags.tapeLibrary, {
    enabled: true,
    archive: { type: 'local', retrievalDelayMs: 0 },
    changerType: 'IBM-03584L32-0402',
    slots: { storage: 50, importExport: 5 },
    tapes: [
      { prefix: 'FILE', count: 1, sizeBytes: 100 * 2 ** 30 },
      { prefix: 'AB', count: 5, sizeBytes: 100 * 2 ** 30 },
      { prefix: 'CD', count: 1, sizeBytes: 200 * 2 ** 30 },
    ],
  }, '--tapes adds to the file\'s tapes; --changer-type and --tape-slots override');
  t.equal(resolveConfig({ tapeLibrary: { enabled: false } }, {}).tapeLibrary.enabled, false);
});

t.test('Config.TapeLibrary.Errors: each names its key or flag', async (t) => {
  t.same(errors({ tapeLibrary: { changerType: 'ACME' } }), [
    'config error: tapeLibrary.changerType: invalid option: expected one of "STK-L700"|"AWS-Gateway-VTL"|"IBM-03584L32-0402"',
  ]);
  t.same(errors({ tapeLibrary: { tapes: [{ prefix: 'vtl1', count: 1 }] } }), [
    'config error: tapeLibrary.tapes[0].prefix: must be 1 to 4 letters A-Z (the barcode prefix)',
  ]);
  t.same(errors({ tapeLibrary: { tapes: [{ prefix: 'ABCDE', count: 1 }] } }), [
    'config error: tapeLibrary.tapes[0].prefix: must be 1 to 4 letters A-Z (the barcode prefix)',
  ]);
  t.same(errors({ tapeLibrary: { tapes: [{ prefix: 'A', count: 0 }] } }), ['config error: tapeLibrary.tapes[0].count: must be at least 1']);
  t.same(errors({ tapeLibrary: { tapes: [{ prefix: 'A', count: 1501 }] } }), [
    'config error: tapeLibrary.tapes[0].count: must be at most 1500',
    'config error: tapeLibrary.tapes: 1501 tapes in all; a library holds at most 1500',
  ]);
  t.same(errors({ tapeLibrary: { tapes: [{ prefix: 'A', count: 1000 }, { prefix: 'B', count: 501 }] } }), [
    'config error: tapeLibrary.tapes: 1501 tapes in all; a library holds at most 1500',
  ]);
  t.same(errors({ tapeLibrary: { tapes: [{ prefix: 'A', count: 1, size: '99GiB' }] } }), [
    'config error: tapeLibrary.tapes[0].size: must be a whole number of GiB from 100GiB to 15TiB (got "99GiB")',
  ]);
  t.same(errors({ tapeLibrary: { tapes: [{ prefix: 'A', count: 1, size: '16TiB' }] } }), [
    'config error: tapeLibrary.tapes[0].size: must be a whole number of GiB from 100GiB to 15TiB (got "16TiB")',
  ]);
  t.same(errors({ tapeLibrary: { slots: { storage: 0, importExport: 1 } } }), ['config error: tapeLibrary.slots.storage: must be at least 1']);
  t.same(errors({ tapeLibrary: { slot: {} } }), ['config error: tapeLibrary.slot: unknown key']);
  t.same(errors({}, { tapes: ['VTL'] }), ['config error: --tapes "VTL": expected PREFIX:COUNT[:SIZE], e.g. VTL:10:100GiB']);
  t.same(errors({}, { tapes: ['VTL:x'] }), ['config error: --tapes "VTL:x": expected PREFIX:COUNT[:SIZE], e.g. VTL:10:100GiB']);
  t.same(errors({}, { tapes: ['VTL:1:1GiB'] }), [
    'config error: tapeLibrary.tapes[0].size: must be a whole number of GiB from 100GiB to 15TiB (got "1GiB")',
  ]);
  t.same(errors({}, { tapeSlots: '100' }), ['config error: --tape-slots "100": expected STORAGE:IE, e.g. 100:10']);
  t.same(errors({ tapeLibrary: { requireDriveUnload: true } }), [
    'config error: tapeLibrary.requireDriveUnload: is the IBM-03584L32-0402 behaviour; set changerType: IBM-03584L32-0402 or remove it (changerType is AWS-Gateway-VTL)',
  ]);
  t.equal(resolveConfig({ tapeLibrary: { changerType: 'IBM-03584L32-0402', requireDriveUnload: true } }, {}).tapeLibrary.requireDriveUnload, true);
  t.same(errors({}, { changerType: 'stk' }), [
    'config error: tapeLibrary.changerType: invalid option: expected one of "STK-L700"|"AWS-Gateway-VTL"|"IBM-03584L32-0402"',
  ]);
});

t.test('Config.TapeArchive: local (default), glacier, s3-archive; errors name the key', async (t) => {
  t.same(resolveConfig({ tapeLibrary: { archive: { type: 'local', path: '/srv/archive', retrievalDelayMs: 5000 } } }, {}).tapeLibrary.archive, {
    type: 'local',
    path: '/srv/archive',
    retrievalDelayMs: 5000,
  });
  t.same(resolveConfig({ tapeLibrary: { archive: { type: 'glacier', vault: 'tapes', endpoint: 'http://127.0.0.1:9000' } } }, {}).tapeLibrary.archive, {
    type: 'glacier',
    vault: 'tapes',
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9000',
  });
  t.same(resolveConfig({ tapeLibrary: { archive: { type: 's3-archive', bucket: 'vts', storageClass: 'DEEP_ARCHIVE' } } }, {}).tapeLibrary.archive, {
    type: 's3-archive',
    bucket: 'vts',
    region: 'us-east-1',
    storageClass: 'DEEP_ARCHIVE',
    retrieval: 'restore',
  });
  t.same(errors({ tapeLibrary: { archive: { type: 'glacier' } } }), ['config error: tapeLibrary.archive.vault: must name the Glacier vault']);
  t.same(errors({ tapeLibrary: { archive: { type: 's3-archive', bucket: 'vts', storageClass: 'STANDARD' } } }), [
    'config error: tapeLibrary.archive.storageClass: invalid option: expected one of "GLACIER"|"DEEP_ARCHIVE"',
  ]);
});

t.test('Config.Volume: sizes, types and defaults', async (t) => {
  const config = resolveConfig(
    {
      volumes: [
        { name: 'vol1', size: '100GiB' },
        { name: 'big.cache', type: 'cached', size: '32TiB', initiators: ['iqn.1994-05.com.redhat:host1'] },
        { name: 'bytes', size: 2 ** 30, chap: { user: 'u', secret, mutualUser: 'm', mutualSecret: 'mnopqrstuvwx' } },
      ],
    },
    {},
  );
  t.same(config.volumes, [
    { name: 'vol1', type: 'stored', sizeBytes: 100 * 2 ** 30 },
    { name: 'big.cache', type: 'cached', sizeBytes: 32 * 2 ** 40, initiators: ['iqn.1994-05.com.redhat:host1'] },
    {
      name: 'bytes',
      type: 'stored',
      sizeBytes: 2 ** 30,
      chap: { user: 'u', secret, mutualUser: 'm', mutualSecret: 'mnopqrstuvwx' },
    },
  ]);
});

t.test('Config.Errors: each names its key path', async (t) => {
  t.same(errors({ volumes: [{ name: 'ok', size: '1GiB' }, { name: 'small', size: '10MiB' }] }), [
    'config error: volumes[1].size: must be at least 1GiB (got "10MiB")',
  ]);
  t.same(errors({ volumes: [{ name: 'v', size: '17TiB' }] }), [
    'config error: volumes[0].size: must be at most 16TiB for a stored volume (got "17TiB")',
  ]);
  t.same(errors({ volumes: [{ name: 'v', type: 'cached', size: '33TiB' }] }), [
    'config error: volumes[0].size: must be at most 32TiB for a cached volume (got "33TiB")',
  ]);
  t.same(errors({ volumes: [{ name: 'v', size: '1.5GiB' }] }), [
    'config error: volumes[0].size: must be a whole number of GiB, like AWS volumes (got "1.5GiB")',
  ]);
  t.same(errors({ volumes: [{ name: 'v', size: '10GB' }] }), [
    'config error: volumes[0].size: unknown unit "GB" in "10GB"; use binary units like "10GiB"',
  ]);
  t.same(errors({ volumes: [{ name: 'Vol_1', size: '1GiB' }] }), [
    'config error: volumes[0].name: must contain only lower-case letters, digits, "-" and "."',
  ]);
  t.same(errors({ volumes: [{ name: 'a', size: '1GiB' }, { name: 'a', size: '2GiB' }] }), [
    'config error: volumes[1].name: duplicate volume name "a" (also volumes[0])',
  ]);
  t.same(errors({ volumes: [{ name: 'a', size: '1GiB', sise: 1 }] }), ['config error: volumes[0].sise: unknown key']);
  t.same(errors({ volumes: [{ name: 'a', size: '1GiB', chap: { user: 'u', secret: 'short' } }] }), [
    'config error: volumes[0].chap.secret: must be 12 to 16 characters (AWS CHAP secret rule)',
  ]);
  t.same(errors({ volumes: [{ name: 'a', size: '1GiB', chap: { user: 'u', secret, mutualUser: 'm', mutualSecret: secret } }] }), [
    'config error: volumes[0].chap.mutualSecret: must differ from secret (RFC 7143 12.1.3)',
  ]);
  t.same(errors({ volumes: [{ name: 'a', size: '1GiB', chap: { user: 'u', secret, mutualUser: 'm' } }] }), [
    'config error: volumes[0].chap.mutualSecret: mutualUser and mutualSecret go together (mutual CHAP needs both)',
  ]);
  t.same(errors({ volumes: [{ name: 'a', size: '1GiB', initiators: ['host1'] }] }), [
    'config error: volumes[0].initiators[0]: must be an iSCSI name (iqn.YYYY-MM.…, eui.…, naa.…)',
  ]);
  t.same(errors({ iscsi: { listen: '3260' } }), [
    'config error: iscsi.listen: must be HOST:PORT like "127.0.0.1:3260" or "[::1]:3260" (got "3260")',
  ]);
  t.same(errors({ gateway: { name: 'GW', accountId: '12' } }), [
    'config error: gateway.name: must contain only lower-case letters, digits, "-" and "."',
    'config error: gateway.accountId: must be 12 digits',
  ]);
  t.same(errors({ log: { level: 'loud' } }), [
    'config error: log.level: invalid option: expected one of "debug"|"info"|"warn"|"error"|"silent"',
  ]);
  t.same(errors({ volume: [] }), ['config error: volume: unknown key']);
  t.same(errors([1, 2]), [
    'config error: the configuration must be a mapping of keys (gateway, dataDir, iscsi, api, log, volumes)',
  ]);
});

t.test('Config.IscsiLimits: sizes, and limits that contradict each other name their key', async (t) => {
  const limits = resolveConfig({ iscsi: { limits: { connectionWriteBufferBytes: '8MiB', totalWriteBufferBytes: '64MiB', stallTimeoutMs: 5000 } } }, {}).iscsi.limits;
  t.equal(limits.connectionWriteBufferBytes, 8 * 2 ** 20);
  t.equal(limits.totalWriteBufferBytes, 64 * 2 ** 20);
  t.equal(limits.stallTimeoutMs, 5000);
  t.equal(limits.maxTextBytes, 64 * 1024, 'unset keys keep their defaults');
  const message = (raw: unknown): string => {
    try {
      resolveConfig(raw, {});
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  t.match(message({ iscsi: { limits: { totalWriteBufferBytes: '1MiB', connectionWriteBufferBytes: '2MiB' } } }), /iscsi\.limits\.totalWriteBufferBytes.*at least connectionWriteBufferBytes/s);
  t.match(message({ iscsi: { limits: { maxTextBytes: 100 } } }), /iscsi\.limits\.maxTextBytes.*8KiB/s);
  t.match(message({ iscsi: { limits: { commandWindow: 200 } } }), /iscsi\.limits\.maxTasks.*commandWindow/s);
  t.match(message({ iscsi: { limits: { stalTimeoutMs: 5 } } }), /stalTimeoutMs/);
});

t.test('Config.Overrides: flags win over the file', async (t) => {
  const config = resolveConfig(
    {
      dataDir: '/from/file',
      iscsi: { listen: '0.0.0.0:3260', nopInIntervalMs: 5000 },
      volumes: [{ name: 'vol1', size: '1GiB', chap: { user: 'u', secret } }],
    },
    {
      dataDir: '/from/flag',
      iscsiListen: '[::1]:0',
      apiListen: '127.0.0.1:0',
      gatewayName: 'gw2',
      volumes: ['vol1:5GiB', 'vol2:2GiB'],
    },
  );
  t.equal(config.dataDir, '/from/flag');
  t.match(config.iscsi, { listen: { host: '::1', port: 0 }, advertise: [], nopInIntervalMs: 5000 });
  t.same(config.api.listen, { host: '127.0.0.1', port: 0 });
  t.equal(config.gateway.name, 'gw2');
  t.same(config.volumes, [
    { name: 'vol1', type: 'stored', sizeBytes: 5 * 2 ** 30, chap: { user: 'u', secret } },
    { name: 'vol2', type: 'stored', sizeBytes: 2 * 2 ** 30 },
  ]);
  t.same(errors({}, { volumes: ['nosize'] }), ['config error: --volume "nosize": expected NAME:SIZE, e.g. vol1:100GiB']);
  t.same(errors({}, { volumes: ['v:1MiB'] }), ['config error: volumes[0].size: must be at least 1GiB (got "1MiB")']);
  t.same(errors({}, { volumes: ['v:1GiB', 'v:2GiB'] }), [
    'config error: --volume "v:2GiB": volume "v" is given twice; pass each volume once',
  ]);
  t.equal(resolveConfig({}, {}, { SHELFGATE_LOG_LEVEL: 'debug' }).log.level, 'debug', 'environment sets the level');
  t.equal(resolveConfig({}, { logLevel: 'warn' }, { SHELFGATE_LOG_LEVEL: 'debug' }).log.level, 'warn', 'flag beats env');
});

t.test('Config.Advertise: HOST[:PORT] values, the port defaulting to the listen port', async (t) => {
  const config = resolveConfig({ iscsi: { listen: '0.0.0.0:3260', advertise: ['192.0.2.10:13260', 'gw.example.com', '[2001:db8::10]:3260'] } }, {});
  t.same(config.iscsi.advertise, [
    { host: '192.0.2.10', port: 13260 },
    { host: 'gw.example.com', port: 3260 },
    { host: '2001:db8::10', port: 3260 },
  ]);
  t.same(resolveConfig({ iscsi: { advertise: ['a.example:1'] } }, { advertise: ['198.51.100.7'], iscsiListen: '0.0.0.0:3261' }).iscsi.advertise, [
    { host: '198.51.100.7', port: 3261 },
  ], 'the flags replace the file; the port follows --iscsi-listen');
  for (const bad of ['', 'host:0', 'host:70000', '-bad', 'a b', 'http://x', '[zz::1]:3260']) {
    t.match(errors({ iscsi: { advertise: [bad] } }), [/^config error: iscsi\.advertise\[0\]: must be HOST\[:PORT\] like/], JSON.stringify(bad));
  }
});

t.test('Config.Environment: listeners, advertised portals, token and data dir for containers', async (t) => {
  const env = {
    SHELFGATE_DATA_DIR: '/data',
    SHELFGATE_ISCSI_LISTEN: '0.0.0.0:3261',
    SHELFGATE_ADVERTISE: '192.0.2.10:13260, 192.0.2.11',
    SHELFGATE_API_LISTEN: '0.0.0.0:8081',
    SHELFGATE_API_TOKEN: 'token-from-the-environment',
  };
  const config = resolveConfig({ dataDir: '/file', api: { token: 'token-from-the-file-0000' } }, {}, env);
  t.equal(config.dataDir, '/data');
  t.same(config.iscsi.listen, { host: '0.0.0.0', port: 3261 });
  t.same(config.iscsi.advertise, [{ host: '192.0.2.10', port: 13260 }, { host: '192.0.2.11', port: 3261 }]);
  t.same(config.api.listen, { host: '0.0.0.0', port: 8081 });
  t.equal(config.api.token, 'token-from-the-environment', 'env beats the file');
  const flags = resolveConfig({}, { dataDir: '/flag', iscsiListen: '127.0.0.1:1', apiListen: '127.0.0.1:2', advertise: ['h:9'] }, env);
  t.same([flags.dataDir, flags.iscsi.listen.port, flags.api.listen.port, flags.iscsi.advertise], ['/flag', 1, 2, [{ host: 'h', port: 9 }]], 'flags beat env');
  t.same(resolveConfig({}, {}, { SHELFGATE_ADVERTISE: '' }).iscsi.advertise, [], 'an empty variable is unset');

  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const secretFile = join(dir, 'api_token');
  await writeFile(secretFile, 'token-from-a-secret-file\n');
  t.equal((await loadConfig({ env: { SHELFGATE_API_TOKEN_FILE: secretFile } })).api.token, 'token-from-a-secret-file', 'read and trimmed');
  await t.rejects(loadConfig({ env: { SHELFGATE_API_TOKEN_FILE: join(dir, 'missing') } }), {
    name: 'ConfigError',
    message: /SHELFGATE_API_TOKEN_FILE: cannot read .*missing/,
  });
  await t.rejects(loadConfig({ env: { SHELFGATE_API_TOKEN_FILE: secretFile, SHELFGATE_API_TOKEN: 'token-from-the-environment' } }), {
    name: 'ConfigError',
    message: /both set; set only one/,
  });
});

t.test('Config.Files: YAML and JSON', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const yamlFile = join(dir, 'shelfgate.yaml');
  await writeFile(yamlFile, 'gateway:\n  name: office\nvolumes:\n  - name: backup\n    type: cached\n    size: 2TiB\n');
  const fromYaml = await loadConfig({ file: yamlFile });
  t.equal(fromYaml.gateway.name, 'office');
  t.same(fromYaml.volumes, [{ name: 'backup', type: 'cached', sizeBytes: 2 * 2 ** 40 }]);

  const jsonFile = join(dir, 'shelfgate.json');
  await writeFile(jsonFile, JSON.stringify({ dataDir: '/var/lib/shelfgate', volumes: [{ name: 'v', size: 2 ** 30 }] }));
  t.equal((await loadConfig({ file: jsonFile })).dataDir, '/var/lib/shelfgate');

  await writeFile(jsonFile, '{ "volumes": [ }');
  await t.rejects(loadConfig({ file: jsonFile }), { name: 'ConfigError', message: /is not valid JSON/ });
  const empty = join(dir, 'empty.yaml');
  await writeFile(empty, '\n  \n');
  await t.rejects(loadConfig({ file: empty }), { name: 'ConfigError', message: /empty\.yaml is empty/ });
  const unknown = join(dir, 'shelfgate.conf');
  await writeFile(unknown, 'gateway:\n  name: office\n');
  await t.rejects(loadConfig({ file: unknown }), { name: 'ConfigError', message: /unknown extension "\.conf"/ });
  await t.rejects(loadConfig({ file: join(dir, 'missing.yaml') }), {
    name: 'ConfigError',
    message: /cannot read .*missing\.yaml/,
  });
});
