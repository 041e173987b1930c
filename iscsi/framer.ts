// Incremental iSCSI PDU framing (RFC 7143 11.2): BHS(48) | AHS | HeaderDigest? | Data | pad to 4 | DataDigest?
// The data digest is present only when the data segment is not empty; it covers data + padding.
// The header digest covers BHS + AHS. Digests are CRC32C, least significant byte first (crc32c.ts).
//
// Ownership rule (ARCHITECTURE.md): the buffers handed upward are never reused by the framer.
//  - A header or data segment lying entirely inside one pushed chunk is handed up as a subarray of
//    that chunk, without a copy. This relies on the caller never reusing a pushed chunk (Node's
//    net.Socket gives a fresh Buffer per 'data' event) and keeps the chunk alive while it is held.
//  - A header or data segment spanning chunks is copied, once, into a freshly allocated Buffer of
//    exactly its length (so a 1 MiB Data-Out arriving in 64 KiB chunks is copied exactly once).
//  - Unless the owner of the framer places the data segment itself (`placeData`): it then names,
//    from the header, the Buffer the segment must land in — for a Data-Out, the slice of the
//    task's write buffer at its Buffer Offset (RFC 7143 11.7.5) — and the segment is copied once,
//    straight into it, whether it lies in one chunk or spans several. That buffer belongs to the
//    owner; the framer writes into it only until the segment is complete (see `placingInto`).

import { DIGEST_LENGTH, crc32c, readDigest, writeDigest } from './crc32c.js';
import { IscsiError } from './errors.js';
import {
  BHS_LENGTH,
  MAX_DATA_SEGMENT_LENGTH,
  dataSegmentLengthBytes,
  decodePdu,
  encodeBhs,
  totalAhsLengthBytes,
} from './pdu/codec.js';
import { RejectReason, type Pdu } from './pdu/types.js';

export type FramerEvent =
  | { kind: 'pdu'; pdu: Pdu }
  /** RFC 7143 7.8: the header was good, the data digest was not; the PDU is to be rejected (0x02). */
  | { kind: 'dataDigestError'; bhs: Buffer; pdu: Pdu }
  /** The PDU was framed but its header could not be decoded; `bhs` is its 48-byte header. */
  | { kind: 'reject'; bhs: Buffer; reason: number };

/** Names the Buffer (exactly `dataLength` bytes) a PDU's data segment is to be copied into, from
 *  its 48-byte BHS (already checked against the header digest); undefined lets the framer choose. */
export type DataPlacement = (bhs: Buffer, dataLength: number) => Buffer | undefined;

export interface FramerOptions {
  headerDigest?: boolean;
  dataDigest?: boolean;
  /** Our MaxRecvDataSegmentLength; a larger DataSegmentLength is fatal. Default: the 24-bit maximum. */
  maxDataSegmentLength?: number;
  placeData?: DataPlacement;
}

type FramerState = 'header' | 'data' | 'trailer';

const EMPTY = Buffer.alloc(0);

export class PduFramer {
  private headerDigest: boolean;
  private dataDigest: boolean;
  private maxDataSegmentLength: number;
  private placeData: DataPlacement | undefined;

  private state: FramerState = 'header';
  private failure: IscsiError | undefined;

  /** Header being assembled across chunks (BHS first, then grown to BHS + AHS + digest). */
  private headerStage: Buffer | undefined;
  private headerFill = 0;

  /** The current PDU, once its header is complete. */
  private bhs: Buffer = EMPTY;
  private ahs: Buffer = EMPTY;
  private dataLength = 0;
  private dataDigestOn = false;
  private data: Buffer = EMPTY;
  private dataFill = 0;
  /** The current data segment lands in a buffer its owner placed (copied into even from one chunk). */
  private dataPlaced = false;

  /** Padding and data digest of the current PDU; internal only, never handed upward. */
  private readonly trailer = Buffer.alloc(3 + DIGEST_LENGTH);
  private trailerLength = 0;
  private trailerFill = 0;

  constructor(opts: FramerOptions = {}) {
    this.headerDigest = opts.headerDigest ?? false;
    this.dataDigest = opts.dataDigest ?? false;
    this.maxDataSegmentLength = opts.maxDataSegmentLength ?? MAX_DATA_SEGMENT_LENGTH;
    this.placeData = opts.placeData;
  }

  /** Sets (or clears) where data segments land, from the next PDU header on. */
  setDataPlacement(placeData: DataPlacement | undefined): void {
    this.placeData = placeData;
  }

  /** The placed buffer a data segment is still being copied into across chunks (its PDU is not
   *  handed up yet), else undefined. Its owner must not let anybody else use that memory until
   *  this moves on (e.g. a write whose Data-Out is complete waits for the extra PDU to end). */
  get placingInto(): Buffer | undefined {
    return this.state === 'data' && this.dataPlaced ? this.data : undefined;
  }

  /** Part of a PDU has arrived and the rest has not. */
  get midPdu(): boolean {
    return this.state !== 'header' || this.headerFill > 0;
  }

  /** Digests negotiated at login (RFC 7143 13.1) apply from the next PDU header on. */
  setDigests(headerDigest: boolean, dataDigest: boolean): void {
    this.headerDigest = headerDigest;
    this.dataDigest = dataDigest;
  }

  /** Our declared MaxRecvDataSegmentLength (RFC 7143 13.12), from the next PDU header on. */
  setMaxDataSegmentLength(n: number): void {
    this.maxDataSegmentLength = n;
  }

  /**
   * Consumes one chunk and returns the PDUs completed by it, in order. Throws a fatal IscsiError
   * when framing is lost (header digest error, DataSegmentLength over the limit); PDUs completed
   * earlier in the same chunk are then discarded with the connection, and every later push throws
   * the same error.
   */
  push(chunk: Buffer): FramerEvent[] {
    if (this.failure !== undefined) throw this.failure;
    const events: FramerEvent[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      switch (this.state) {
        case 'header':
          offset = this.takeHeader(chunk, offset, events);
          break;
        case 'data':
          offset = this.takeData(chunk, offset, events);
          break;
        case 'trailer':
          offset = this.takeTrailer(chunk, offset, events);
          break;
      }
    }
    return events;
  }

  private takeHeader(chunk: Buffer, offset: number, events: FramerEvent[]): number {
    const available = chunk.length - offset;
    if (this.headerFill === 0 && available >= BHS_LENGTH) {
      const headerLength = this.headerLengthOf(chunk, offset);
      if (available >= headerLength) {
        this.onHeader(chunk.subarray(offset, offset + headerLength), events);
        return offset + headerLength;
      }
    }
    // Slow path: the header spans chunks; assemble it in a fresh buffer.
    if (this.headerStage === undefined) this.headerStage = Buffer.allocUnsafe(BHS_LENGTH);
    let stage = this.headerStage;
    if (this.headerFill < BHS_LENGTH) {
      const n = Math.min(BHS_LENGTH - this.headerFill, available);
      chunk.copy(stage, this.headerFill, offset, offset + n);
      this.headerFill += n;
      offset += n;
      if (this.headerFill < BHS_LENGTH) return offset;
      const headerLength = this.headerLengthOf(stage, 0);
      if (headerLength > BHS_LENGTH) {
        const grown = Buffer.allocUnsafe(headerLength);
        stage.copy(grown, 0, 0, BHS_LENGTH);
        stage = this.headerStage = grown;
      }
    }
    const n = Math.min(stage.length - this.headerFill, chunk.length - offset);
    chunk.copy(stage, this.headerFill, offset, offset + n);
    this.headerFill += n;
    offset += n;
    if (this.headerFill === stage.length) {
      this.headerStage = undefined;
      this.headerFill = 0;
      this.onHeader(stage, events);
    }
    return offset;
  }

  private headerLengthOf(buf: Buffer, offset: number): number {
    return BHS_LENGTH + buf[offset + 4]! * 4 + (this.headerDigest ? DIGEST_LENGTH : 0);
  }

  private onHeader(header: Buffer, events: FramerEvent[]): void {
    const bhs = header.subarray(0, BHS_LENGTH);
    const ahsEnd = BHS_LENGTH + totalAhsLengthBytes(bhs);
    if (this.headerDigest) {
      // RFC 7143 13.1: a header digest error loses framing; the connection must be dropped.
      const expected = crc32c(header.subarray(0, ahsEnd));
      if (readDigest(header, ahsEnd) !== expected) {
        this.fail(new IscsiError('ISCSI_HEADER_DIGEST', 'header digest error', { fatal: true }));
      }
    }
    const dataLength = dataSegmentLengthBytes(bhs);
    if (dataLength > this.maxDataSegmentLength) {
      this.fail(
        new IscsiError(
          'ISCSI_PROTOCOL',
          `DataSegmentLength ${dataLength} exceeds MaxRecvDataSegmentLength ${this.maxDataSegmentLength}`,
          { rejectReason: RejectReason.PROTOCOL_ERROR, fatal: true },
        ),
      );
    }
    this.bhs = bhs;
    this.ahs = header.subarray(BHS_LENGTH, ahsEnd);
    this.dataLength = dataLength;
    this.dataDigestOn = this.dataDigest && dataLength > 0;
    this.data = EMPTY;
    this.dataFill = 0;
    this.dataPlaced = false;
    if (dataLength > 0 && this.placeData !== undefined) {
      const target = this.placeData(bhs, dataLength);
      if (target !== undefined) {
        if (target.length !== dataLength) throw new RangeError(`placed ${target.length} bytes for a ${dataLength}-byte data segment`);
        this.data = target;
        this.dataPlaced = true;
      }
    }
    this.trailerLength = ((4 - (dataLength & 3)) & 3) + (this.dataDigestOn ? DIGEST_LENGTH : 0);
    this.trailerFill = 0;
    if (dataLength > 0) this.state = 'data';
    else this.finishPdu(events);
  }

  private takeData(chunk: Buffer, offset: number, events: FramerEvent[]): number {
    const available = chunk.length - offset;
    let taken: number;
    if (this.dataFill === 0 && available >= this.dataLength && !this.dataPlaced) {
      this.data = chunk.subarray(offset, offset + this.dataLength);
      taken = this.dataLength;
    } else {
      // Placed, or spans chunks: one copy, into the placed buffer or one owned by this PDU alone.
      if (this.dataFill === 0 && !this.dataPlaced) this.data = Buffer.allocUnsafe(this.dataLength);
      taken = Math.min(this.dataLength - this.dataFill, available);
      chunk.copy(this.data, this.dataFill, offset, offset + taken);
    }
    this.dataFill += taken;
    if (this.dataFill === this.dataLength) {
      this.state = 'trailer';
      if (this.trailerLength === 0) this.finishPdu(events);
    }
    return offset + taken;
  }

  private takeTrailer(chunk: Buffer, offset: number, events: FramerEvent[]): number {
    const n = Math.min(this.trailerLength - this.trailerFill, chunk.length - offset);
    chunk.copy(this.trailer, this.trailerFill, offset, offset + n);
    this.trailerFill += n;
    if (this.trailerFill === this.trailerLength) this.finishPdu(events);
    return offset + n;
  }

  private finishPdu(events: FramerEvent[]): void {
    this.state = 'header';
    const { bhs, ahs, data } = this;
    this.bhs = this.ahs = this.data = EMPTY;
    this.dataPlaced = false;
    let digestOk = true;
    if (this.dataDigestOn) {
      const padLength = this.trailerLength - DIGEST_LENGTH;
      const expected = crc32c(this.trailer.subarray(0, padLength), crc32c(data));
      digestOk = readDigest(this.trailer, padLength) === expected;
    }
    let pdu: Pdu;
    try {
      pdu = decodePdu(bhs, ahs, data);
    } catch (err) {
      const reason = !digestOk
        ? RejectReason.DATA_DIGEST_ERROR
        : err instanceof IscsiError && err.rejectReason !== undefined
          ? err.rejectReason
          : RejectReason.PROTOCOL_ERROR;
      events.push({ kind: 'reject', bhs, reason });
      return;
    }
    events.push(digestOk ? { kind: 'pdu', pdu } : { kind: 'dataDigestError', bhs, pdu });
  }

  private fail(err: IscsiError): never {
    this.failure = err;
    throw err;
  }
}

/**
 * The wire form of `pdu` as buffers for socket.writev / cork+write, without copying the data:
 * [BHS + AHS (+ header digest)], then, when there is data, [data] and [padding (+ data digest)]
 * when that is not empty. Empty parts are left out.
 */
export function serializePdu(pdu: Pdu, opts: { headerDigest: boolean; dataDigest: boolean }): Buffer[] {
  return serializePduParts(pdu, pdu.data.length > 0 ? [pdu.data] : [], opts);
}

/**
 * Like serializePdu, with the data segment given as consecutive buffers (`pdu.data` is not looked
 * at): a Data-In's slice of the read buffer (RFC 7143 11.7), a SCSI Response's SenseLength and
 * sense data (11.4.7). The header is encoded alone (encodeBhs with the summed DataSegmentLength),
 * the data buffers are passed through as they are and the data digest (RFC 7143 13.1: CRC32C over
 * data and padding) is computed over them in place.
 */
export function serializePduParts(
  pdu: Pdu,
  data: readonly Buffer[],
  opts: { headerDigest: boolean; dataDigest: boolean },
): Buffer[] {
  let dataLength = 0;
  for (const d of data) dataLength += d.length;
  const bhs = encodeBhs(pdu, dataLength);
  const ahsEnd = BHS_LENGTH + pdu.ahs.length;
  let header = bhs;
  if (pdu.ahs.length > 0 || opts.headerDigest) {
    header = Buffer.allocUnsafe(ahsEnd + (opts.headerDigest ? DIGEST_LENGTH : 0));
    bhs.copy(header, 0);
    pdu.ahs.copy(header, BHS_LENGTH);
    if (opts.headerDigest) writeDigest(header, ahsEnd, crc32c(header.subarray(0, ahsEnd)));
  }
  const parts = [header];
  if (dataLength === 0) return parts;
  let crc: number | undefined;
  for (const d of data) {
    if (d.length === 0) continue;
    parts.push(d);
    if (opts.dataDigest) crc = crc32c(d, crc);
  }
  const padLength = (4 - (dataLength & 3)) & 3;
  const trailer = Buffer.alloc(padLength + (opts.dataDigest ? DIGEST_LENGTH : 0));
  if (opts.dataDigest) writeDigest(trailer, padLength, crc32c(trailer.subarray(0, padLength), crc));
  if (trailer.length > 0) parts.push(trailer);
  return parts;
}
