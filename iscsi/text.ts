// RFC 7143 11.10 / 11.11 Text Request and Response sequences: a request spread over several PDUs
// (C bit), and a long answer spread over several responses (F=0 with a Target Transfer Tag the
// initiator echoes in an empty request to ask for more).

import { IscsiError } from './errors.js';
import { encodeTextData, parseTextData, type KeyValue } from './negotiation.js';
import { RESERVED_TAG, RejectReason, type TextRequest } from './pdu/types.js';

/** The fields of the Text Response to send (the connection adds StatSN and the window). */
export interface TextReply {
  final: boolean;
  continue: boolean;
  ttt: number;
  data: Buffer;
}

type TextExchangeState =
  | { kind: 'idle' }
  | { kind: 'collecting'; itt: number; ttt: number; parts: Buffer[] }
  | { kind: 'answering'; itt: number; ttt: number; data: Buffer; offsetBytes: number };

/** One connection's text exchange (RFC 7143 allows only one outstanding Text Request per connection). */
export class TextExchange {
  private state: TextExchangeState = { kind: 'idle' };

  /** `maxTextBytes`: request text held across continuation PDUs (limits.ts). */
  constructor(
    private readonly allocateTtt: () => number,
    private readonly maxTextBytes: number,
  ) {}

  /**
   * Handles one Text Request. `answer` computes the answer pairs for the complete request text.
   * `maxSegmentBytes` is the initiator's MaxRecvDataSegmentLength. Throws an IscsiError with a
   * reject reason for a request that does not fit the exchange.
   */
  handle(req: TextRequest, answer: (pairs: KeyValue[]) => KeyValue[], maxSegmentBytes: number): TextReply {
    if (req.final && req.continue) {
      throw new IscsiError('ISCSI_PROTOCOL', 'Text Request with both F and C set', {
        rejectReason: RejectReason.PROTOCOL_ERROR,
      });
    }
    const state = this.state;
    if (req.ttt === RESERVED_TAG) {
      // A new exchange; RFC 7143 11.10.4: it resets any exchange in progress.
      this.state = { kind: 'idle' };
      return this.onRequestText(req, [req.data], answer, maxSegmentBytes);
    }
    if (state.kind === 'collecting' && req.ttt === state.ttt && req.itt === state.itt) {
      return this.onRequestText(req, [...state.parts, req.data], answer, maxSegmentBytes);
    }
    if (state.kind === 'answering' && req.ttt === state.ttt && req.itt === state.itt) {
      return this.nextChunk(state, maxSegmentBytes);
    }
    this.state = { kind: 'idle' };
    throw new IscsiError('ISCSI_INVALID_PDU_FIELD', `Text Request with unknown TTT 0x${req.ttt.toString(16)}`, {
      rejectReason: RejectReason.INVALID_PDU_FIELD,
    });
  }

  private onRequestText(
    req: TextRequest,
    parts: Buffer[],
    answer: (pairs: KeyValue[]) => KeyValue[],
    maxSegmentBytes: number,
  ): TextReply {
    let heldBytes = 0;
    for (const p of parts) heldBytes += p.length;
    if (heldBytes > this.maxTextBytes) {
      // Bounded by configuration: RFC 7143 11.17.1 reason 0x0a (no Target Transfer Tag for more:
      // out of resources); the exchange is forgotten.
      this.state = { kind: 'idle' };
      throw new IscsiError('ISCSI_PROTOCOL', `text request over ${this.maxTextBytes} bytes across continuation PDUs`, {
        rejectReason: RejectReason.LONG_OP_REJECT,
      });
    }
    if (req.continue) {
      // RFC 7143 11.10.2: acknowledge a partial request with an empty response.
      const ttt = this.allocateTtt();
      this.state = { kind: 'collecting', itt: req.itt, ttt, parts };
      return { final: false, continue: false, ttt, data: Buffer.alloc(0) };
    }
    let pairs: KeyValue[];
    try {
      pairs = parseTextData(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    } catch (err) {
      this.state = { kind: 'idle' };
      throw new IscsiError('ISCSI_PROTOCOL', 'malformed text in Text Request', {
        rejectReason: RejectReason.PROTOCOL_ERROR,
        cause: err,
      });
    }
    const data = encodeTextData(answer(pairs));
    return this.nextChunk({ kind: 'answering', itt: req.itt, ttt: this.allocateTtt(), data, offsetBytes: 0 }, maxSegmentBytes);
  }

  private nextChunk(state: Extract<TextExchangeState, { kind: 'answering' }>, maxSegmentBytes: number): TextReply {
    const start = state.offsetBytes;
    const end = Math.min(state.data.length, start + maxSegmentBytes);
    const chunk = state.data.subarray(start, end);
    if (end >= state.data.length) {
      this.state = { kind: 'idle' };
      return { final: true, continue: false, ttt: RESERVED_TAG, data: chunk };
    }
    this.state = { ...state, offsetBytes: end };
    // RFC 7143 11.11.2: C=1 when a key=value pair is split across responses.
    return { final: false, continue: chunk[chunk.length - 1] !== 0, ttt: state.ttt, data: chunk };
  }
}
