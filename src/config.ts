// The one configuration schema (ARCHITECTURE.md): a JSON or YAML file, with command-line flags
// merged on top. Every error names the key path it is about, e.g.
//   config error: volumes[1].size: must be at least 1GiB (got "10MiB")

import { DEFAULT_ISCSI_LIMITS } from '../iscsi/limits.js';
import { DEFAULT_LOGIN_THROTTLE } from '../iscsi/login-throttle.js';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LOG_LEVELS } from './log.js';
import { GiB, TiB, formatSize, parseSize } from './size.js';

/** Names that become part of an IQN (RFC 3722 allows lower-case letters, digits, '-', '.'). */
const NAME_PATTERN = /^[-.a-z0-9]+$/;
const NAME_RULE = 'must contain only lower-case letters, digits, "-" and "."';

/** RFC 7143 4.2.7.2: iqn., eui. (16 hex) or naa. (16 or 32 hex) names. */
const INITIATOR_NAME_PATTERN = /^(iqn\.\d{4}-\d{2}\.[^\s]+|eui\.[0-9a-fA-F]{16}|naa\.[0-9a-fA-F]{16}([0-9a-fA-F]{16})?)$/;

/** AWS Storage Gateway volume limits (whole GiB). */
const VOLUME_SIZE_LIMITS = {
  stored: { minBytes: GiB, maxBytes: 16 * TiB },
  cached: { minBytes: GiB, maxBytes: 32 * TiB },
} as const;

export interface ListenAddress {
  host: string;
  port: number;
}

/** "HOST:PORT", "[v6]:PORT" -> { host, port }. */
export function parseListenAddress(input: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(input);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65535) {
    throw new Error(`must be HOST:PORT like "127.0.0.1:3260" or "[::1]:3260" (got ${JSON.stringify(input)})`);
  }
  return { host: match[1] ?? match[2], port };
}

/** RFC 7143 13.8 domainname: a DNS host name, a dotted-decimal IPv4 address or a bracketed IPv6
 *  address. The port is optional here (the listen port by default). */
export function parseAdvertisedPortal(input: string): { host: string; port?: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[-A-Za-z0-9.]*[A-Za-z0-9])?))(?::(\d{1,5}))?$/.exec(input);
  const port = match?.[3] === undefined ? undefined : Number(match[3]);
  if (match === null || (port !== undefined && (port < 1 || port > 65535))) {
    throw new Error(
      `must be HOST[:PORT] like "192.0.2.10:3260", "gateway.example.com" or "[2001:db8::10]:3260": the address and port initiators reach the portal at (got ${JSON.stringify(input)})`,
    );
  }
  return { host: match[1] ?? match[2]!, ...(port !== undefined ? { port } : {}) };
}

const advertisedPortal = z.string().transform((value, ctx) => {
  try {
    return parseAdvertisedPortal(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const listenAddress = z.string().transform((value, ctx) => {
  try {
    return parseListenAddress(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const CHAP_SECRET_RULE = 'must be 12 to 16 characters (AWS CHAP secret rule)';
const chapSecret = z.string().min(12, CHAP_SECRET_RULE).max(16, CHAP_SECRET_RULE);

const chapSchema = z
  .strictObject({
    user: z.string().min(1, 'must not be empty'),
    secret: chapSecret,
    mutualUser: z.string().min(1, 'must not be empty').optional(),
    mutualSecret: chapSecret.optional(),
  })
  .superRefine((chap, ctx) => {
    if ((chap.mutualUser === undefined) !== (chap.mutualSecret === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [chap.mutualUser === undefined ? 'mutualUser' : 'mutualSecret'],
        message: 'mutualUser and mutualSecret go together (mutual CHAP needs both)',
      });
    }
    if (chap.mutualSecret !== undefined && chap.mutualSecret === chap.secret) {
      ctx.addIssue({ code: 'custom', path: ['mutualSecret'], message: 'must differ from secret (RFC 7143 12.1.3)' });
    }
  });

const volumeSchema = z
  .strictObject({
    name: z.string().regex(NAME_PATTERN, NAME_RULE),
    type: z
      .enum(['stored', 'cached'])
      .default('stored')
      .describe(
        'stored: all data on local disk, uploaded asynchronously to the object store. cached: the ' +
          'object store holds the primary copy; the local cache (cache.sizeBytes) keeps hot and dirty chunks.',
      ),
    size: z
      .union([z.string(), z.number()])
      .describe('"100GiB", "2TiB" or bytes; whole GiB, 1GiB-16TiB stored, 1GiB-32TiB cached'),
    writeCache: z
      .boolean()
      .optional()
      .describe(
        'SBC-3 caching mode page WCE. true (the default, as disks ship): a write is acknowledged once the ' +
          'operating system has it, SYNCHRONIZE CACHE and FUA make it durable. false: every write is on ' +
          'stable storage before GOOD. An initiator may change it with MODE SELECT; that choice is kept.',
      ),
    chap: chapSchema.optional(),
    initiators: z
      .array(z.string().regex(INITIATOR_NAME_PATTERN, 'must be an iSCSI name (iqn.YYYY-MM.…, eui.…, naa.…)'))
      .optional()
      .describe('only these initiators may log in to the volume'),
  })
  .transform((volume, ctx) => {
    const { size, ...rest } = volume;
    const got = JSON.stringify(size);
    let sizeBytes: number;
    try {
      sizeBytes = parseSize(size);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: (err as Error).message });
      return z.NEVER;
    }
    const limits = VOLUME_SIZE_LIMITS[volume.type];
    const problem =
      sizeBytes < limits.minBytes
        ? `must be at least ${formatSize(limits.minBytes)}`
        : sizeBytes > limits.maxBytes
          ? `must be at most ${formatSize(limits.maxBytes)} for a ${volume.type} volume`
          : sizeBytes % GiB !== 0
            ? 'must be a whole number of GiB, like AWS volumes'
            : null;
    if (problem !== null) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: `${problem} (got ${got})` });
      return z.NEVER;
    }
    return { ...rest, sizeBytes };
  });

/** AWS Tape Gateway's limits: tapes of 100 GiB to 15 TiB in whole GiB, at most 1,500 tapes per
 *  library, barcode prefixes of 1 to 4 letters (CreateTapes TapeBarcodePrefix). */
const TAPE_SIZE_LIMITS = { minBytes: 100 * GiB, maxBytes: 15 * TiB } as const;
const MAX_TAPES = 1500;
export const CHANGER_TYPES = ['STK-L700', 'AWS-Gateway-VTL', 'IBM-03584L32-0402'] as const;

const tapesSchema = z
  .strictObject({
    prefix: z.string().regex(/^[A-Z]{1,4}$/, 'must be 1 to 4 letters A-Z (the barcode prefix)'),
    count: z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_TAPES, `must be at most ${MAX_TAPES}`),
    size: z.union([z.string(), z.number()]).default('100GiB').describe('"100GiB" to "15TiB", whole GiB'),
  })
  .transform((tapes, ctx) => {
    const { size, ...rest } = tapes;
    let sizeBytes: number;
    try {
      sizeBytes = parseSize(size);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: (err as Error).message });
      return z.NEVER;
    }
    if (sizeBytes < TAPE_SIZE_LIMITS.minBytes || sizeBytes > TAPE_SIZE_LIMITS.maxBytes || sizeBytes % GiB !== 0) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: `must be a whole number of GiB from 100GiB to 15TiB (got ${JSON.stringify(size)})` });
      return z.NEVER;
    }
    return { ...rest, sizeBytes };
  });

/** S3 server-side encryption on top of the client-side one (docs/encryption.md). */
const sseSchema = z.enum(['AES256', 'aws:kms']).optional().describe('SSE-S3 (AES256) or SSE-KMS (aws:kms) on every write');
const sseKmsKeyIdSchema = z.string().min(1).optional().describe('SSE-KMS key; omit for the aws/s3 managed key');

/** Where archived tapes go (the virtual tape shelf, docs: aws-storage-gateway.md 1.4-1.6, 6). */
const tapeArchiveSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('local'),
      path: z.string().min(1).optional().describe('directory of the embedded archive store; default <dataDir>/archive'),
      retrievalDelayMs: z.number().int().nonnegative().default(0).describe('simulated time until a retrieval job completes'),
    }),
    z.strictObject({
      type: z.literal('glacier'),
      vault: z.string({ error: 'must name the Glacier vault' }).min(1, 'must not be empty'),
      region: z.string().min(1).default('us-east-1'),
      endpoint: z.string().url().optional().describe('Glacier-compatible endpoint; omit for AWS'),
      accessKeyId: z.string().min(1).optional().describe('omit both keys to use the AWS default credential chain'),
      secretAccessKey: z.string().min(1).optional(),
    }),
    z.strictObject({
      type: z.literal('s3-archive'),
      bucket: z.string({ error: 'must name the S3 bucket' }).min(1, 'must not be empty'),
      region: z.string().min(1).default('us-east-1'),
      endpoint: z.string().url().optional().describe('S3-compatible endpoint; omit for AWS'),
      prefix: z.string().optional(),
      forcePathStyle: z.boolean().optional(),
      storageClass: z.enum(['GLACIER', 'DEEP_ARCHIVE']).default('GLACIER'),
      retrieval: z
        .enum(['restore', 'direct'])
        .default('restore')
        .describe("'direct' for servers whose archive classes are readable labels and that lack RestoreObject (Ceph RGW)"),
      accessKeyId: z.string().min(1).optional().describe('omit both keys to use the AWS default credential chain'),
      secretAccessKey: z.string().min(1).optional(),
      serverSideEncryption: sseSchema,
      sseKmsKeyId: sseKmsKeyIdSchema,
    }),
  ])
  .prefault({ type: 'local' });

const tapeLibrarySchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    archive: tapeArchiveSchema.describe('where exported tapes are archived (the virtual tape shelf)'),
    changerType: z.enum(CHANGER_TYPES).default('AWS-Gateway-VTL'),
    requireDriveUnload: z
      .boolean()
      .optional()
      .describe('IBM-03584L32-0402 only (default false): MOVE MEDIUM out of a drive not unloaded first is refused (53/01) as IBM libraries do'),
    slots: z
      .strictObject({
        storage: z.number().int('must be a whole number').min(1, 'must be at least 1'),
        importExport: z.number().int('must be a whole number').min(1, 'must be at least 1'),
      })
      .optional()
      .describe("element counts instead of AWS's 1,600 storage + 1,600 import/export slots"),
    tapes: z
      .array(tapesSchema)
      .default([])
      .describe('created on the first start only (AWS CreateTapes: PREFIX + generated barcode)')
      .superRefine((tapes, ctx) => {
        const total = tapes.reduce((sum, t) => sum + t.count, 0);
        if (total > MAX_TAPES) ctx.addIssue({ code: 'custom', message: `${total} tapes in all; a library holds at most ${MAX_TAPES}` });
      }),
  })
  .superRefine((library, ctx) => {
    if (library.requireDriveUnload && library.changerType !== 'IBM-03584L32-0402') {
      ctx.addIssue({
        code: 'custom',
        path: ['requireDriveUnload'],
        message: `is the IBM-03584L32-0402 behaviour; set changerType: IBM-03584L32-0402 or remove it (changerType is ${library.changerType})`,
      });
    }
  })
  .prefault({});

/** "16GiB", "512MiB" or bytes. */
const sizeSchema = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    return parseSize(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** iscsi.limits: memory and stall limits of the iSCSI portal (docs/security.md "iSCSI limits"). */
const iscsiLimitsSchema = z
  .strictObject({
    maxTextBytes: sizeSchema.default(DEFAULT_ISCSI_LIMITS.maxTextBytes).describe('login/text request text across continuation PDUs, per connection'),
    connectionWriteBufferBytes: sizeSchema.default(DEFAULT_ISCSI_LIMITS.connectionWriteBufferBytes).describe('WRITE data buffered per connection; also the largest write'),
    totalWriteBufferBytes: sizeSchema.default(DEFAULT_ISCSI_LIMITS.totalWriteBufferBytes).describe('WRITE data buffered, all connections'),
    connectionResponseBytes: sizeSchema.default(DEFAULT_ISCSI_LIMITS.connectionResponseBytes).describe('Data-In and unread responses per connection'),
    totalResponseBytes: sizeSchema.default(DEFAULT_ISCSI_LIMITS.totalResponseBytes).describe('Data-In being answered, all connections'),
    commandWindow: z.number().int().min(1).max(4096).default(DEFAULT_ISCSI_LIMITS.commandWindow).describe('CmdSN window per session'),
    maxTasks: z.number().int().min(1).max(65536).default(DEFAULT_ISCSI_LIMITS.maxTasks).describe('tasks in progress per connection'),
    stallTimeoutMs: z.number().int().positive().default(DEFAULT_ISCSI_LIMITS.stallTimeoutMs).describe('a PDU, unread output or an R2T making no progress this long closes the connection'),
    loginTimeoutMs: z.number().int().positive().default(DEFAULT_ISCSI_LIMITS.loginTimeoutMs).describe('time to complete a login'),
  })
  .superRefine((l, ctx) => {
    if (l.maxTextBytes < 8192) ctx.addIssue({ code: 'custom', path: ['maxTextBytes'], message: 'must be at least 8KiB (RFC 7143 requires 8192 bytes of text)' });
    if (l.connectionWriteBufferBytes < 1024 * 1024) ctx.addIssue({ code: 'custom', path: ['connectionWriteBufferBytes'], message: 'must be at least 1MiB (a tape block)' });
    if (l.totalWriteBufferBytes < l.connectionWriteBufferBytes) ctx.addIssue({ code: 'custom', path: ['totalWriteBufferBytes'], message: 'must be at least connectionWriteBufferBytes' });
    if (l.connectionResponseBytes < 1024 * 1024) ctx.addIssue({ code: 'custom', path: ['connectionResponseBytes'], message: 'must be at least 1MiB' });
    if (l.totalResponseBytes < l.connectionResponseBytes) ctx.addIssue({ code: 'custom', path: ['totalResponseBytes'], message: 'must be at least connectionResponseBytes' });
    if (l.maxTasks < l.commandWindow) ctx.addIssue({ code: 'custom', path: ['maxTasks'], message: 'must be at least commandWindow' });
  })
  .prefault({});

/** iscsi.loginThrottle: failed logins per initiator name and peer address (docs/security.md). */
const loginThrottleSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    baseDelayMs: z.number().int().min(0).default(DEFAULT_LOGIN_THROTTLE.baseDelayMs).describe('delay of the first failed Login Response; doubles per failure in a row'),
    maxDelayMs: z.number().int().min(0).default(DEFAULT_LOGIN_THROTTLE.maxDelayMs),
    refuseAfterFailures: z.number().int().min(1).default(DEFAULT_LOGIN_THROTTLE.refuseAfterFailures).describe('failures in a row before the name or address is refused'),
    refuseForMs: z.number().int().min(0).default(DEFAULT_LOGIN_THROTTLE.refuseForMs),
    forgetAfterMs: z.number().int().positive().default(DEFAULT_LOGIN_THROTTLE.forgetAfterMs).describe('failures older than this are forgotten'),
  })
  .prefault({});

export const configSchema = z.strictObject({
  tapeLibrary: tapeLibrarySchema,
  gateway: z
    .strictObject({
      name: z.string().regex(NAME_PATTERN, NAME_RULE).default('shelfgate').describe('part of every target IQN'),
      region: z.string().optional(),
      accountId: z.string().regex(/^\d{12}$/, 'must be 12 digits').optional(),
    })
    .prefault({}),
  dataDir: z.string().min(1).default('./shelfgate-data').describe('the Level database lives in <dataDir>/db'),
  iscsi: z
    .strictObject({
      listen: listenAddress.prefault('0.0.0.0:3260'),
      advertise: z
        .array(advertisedPortal)
        .default([])
        .describe(
          'HOST[:PORT] values SendTargets gives initiators (RFC 7143 13.8 TargetAddress), e.g. the host\'s address and ' +
            'published port of a container; the port defaults to the listen port. Empty: the address the initiator connected to',
        ),
      nopInIntervalMs: z.number().int().positive().optional(),
      nopInTimeoutMs: z.number().int().positive().optional(),
      limits: iscsiLimitsSchema,
      loginThrottle: loginThrottleSchema,
    })
    .transform(({ advertise, ...iscsi }) => ({
      ...iscsi,
      advertise: advertise.map((portal): ListenAddress => ({ host: portal.host, port: portal.port ?? iscsi.listen.port })),
    }))
    .prefault({}),
  api: z
    .strictObject({
      listen: listenAddress.prefault('127.0.0.1:8080'),
      accessKeys: z
        .array(z.strictObject({ accessKeyId: z.string().min(1, 'must not be empty'), secretAccessKey: z.string().min(1, 'must not be empty') }))
        .optional()
        .describe('SigV4 keys the AWS-compatible endpoint (POST /) accepts; none = it refuses every request'),
      token: z
        .string()
        .min(16, 'must be at least 16 characters')
        .optional()
        .describe('bearer token the API requires; default: generated on the first start and kept in <dataDir>/api-token'),
      auth: z
        .enum(['token', 'none'])
        .default('token')
        .describe('token (the default): /v1/*, /metrics and /docs need the bearer token; none: no authentication (trusted networks only)'),
      allowedHosts: z
        .array(z.string().min(1, 'must not be empty'))
        .default([])
        .describe('Host header names accepted besides the listen address, localhost and this machine\'s addresses (DNS rebinding)'),
      public: z
        .array(z.enum(['metrics', 'docs']))
        .default([])
        .describe('endpoints served without the token: "metrics" (/metrics), "docs" (/docs, /docs/openapi.json)'),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS).default('info'),
      format: z.enum(['human', 'json']).default('human'),
    })
    .prefault({}),
  encryption: z
    .strictObject({
      keySource: z
        .enum(['none', 'local', 'kms'])
        .default('none')
        .describe('client-side encryption of every object written: none, a local key file, or an AWS KMS key (docs/encryption.md)'),
      keyFile: z.string().min(1).optional().describe('local key file; default <dataDir>/encryption.key, created (0600) on the first start'),
      kmsKeyId: z.string().min(1).optional().describe('KMS key id, key ARN, alias/name or alias ARN'),
      kmsRegion: z.string().min(1).default('us-east-1'),
      kmsEndpoint: z.string().url().optional().describe('KMS-compatible endpoint; omit for AWS'),
      accessKeyId: z.string().min(1).optional().describe('KMS credentials; omit both keys to use the AWS default credential chain'),
      secretAccessKey: z.string().min(1).optional(),
      allowUnencryptedReads: z.boolean().default(false).describe('read objects written in plain text before encryption was enabled'),
    })
    .superRefine((e, ctx) => {
      if (e.keySource === 'kms' && e.kmsKeyId === undefined) {
        ctx.addIssue({ code: 'custom', path: ['kmsKeyId'], message: 'is required with keySource: kms (a key id, ARN or alias/name)' });
      }
    })
    .prefault({}),
  /** PEM CA bundle trusted for S3, Glacier and KMS endpoints with private certificates. */
  caBundle: z.string().min(1).optional().describe('PEM file of CA certificates for S3/Glacier/KMS endpoints with private certificates'),
  objectStore: z
    .discriminatedUnion('type', [
      z.strictObject({
        type: z.literal('local'),
        path: z.string().min(1).optional().describe('directory of the embedded object store; default <dataDir>/objects'),
      }),
      z.strictObject({
        type: z.literal('s3'),
        bucket: z.string().min(1, 'must not be empty'),
        region: z.string().min(1).default('us-east-1'),
        endpoint: z.string().url().optional().describe('S3-compatible endpoint (MinIO, Ceph RGW); omit for AWS'),
        prefix: z.string().optional(),
        forcePathStyle: z.boolean().optional(),
        accessKeyId: z.string().min(1).optional().describe('omit both keys to use the AWS default credential chain'),
        secretAccessKey: z.string().min(1).optional(),
        serverSideEncryption: sseSchema,
        sseKmsKeyId: sseKmsKeyIdSchema,
      }),
    ])
    .prefault({ type: 'local' })
    .describe('where uploaded volume chunks go (docs/storage-engine.md)'),
  cache: z
    .strictObject({ sizeBytes: sizeSchema.prefault('16GiB').describe('local cache of cached volumes; clean chunks beyond it are evicted LRU') })
    .prefault({}),
  uploadBuffer: z
    .strictObject({
      sizeBytes: sizeSchema.prefault('8GiB').describe('dirty (not yet uploaded) data beyond this holds new writes back'),
      holdMs: z.number().int().nonnegative().default(5_000).describe('how long a held write waits before NOT READY (retryable)'),
    })
    .prefault({}),
  volumes: z
    .array(volumeSchema)
    .default([])
    .superRefine((volumes, ctx) => {
      const seen = new Map<string, number>();
      volumes.forEach((volume, i) => {
        const first = seen.get(volume.name);
        if (first !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'name'],
            message: `duplicate volume name "${volume.name}" (also volumes[${first}])`,
          });
        } else {
          seen.set(volume.name, i);
        }
      });
    }),
});

export type Config = z.output<typeof configSchema>;
export type VolumeConfig = Config['volumes'][number];

/** A configuration problem the user must fix; the CLI prints `lines` and exits with code 2. */
export class ConfigError extends Error {
  readonly lines: string[];

  constructor(lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
    this.lines = lines;
  }
}

/** What the command line can set; each one overrides the file. */
export interface ConfigOverrides {
  dataDir?: string;
  iscsiListen?: string;
  /** `--advertise HOST[:PORT]`, in order (replaces iscsi.advertise). */
  advertise?: string[];
  apiListen?: string;
  gatewayName?: string;
  logLevel?: string;
  logFormat?: string;
  /** `--volume NAME:SIZE`, in order. */
  volumes?: string[];
  /** `--tapes PREFIX:COUNT[:SIZE]`, in order (added to tapeLibrary.tapes). */
  tapes?: string[];
  /** `--changer-type TYPE`. */
  changerType?: string;
  /** `--tape-slots STORAGE:IE`. */
  tapeSlots?: string;
}

/** Environment variables, each below its flag and above the file (for containers and services):
 *  SHELFGATE_ISCSI_LISTEN, SHELFGATE_API_LISTEN, SHELFGATE_ADVERTISE (HOST[:PORT] values separated
 *  by commas or spaces), SHELFGATE_API_TOKEN or SHELFGATE_API_TOKEN_FILE (a file holding the token,
 *  e.g. a Docker secret), SHELFGATE_DATA_DIR, SHELFGATE_LOG_LEVEL, SHELFGATE_LOG_FORMAT. */
export const CONFIG_ENV_VARS = [
  'SHELFGATE_DATA_DIR',
  'SHELFGATE_ISCSI_LISTEN',
  'SHELFGATE_ADVERTISE',
  'SHELFGATE_API_LISTEN',
  'SHELFGATE_API_TOKEN',
  'SHELFGATE_API_TOKEN_FILE',
  'SHELFGATE_LOG_LEVEL',
  'SHELFGATE_LOG_FORMAT',
] as const;

/** Reads the file (if any), merges flags and the environment variables (CONFIG_ENV_VARS) on top,
 *  and validates. Throws ConfigError. */
export async function loadConfig(opts: {
  file?: string;
  overrides?: ConfigOverrides;
  env?: NodeJS.ProcessEnv;
}): Promise<Config> {
  let raw: unknown = {};
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = await readFile(opts.file, 'utf8');
    } catch (err) {
      throw new ConfigError([`config error: cannot read ${opts.file}: ${(err as Error).message}`]);
    }
    raw = parseConfigText(opts.file, text);
  }
  let env = opts.env ?? {};
  const tokenFile = env.SHELFGATE_API_TOKEN_FILE;
  if (tokenFile !== undefined && tokenFile !== '') {
    if (env.SHELFGATE_API_TOKEN !== undefined && env.SHELFGATE_API_TOKEN !== '') {
      throw new ConfigError(['config error: SHELFGATE_API_TOKEN and SHELFGATE_API_TOKEN_FILE are both set; set only one']);
    }
    let token: string;
    try {
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new ConfigError([`config error: SHELFGATE_API_TOKEN_FILE: cannot read ${tokenFile}: ${(err as Error).message}`]);
    }
    env = { ...env, SHELFGATE_API_TOKEN: token };
  }
  return resolveConfig(raw, opts.overrides ?? {}, env);
}

/** Validates an already-parsed document with overrides on top. Throws ConfigError. */
export function resolveConfig(raw: unknown, overrides: ConfigOverrides, env: NodeJS.ProcessEnv = {}): Config {
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([
      'config error: the configuration must be a mapping of keys (gateway, dataDir, iscsi, api, log, volumes)',
    ]);
  }
  const doc = structuredClone(raw) as Record<string, unknown>;
  const section = (key: string): Record<string, unknown> => {
    const value = doc[key];
    if (value === undefined || value === null) return (doc[key] = {}) as Record<string, unknown>;
    return value as Record<string, unknown>;
  };
  const fromEnv = (name: (typeof CONFIG_ENV_VARS)[number]): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const dataDir = overrides.dataDir ?? fromEnv('SHELFGATE_DATA_DIR');
  if (dataDir !== undefined) doc.dataDir = dataDir;
  const iscsiListen = overrides.iscsiListen ?? fromEnv('SHELFGATE_ISCSI_LISTEN');
  if (iscsiListen !== undefined) section('iscsi').listen = iscsiListen;
  const advertiseEnv = fromEnv('SHELFGATE_ADVERTISE');
  const advertise =
    overrides.advertise !== undefined && overrides.advertise.length > 0
      ? overrides.advertise
      : advertiseEnv?.split(/[\s,]+/).filter((value) => value !== '');
  if (advertise !== undefined) section('iscsi').advertise = advertise;
  const apiListen = overrides.apiListen ?? fromEnv('SHELFGATE_API_LISTEN');
  if (apiListen !== undefined) section('api').listen = apiListen;
  const token = fromEnv('SHELFGATE_API_TOKEN');
  if (token !== undefined) section('api').token = token;
  if (overrides.gatewayName !== undefined) section('gateway').name = overrides.gatewayName;
  const logLevel = overrides.logLevel ?? env.SHELFGATE_LOG_LEVEL;
  if (logLevel !== undefined) section('log').level = logLevel;
  const logFormat = overrides.logFormat ?? env.SHELFGATE_LOG_FORMAT;
  if (logFormat !== undefined) section('log').format = logFormat;
  if (overrides.volumes !== undefined && overrides.volumes.length > 0) {
    const volumes = Array.isArray(doc.volumes) ? (doc.volumes as unknown[]) : [];
    const flagged = new Set<string>();
    for (const flag of overrides.volumes) {
      const colon = flag.lastIndexOf(':');
      if (colon <= 0 || colon === flag.length - 1) {
        throw new ConfigError([`config error: --volume ${JSON.stringify(flag)}: expected NAME:SIZE, e.g. vol1:100GiB`]);
      }
      const name = flag.slice(0, colon);
      const size = flag.slice(colon + 1);
      if (flagged.has(name)) {
        throw new ConfigError([`config error: --volume ${JSON.stringify(flag)}: volume "${name}" is given twice; pass each volume once`]);
      }
      flagged.add(name);
      const existing = volumes.find(
        (v): v is Record<string, unknown> => typeof v === 'object' && v !== null && (v as { name?: unknown }).name === name,
      );
      if (existing !== undefined) existing.size = size;
      else volumes.push({ name, type: 'stored', size });
    }
    doc.volumes = volumes;
  }
  applyTapeOverrides(overrides, section('tapeLibrary'));
  const result = configSchema.safeParse(doc);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `config error: ${formatIssue(issue)}`));
  }
  return result.data;
}

/** `--tapes`, `--changer-type`, `--tape-slots` onto the tapeLibrary section. */
function applyTapeOverrides(overrides: ConfigOverrides, library: Record<string, unknown>): void {
  if (overrides.changerType !== undefined) library.changerType = overrides.changerType;
  if (overrides.tapeSlots !== undefined) {
    const match = /^(\d+):(\d+)$/.exec(overrides.tapeSlots);
    if (match === null) {
      throw new ConfigError([`config error: --tape-slots ${JSON.stringify(overrides.tapeSlots)}: expected STORAGE:IE, e.g. 100:10`]);
    }
    library.slots = { storage: Number(match[1]), importExport: Number(match[2]) };
  }
  if (overrides.tapes !== undefined && overrides.tapes.length > 0) {
    const tapes = Array.isArray(library.tapes) ? (library.tapes as unknown[]) : [];
    for (const flag of overrides.tapes) {
      const match = /^([^:]+):(\d+)(?::([^:]+))?$/.exec(flag);
      if (match === null) {
        throw new ConfigError([`config error: --tapes ${JSON.stringify(flag)}: expected PREFIX:COUNT[:SIZE], e.g. VTL:10:100GiB`]);
      }
      tapes.push({ prefix: match[1], count: Number(match[2]), ...(match[3] !== undefined ? { size: match[3] } : {}) });
    }
    library.tapes = tapes;
  }
}

function parseConfigText(file: string, text: string): unknown {
  const ext = extname(file).toLowerCase();
  if (!['.json', '.yaml', '.yml'].includes(ext)) {
    throw new ConfigError([`config error: ${file}: unknown extension "${ext}"; name the file .yaml, .yml or .json`]);
  }
  if (text.trim() === '') {
    throw new ConfigError([`config error: ${file} is empty; write a configuration (docs/configuration.md) or leave out --config`]);
  }
  try {
    // JSON is YAML too, but JSON.parse gives better messages for .json files.
    return ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([`config error: ${file} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`]);
  }
}

/** "volumes[1].size: must be at least 1GiB (got \"10MiB\")" */
export function formatIssue(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (path === '' ? k : `${path}.${k}`));
    return `${keys.join(', ')}: unknown key${keys.length > 1 ? 's' : ''}`;
  }
  const message = issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  return path === '' ? message : `${path}: ${message}`;
}

function formatPath(path: PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}
