// The iSCSI layer's error family (see ARCHITECTURE.md "One error family per layer").
// An IscsiError becomes a Reject PDU (rejectReason set), a login failure (loginStatus set),
// or, when `fatal`, the connection is dropped.

export type IscsiErrorCode =
  | 'ISCSI_PROTOCOL'
  | 'ISCSI_INVALID_PDU_FIELD'
  | 'ISCSI_UNSUPPORTED_OPCODE'
  | 'ISCSI_HEADER_DIGEST'
  | 'ISCSI_DATA_DIGEST'
  | 'ISCSI_LOGIN'
  | 'ISCSI_NEGOTIATION';

export class IscsiError extends Error {
  readonly code: IscsiErrorCode;
  /** RFC 7143 11.17.1 reason to send in a Reject, when the PDU can be rejected. */
  readonly rejectReason?: number;
  /** RFC 7143 11.13.5 status (class << 8 | detail) when this ends a login. */
  readonly loginStatus?: number;
  /** The connection cannot continue (e.g. header digest error: framing is lost). */
  readonly fatal: boolean;

  constructor(
    code: IscsiErrorCode,
    message: string,
    opts: { rejectReason?: number; loginStatus?: number; fatal?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'IscsiError';
    this.code = code;
    this.rejectReason = opts.rejectReason;
    this.loginStatus = opts.loginStatus;
    this.fatal = opts.fatal ?? false;
  }
}
