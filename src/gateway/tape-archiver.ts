// The archive lifecycle worker of the virtual tape shelf (AWS Tape Gateway "archiving" and
// "retrieving" tapes; ../shared/reference/aws-storage-gateway.md 1.4-1.6):
//
//   exported (I/E slot)  IN TRANSIT TO VTS --CancelArchival--> AVAILABLE (a storage slot)
//                             | the worker takes it
//                         ARCHIVING (progress %, upload state persisted per part)
//                             |  --CancelArchival, or a permanent cloud error--> AVAILABLE
//                             | archive complete and its tree hash verified
//                         ARCHIVED (shelf record; library slot freed; local data file removed)
//   RetrieveTapeArchive   RETRIEVING (retrieval job, progress %) --bytes do not verify--> IRRECOVERABLE
//                             | every byte and object verified against the manifest
//                         RETRIEVED (an empty storage slot; write protected: the drive reports
//                                    DATA PROTECT / WRITE PROTECTED)
//   eject a RETRIEVED tape: ARCHIVED again (the archive is unchanged, the local copy is dropped)
//   DeleteTapeArchive     DELETING -> DELETED (refused under an unexpired retention lock)
//
// The archive of a tape is a byte stream (store/tape-archive-stream.ts encodes and decodes it). Its
// manifest (in the shelf record) holds the run-length encoded object list and the stream's SHA-256
// tree hash; retrieval rebuilds the medium from the stream and accepts it only when every part's
// tree hash (ArchiveStore.readRetrieved), the whole stream's tree hash and the object list match.
//
// Failures (issue 10): a transient cloud error (network, 5xx, throttling) is retried per tape with
// capped exponential backoff and full jitter (retry.ts), and logged once when the worker starts
// failing and once when it recovers (cloud-outage.ts). A permanent one (4xx other than
// throttling: credentials, missing bucket or vault, a refused request, 501) can never succeed:
// the archive ends — the tape goes back to the library AVAILABLE (a retrieval: back to ARCHIVED)
// with the reason in its shelf record's lastError, logged as an error once.
// CancelArchival also works while ARCHIVING (issue 10; AWS allows it only IN TRANSIT TO VTS, when
// AWS's upload runs): every progress write of the worker re-checks the status under the library
// lock, so a cancelled upload stops at its next part and is aborted in the store.
//
// Crash safety: the ArchiveStore's upload state is persisted after every part; after a restart the
// tape is read again from BOP and only the parts missing from the state are sent (resumeArchive).
// A retrieval persists its job id and progress; after a restart a partly rebuilt medium is removed
// and rebuilt from the job's output (kept by the store). Records reach ARCHIVED only after the
// shelf record with the archive id is durable, and the local data file is removed after that, so
// no state loses the tape. One window remains: a kill between CompleteMultipartUpload and the
// shelf write leaves the completed archive unreferenced; the tape is archived again (one orphan
// archive in the store, never two shelf entries).

import type { Logger } from '../../iscsi/log.js';
import {
  partSizeForArchive,
  type ArchiveStore,
  type ArchiveUpload,
  type ArchiveUploadState,
  type RetrievalTier,
} from '../cloud/archive-store.js';
import { CloudError } from '../cloud/cloud-error.js';
import { CloudOutage } from '../cloud/cloud-outage.js';
import { backoffDelayMs } from '../cloud/retry.js';
import { combineTreeHashes, treeHash } from '../cloud/tree-hash.js';
import { StoreError } from '../store/store-error.js';
import {
  encodeTapeArchiveStream,
  matchesTapeArchiveManifest,
  TapeArchiveStreamDecoder,
  tapeArchiveStreamSizeBytes,
  type TapeArchiveStreamSummary,
} from '../store/tape-archive-stream.js';
import type { TapeMediumStore } from '../store/tape-medium-store.js';
import type { TapeShelfRecord } from '../store/tape-shelf-store.js';
import type { TapeRecord } from '../store/tape-catalog-store.js';
import { GatewayError } from './gateway-error.js';
import type { TapeCatalog } from './tape-catalog.js';
import type { TapeLibrary } from './tape-library.js';
import type { TapeStorageClass } from './tape-pools.js';
import { checkRetention, storageClassOf, type PoolLookup, type TapeShelf } from './tape-shelf.js';
import { parseTapeStatus, TapeStatus, transition } from './tape-status.js';

export interface TapeArchiverEvent {
  barcode: string;
  phase: 'archive' | 'retrieve';
  /** The part just made durable (uploaded and recorded, or written to the rebuilt medium). */
  partIndex: number;
  progressPercent: number;
}

export interface TapeArchiverOptions {
  library: TapeLibrary;
  catalog: TapeCatalog;
  media: TapeMediumStore;
  shelf: TapeShelf;
  pools: PoolLookup;
  /** The archive store behind each storage class (DEEP_ARCHIVE defaults to GLACIER's). */
  archiveStores: { GLACIER: ArchiveStore; DEEP_ARCHIVE?: ArchiveStore };
  log: Logger;
  /** The clock (ms since the epoch) for retention locks and dates; tests advance it. */
  now?: () => number;
  /** Worker period (new exports, retrieval job polling). Default 1000 ms. */
  pollIntervalMs?: number;
  /** Default tier of RetrieveTapeArchive. Default Standard. */
  retrievalTier?: RetrievalTier;
  /** Called after each part is durable (observability; the crash tests stop at part boundaries). */
  onProgress?: (event: TapeArchiverEvent) => void;
  /** Backoff between attempts of one tape's failing work, on the `now` clock. Default 1 s doubling
   *  to at most 5 min, full jitter. */
  retry?: { baseDelayMs: number; maxDelayMs: number };
}

const DEFAULT_RETRY = { baseDelayMs: 1_000, maxDelayMs: 300_000 };

/** A cloud error that no retry can cure (AWS: 4xx other than throttling; 501). CLOUD_NOT_FOUND
 *  (an upload or job that is gone) and CLOUD_INTEGRITY have their own handling below. */
function isPermanentCloudError(err: unknown): err is CloudError {
  return err instanceof CloudError && !err.transient && err.code !== 'CLOUD_NOT_FOUND' && err.code !== 'CLOUD_INTEGRITY' && err.code !== 'CLOUD_NOT_READY';
}

export class TapeArchiver {
  /** Failing / recovered state of the archive work, for the log and /metrics. */
  readonly outage: CloudOutage;
  readonly #library: TapeLibrary;
  readonly #catalog: TapeCatalog;
  readonly #media: TapeMediumStore;
  readonly #shelf: TapeShelf;
  readonly #pools: PoolLookup;
  readonly #stores: Record<TapeStorageClass, ArchiveStore>;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #pollIntervalMs: number;
  readonly #retrievalTier: RetrievalTier;
  readonly #onProgress: ((event: TapeArchiverEvent) => void) | undefined;
  readonly #retry: { baseDelayMs: number; maxDelayMs: number };
  /** Tapes whose last attempt failed: how many times in a row, and when to try again. */
  readonly #backoff = new Map<string, { failures: number; retryAtMs: number }>();
  #round: Promise<boolean> = Promise.resolve(false);
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: TapeArchiverOptions) {
    this.#library = opts.library;
    this.#catalog = opts.catalog;
    this.#media = opts.media;
    this.#shelf = opts.shelf;
    this.#pools = opts.pools;
    this.#stores = { GLACIER: opts.archiveStores.GLACIER, DEEP_ARCHIVE: opts.archiveStores.DEEP_ARCHIVE ?? opts.archiveStores.GLACIER };
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.#retrievalTier = opts.retrievalTier ?? 'Standard';
    this.#onProgress = opts.onProgress;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    this.outage = new CloudOutage('archive', opts.log, this.#now);
  }

  /** Runs a round every pollIntervalMs until stop(). */
  start(): void {
    if (this.#timer !== undefined) return;
    const tick = () => {
      void this.runOnce().finally(() => {
        if (this.#timer !== undefined) this.#timer = setTimeout(tick, this.#pollIntervalMs);
      });
    };
    this.#timer = setTimeout(tick, 0);
  }

  /** Stops the worker and waits for the round in progress. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#round;
  }

  /** One pass over every tape with archive work; resolves true while work remains (e.g. a
   *  retrieval job still InProgress). Rounds never overlap. */
  runOnce(): Promise<boolean> {
    const run = this.#round.then(() => this.#pass());
    this.#round = run.catch(() => true);
    return run;
  }

  /** Progress of the archive or retrieval in progress, or undefined. */
  progress(barcode: string): number | undefined {
    const job = this.#shelf.get(barcode)?.job;
    return job && job.kind !== 'delete' ? job.progressPercent : undefined;
  }

  // ---- AWS operations -----------------------------------------------------------------------------

  /** CancelArchival: IN TRANSIT TO VTS or ARCHIVING (until the archive is complete); the tape
   *  returns to an empty storage slot and a started upload is aborted. */
  async cancelArchival(barcode: string): Promise<void> {
    const upload = await this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      const status = parseTapeStatus(record.status, barcode);
      const shelved = this.#shelf.get(barcode);
      if (status !== TapeStatus.IN_TRANSIT_TO_VTS && status !== TapeStatus.ARCHIVING) {
        throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is ${status}; archival can be cancelled only IN TRANSIT TO VTS or ARCHIVING`);
      }
      if (shelved?.archive !== undefined && status === TapeStatus.ARCHIVING) {
        throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode}: its archive is already complete; it is becoming ARCHIVED`);
      }
      const address = await this.#returnToLibrary(record, status, 'archival-cancelled');
      this.#log.info('tape archival cancelled', { barcode, status, address });
      return shelved?.job?.kind === 'archive' ? { storageClass: shelved.storageClass, state: shelved.job.upload } : null;
    });
    if (upload?.state) await this.#abortUpload(barcode, this.#stores[upload.storageClass], upload.state);
  }

  /** RetrieveTapeArchive: an ARCHIVED tape becomes RETRIEVING; the worker brings it back. */
  retrieveTapeArchive(barcode: string, opts: { tier?: RetrievalTier } = {}): Promise<void> {
    return this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      const status = parseTapeStatus(record.status, barcode);
      const shelved = this.#shelf.get(barcode);
      if (status !== TapeStatus.ARCHIVED || !shelved?.archive) {
        throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is ${status}, not ARCHIVED`);
      }
      if (this.#library.emptyElements('storage').length === 0) {
        throw new GatewayError('GW_NO_EMPTY_SLOT', `no empty storage slot to retrieve tape ${barcode} into`);
      }
      await this.#shelf.put({ ...shelved, job: { kind: 'retrieve', progressPercent: 0, tier: opts.tier ?? this.#retrievalTier, jobId: null } });
      await this.#catalog.put({ ...record, status: transition(status, 'retrieve-requested', barcode) });
      this.#log.info('tape retrieval requested', { barcode });
    });
  }

  /** CancelRetrieval: a RETRIEVING tape returns to the shelf (ARCHIVED). A copy the worker is
   *  rebuilding at that moment is dropped by its next round. */
  cancelRetrieval(barcode: string): Promise<void> {
    return this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      const status = parseTapeStatus(record.status, barcode);
      const shelved = this.#shelf.get(barcode);
      if (status !== TapeStatus.RETRIEVING || !shelved) throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is ${status}, not RETRIEVING`);
      await this.#shelf.put({ ...shelved, job: null });
      await this.#catalog.put({ ...record, status: transition(status, 'retrieval-cancelled', barcode) });
      this.#log.info('tape retrieval cancelled', { barcode });
    });
  }

  /** DeleteTapeArchive: an ARCHIVED tape (a RETRIEVED one must be ejected first), unless a
   *  retention lock holds it. */
  deleteTapeArchive(barcode: string, opts: { bypassGovernanceRetention?: boolean } = {}): Promise<void> {
    return this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      const status = parseTapeStatus(record.status, barcode);
      const shelved = this.#shelf.get(barcode);
      if (status !== TapeStatus.ARCHIVED || !shelved) {
        throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is ${status}, not ARCHIVED${status === TapeStatus.RETRIEVED ? ' (eject it first)' : ''}`);
      }
      checkRetention(shelved, this.#pools, this.#now(), { ...opts, action: 'delete' });
      await this.#shelf.put({ ...shelved, job: { kind: 'delete' } });
      await this.#catalog.put({ ...record, status: transition(status, 'delete-requested', barcode) });
      await this.#finishDelete(barcode);
    });
  }

  /** AssignTapePool for an archived tape: refused under an unexpired retention lock, and from a
   *  DEEP_ARCHIVE pool to a GLACIER one. A lock of the new pool starts now. */
  assignTapePool(barcode: string, poolId: string, opts: { bypassGovernanceRetention?: boolean } = {}): Promise<void> {
    return this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      const status = parseTapeStatus(record.status, barcode);
      const shelved = this.#shelf.get(barcode);
      if (status !== TapeStatus.ARCHIVED || !shelved) throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is ${status}, not ARCHIVED`);
      if (poolId === shelved.poolId) return;
      const storageClass = storageClassOf(poolId, this.#pools);
      if (shelved.storageClass === 'DEEP_ARCHIVE' && storageClass === 'GLACIER') {
        throw new GatewayError('GW_TAPE_POOL_MOVE_REFUSED', `tape ${barcode} is archived in DEEP_ARCHIVE; it cannot move to GLACIER pool ${poolId}`);
      }
      checkRetention(shelved, this.#pools, this.#now(), { ...opts, action: 'move' });
      const nowIso = new Date(this.#now()).toISOString();
      const locked = (this.#pools.get(poolId)?.retentionLockType ?? 'NONE') !== 'NONE';
      const { retentionStartDate: _previous, ...rest } = shelved;
      await this.#shelf.put({ ...rest, poolId, poolEntryDate: nowIso, ...(locked ? { retentionStartDate: nowIso } : {}) });
      await this.#catalog.put({ ...record, poolId });
    });
  }

  // ---- the worker ---------------------------------------------------------------------------------

  async #pass(): Promise<boolean> {
    let pending = false;
    for (const record of this.#catalog.list()) {
      const barcode = record.barcode;
      const backoff = this.#backoff.get(barcode);
      if (backoff !== undefined && this.#now() < backoff.retryAtMs) {
        pending = true;
        continue;
      }
      try {
        switch (record.status) {
          case TapeStatus.IN_TRANSIT_TO_VTS:
          case TapeStatus.ARCHIVING:
            await this.#archive(barcode);
            break;
          case TapeStatus.RETRIEVING:
            pending = (await this.#retrieve(barcode)) || pending;
            break;
          case TapeStatus.DELETING:
            if (this.#shelf.get(barcode)?.job?.kind === 'delete') await this.#library.exclusive(() => this.#finishDelete(barcode));
            break;
          case TapeStatus.ARCHIVED:
            // An ejected RETRIEVED tape, or a crash right after archiving: drop the local copy.
            if ((await this.#media.header(barcode)) !== undefined) {
              await this.#media.delete(barcode);
              this.#log.info('local copy of archived tape removed', { barcode });
            }
            break;
          default:
            continue;
        }
        this.#backoff.delete(barcode);
        // Only work that talked to the archive store says the cloud is back.
        if (record.status !== TapeStatus.ARCHIVED) this.outage.succeeded();
      } catch (err) {
        pending = true;
        await this.#failed(record.barcode, record.status, err);
      }
    }
    return pending;
  }

  /** One tape's work failed: ends it for a permanent cloud error, else schedules a retry. */
  async #failed(barcode: string, status: string, err: unknown): Promise<void> {
    const now = this.#catalog.get(barcode)?.status;
    if (now !== status && !(status === TapeStatus.IN_TRANSIT_TO_VTS && now === TapeStatus.ARCHIVING)) {
      // Cancelled (or otherwise moved on) meanwhile: the error belongs to work nobody wants.
      this.#backoff.delete(barcode);
      return;
    }
    if (isPermanentCloudError(err) && status !== TapeStatus.DELETING) {
      this.#backoff.delete(barcode);
      await this.#endFailed(barcode, err);
      return;
    }
    const failures = (this.#backoff.get(barcode)?.failures ?? 0) + 1;
    const delayMs = backoffDelayMs({ ...this.#retry, maxAttempts: Infinity }, Math.min(failures - 1, 30));
    this.#backoff.set(barcode, { failures, retryAtMs: this.#now() + delayMs });
    this.outage.failed(err, { barcode, status });
  }

  /** A permanent error: an archive goes back to the library AVAILABLE, a retrieval back to the
   *  shelf ARCHIVED; the reason is kept in the shelf record and logged once. */
  async #endFailed(barcode: string, err: CloudError): Promise<void> {
    const upload = await this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      const status = parseTapeStatus(record.status, barcode);
      const shelved = this.#shelf.get(barcode);
      const retrieving = status === TapeStatus.RETRIEVING;
      const lastError = { phase: retrieving ? ('retrieve' as const) : ('archive' as const), code: err.code, message: err.message, at: new Date(this.#now()).toISOString() };
      if (retrieving) {
        if (shelved) await this.#shelf.put({ ...shelved, job: null, lastError });
        await this.#catalog.put({ ...record, status: transition(status, 'retrieval-failed', barcode) });
        this.#log.error('tape retrieval failed for good; the tape stays ARCHIVED', { barcode, code: err.code, error: err.message });
        return null;
      }
      if (shelved) await this.#shelf.put({ ...shelved, job: null, lastError });
      const address = await this.#returnToLibrary(record, status, 'archive-failed');
      this.#log.error('tape archive failed for good; the tape is AVAILABLE in the library again', { barcode, address, code: err.code, error: err.message });
      return shelved?.job?.kind === 'archive' ? { storageClass: shelved.storageClass, state: shelved.job.upload } : null;
    });
    if (upload?.state) await this.#abortUpload(barcode, this.#stores[upload.storageClass], upload.state);
  }

  /** Inside exclusive(): IN TRANSIT TO VTS / ARCHIVING → AVAILABLE, in an empty storage slot
   *  (or, when there is none, where it is: its import/export slot). */
  async #returnToLibrary(record: TapeRecord, status: TapeStatus, event: 'archival-cancelled' | 'archive-failed'): Promise<number | undefined> {
    const [address] = this.#library.emptyElements('storage');
    if (address === undefined && event === 'archival-cancelled') {
      throw new GatewayError('GW_NO_EMPTY_SLOT', `no empty storage slot to return tape ${record.barcode} to`);
    }
    const available = { ...record, status: transition(status, event, record.barcode), location: address !== undefined ? { address } : record.location };
    await this.#catalog.put(available);
    if (address !== undefined) this.#library.placeTapes([available]);
    this.#backoff.delete(record.barcode);
    return address ?? record.location?.address;
  }

  async #abortUpload(barcode: string, store: ArchiveStore, state: ArchiveUploadState): Promise<void> {
    try {
      await (await store.resumeArchive(state)).abort();
    } catch (err) {
      if (!(err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND')) {
        this.#log.warn('could not abort the archive upload; the store keeps its parts until its own cleanup', { barcode, error: String(err) });
      }
    }
  }

  /** Progress of an archive, written under the library lock only while the tape is still
   *  ARCHIVING: a CancelArchival in between ends the upload here. */
  async #putArchiveProgress(record: TapeShelfRecord): Promise<void> {
    await this.#library.exclusive(async () => {
      if (this.#catalog.get(record.barcode)?.status !== TapeStatus.ARCHIVING) {
        throw new GatewayError('GW_TAPE_INVALID_STATE', `archival of tape ${record.barcode} was cancelled`);
      }
      await this.#shelf.put(record);
    });
  }

  async #archive(barcode: string): Promise<void> {
    const claimed = await this.#library.exclusive(async () => {
      const record = this.#catalog.get(barcode);
      if (!record || record.status !== TapeStatus.IN_TRANSIT_TO_VTS) return record?.status === TapeStatus.ARCHIVING;
      const poolId = record.poolId ?? 'GLACIER';
      const previous = this.#shelf.get(barcode);
      await this.#shelf.put({
        barcode,
        sizeBytes: record.sizeBytes,
        worm: record.worm,
        poolId,
        storageClass: storageClassOf(poolId, this.#pools),
        poolEntryDate: previous?.poolEntryDate ?? new Date(this.#now()).toISOString(),
        job: { kind: 'archive', progressPercent: 0, upload: null },
      });
      await this.#catalog.put({ ...record, status: transition(TapeStatus.IN_TRANSIT_TO_VTS, 'upload-completed', barcode) });
      return true;
    });
    if (!claimed) return;
    let shelved = this.#shelf.get(barcode)!;
    if (!shelved.archive) shelved = await this.#upload(shelved);
    // The shelf holds the verified archive: the tape leaves the gateway.
    await this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      await this.#catalog.put({ ...record, status: transition(parseTapeStatus(record.status, barcode), 'archive-completed', barcode), location: null });
    });
    if ((await this.#media.header(barcode)) !== undefined) await this.#media.delete(barcode);
    this.#log.info('tape archived', { barcode, archiveId: shelved.archive!.archiveId, sizeBytes: shelved.archive!.sizeBytes });
  }

  async #upload(shelved: TapeShelfRecord): Promise<TapeShelfRecord> {
    const barcode = shelved.barcode;
    const store = this.#stores[shelved.storageClass];
    const job = shelved.job?.kind === 'archive' ? shelved.job : { kind: 'archive' as const, progressPercent: 0, upload: null };
    const header = await this.#media.header(barcode);
    if (!header) throw new GatewayError('GW_TAPE_NOT_FOUND', `tape ${barcode} has no local data to archive`);
    const estimatedBytes = tapeArchiveStreamSizeBytes(header.usedBytes, header.eodObjectId);

    let upload: ArchiveUpload | undefined;
    if (job.upload) {
      try {
        upload = await store.resumeArchive(job.upload);
      } catch (err) {
        if (!(err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND')) throw err;
        this.#log.warn('archive upload gone; starting again', { barcode });
      }
    }
    if (!upload) {
      upload = await store.beginArchive(`tape-${barcode}`, {
        description: `shelfgate tape ${barcode}`,
        partSizeBytes: partSizeForArchive(estimatedBytes, store.partSizeBytes),
      });
      shelved = { ...shelved, job: { kind: 'archive', progressPercent: 0, upload: upload.state } };
      await this.#putArchiveProgress(shelved).catch(async (err: unknown) => {
        await this.#abortUpload(barcode, store, upload!.state);
        throw err;
      });
    }
    const active = upload;
    const partSizeBytes = active.partSizeBytes;
    const partHashes: Buffer[] = [];
    let streamedBytes = 0;
    const sendPart = async (body: Buffer) => {
      const index = partHashes.length;
      const hash = treeHash(body);
      partHashes.push(hash);
      streamedBytes += body.length;
      const sent = active.state.parts.find((p) => p.index === index);
      if (sent?.treeHash === hash.toString('hex') && sent.sizeBytes === body.length) return;
      await active.uploadPart(index, body);
      const progressPercent = Math.min(99, Math.floor((streamedBytes * 100) / Math.max(estimatedBytes, 1)));
      shelved = { ...shelved, job: { kind: 'archive', progressPercent, upload: active.state } };
      await this.#putArchiveProgress(shelved);
      this.#onProgress?.({ barcode, phase: 'archive', partIndex: index, progressPercent });
    };

    const medium = await this.#media.open(barcode);
    let manifest: TapeArchiveStreamSummary;
    try {
      manifest = await encodeTapeArchiveStream(medium, partSizeBytes, sendPart);
    } finally {
      await this.#media.close(medium);
    }
    const sha256TreeHash = combineTreeHashes(partHashes).toString('hex');
    const result = await active.complete();
    if (result.sizeBytes !== manifest.streamSizeBytes || result.sha256TreeHash !== sha256TreeHash) {
      await active.abort();
      await this.#putArchiveProgress({ ...shelved, job: { kind: 'archive', progressPercent: 0, upload: null } });
      throw new GatewayError('GW_TAPE_INVALID_STATE', `archive of tape ${barcode} does not verify (${result.sha256TreeHash} vs ${sha256TreeHash}); archiving again`);
    }
    const archivedAt = new Date(this.#now()).toISOString();
    const locked = (this.#pools.get(shelved.poolId)?.retentionLockType ?? 'NONE') !== 'NONE';
    const { lastError: _previousError, ...withoutError } = shelved;
    const archivedRecord: TapeShelfRecord = {
      ...withoutError,
      archivedAt,
      ...(locked && shelved.retentionStartDate === undefined ? { retentionStartDate: archivedAt } : {}),
      archive: { storeKind: store.kind, archiveId: result.archiveId, sizeBytes: result.sizeBytes, sha256TreeHash, partSizeBytes },
      manifest: { ...manifest, sha256TreeHash },
      job: null,
    };
    await this.#putArchiveProgress(archivedRecord).catch(async (err: unknown) => {
      // Cancelled after the store completed the archive: it is nobody's; remove it.
      await store.deleteArchive(result.archiveId).catch(() => undefined);
      throw err;
    });
    return archivedRecord;
  }

  /** True while the retrieval job is still running. */
  async #retrieve(barcode: string): Promise<boolean> {
    let shelved = this.#shelf.get(barcode);
    if (!shelved?.archive || !shelved.manifest || shelved.job?.kind !== 'retrieve') {
      throw new GatewayError('GW_TAPE_INVALID_STATE', `tape ${barcode} is RETRIEVING without an archive or a retrieval job`);
    }
    const { archive, manifest } = shelved;
    const store = this.#stores[shelved.storageClass];
    let job = shelved.job;
    if (job.jobId === null) {
      const { jobId } = await store.requestRetrieval(archive.archiveId, { tier: job.tier });
      job = { ...job, jobId };
      shelved = { ...shelved, job };
      await this.#shelf.put(shelved);
    }
    const jobId = job.jobId!;
    const status = await store.describeRetrieval(jobId);
    if (status.status === 'InProgress') return true;
    if (status.status === 'Failed') {
      this.#log.warn('tape retrieval job failed; requesting another', { barcode, jobId, message: status.statusMessage });
      await this.#shelf.put({ ...shelved, job: { ...job, jobId: null } });
      return true;
    }
    if (this.#library.emptyElements('storage').length === 0) {
      this.#log.warn('no empty storage slot for a retrieved tape; waiting', { barcode });
      return true;
    }

    // A medium left by an interrupted attempt is rebuilt from the start.
    if ((await this.#media.header(barcode)) !== undefined) await this.#media.delete(barcode);
    const medium = await this.#media.create({ barcode, capacityBytes: shelved.sizeBytes, worm: shelved.worm });
    try {
      const rebuilt = new TapeArchiveStreamDecoder(medium);
      const partHashes: Buffer[] = [];
      for (let offsetBytes = 0, index = 0; offsetBytes < archive.sizeBytes; offsetBytes += archive.partSizeBytes, index++) {
        const body = await store.readRetrieved(jobId, { offsetBytes, lengthBytes: archive.partSizeBytes });
        partHashes.push(treeHash(body));
        await rebuilt.push(body);
        const progressPercent = Math.min(99, Math.floor(((offsetBytes + body.length) * 100) / archive.sizeBytes));
        shelved = { ...shelved, job: { ...job, progressPercent } };
        await this.#shelf.put(shelved);
        this.#onProgress?.({ barcode, phase: 'retrieve', partIndex: index, progressPercent });
      }
      const objects = await rebuilt.end();
      const sha256TreeHash = combineTreeHashes(partHashes).toString('hex');
      if (sha256TreeHash !== manifest.sha256TreeHash || sha256TreeHash !== archive.sha256TreeHash) {
        throw new CloudError('CLOUD_INTEGRITY', `tape ${barcode}: retrieved tree hash ${sha256TreeHash}, manifest ${manifest.sha256TreeHash}`);
      }
      if (!matchesTapeArchiveManifest(objects, manifest)) {
        throw new CloudError('CLOUD_INTEGRITY', `tape ${barcode}: retrieved records and filemarks differ from the manifest`);
      }
      // SSC-4: a RETRIEVED tape is read-only; the drive reports WRITE PROTECT.
      await medium.setWriteProtected(true);
      await this.#media.close(medium);
    } catch (err) {
      await this.#media.close(medium);
      await this.#media.delete(barcode);
      const irrecoverable =
        (err instanceof CloudError && (err.code === 'CLOUD_INTEGRITY' || !err.transient) && err.code !== 'CLOUD_NOT_READY') ||
        (err instanceof StoreError && err.code === 'STORE_CORRUPT');
      if (irrecoverable) {
        await this.#fail(barcode, err);
        return false;
      }
      throw err;
    }
    await this.#library.exclusive(async () => {
      const record = this.#tapeRecord(barcode);
      const [address] = this.#library.emptyElements('storage');
      if (address === undefined) throw new GatewayError('GW_NO_EMPTY_SLOT', `no empty storage slot for retrieved tape ${barcode}`);
      const retrieved = { ...record, status: transition(parseTapeStatus(record.status, barcode), 'retrieval-completed', barcode), location: { address } };
      const { lastError: _previousError, ...withoutError } = shelved!;
      await this.#shelf.put({ ...withoutError, retrievedAt: new Date(this.#now()).toISOString(), job: null });
      await this.#catalog.put(retrieved);
      this.#library.placeTapes([retrieved]);
    });
    this.#log.info('tape retrieved', { barcode, jobId });
    return false;
  }

  async #fail(barcode: string, err: unknown): Promise<void> {
    const shelved = this.#shelf.get(barcode);
    if (shelved) await this.#shelf.put({ ...shelved, job: null });
    const record = this.#tapeRecord(barcode);
    await this.#catalog.put({ ...record, status: transition(parseTapeStatus(record.status, barcode), 'failed', barcode), location: null });
    this.#log.error('tape irrecoverable: its archive does not verify', { barcode, error: String(err) });
  }

  /** Inside exclusive(): DELETING -> DELETED (every step idempotent, so a restart repeats it). */
  async #finishDelete(barcode: string): Promise<void> {
    if (this.#catalog.get(barcode)?.status !== TapeStatus.DELETING) return;
    const shelved = this.#shelf.get(barcode);
    if (shelved?.archive) await this.#stores[shelved.storageClass].deleteArchive(shelved.archive.archiveId);
    if ((await this.#media.header(barcode)) !== undefined) await this.#media.delete(barcode);
    if (shelved) await this.#shelf.put({ ...shelved, job: null });
    const record = this.#tapeRecord(barcode);
    await this.#catalog.put({ ...record, status: transition(parseTapeStatus(record.status, barcode), 'deleted', barcode), location: null });
    this.#log.info('tape archive deleted', { barcode });
  }

  #tapeRecord(barcode: string) {
    const record = this.#catalog.get(barcode);
    if (!record) throw new GatewayError('GW_TAPE_NOT_FOUND', `no tape ${barcode}`);
    return record;
  }
}
