// iSCSI PDUs as a typed, discriminated union on `opcode` (RFC 7143 section 11).
// Field names follow the RFC: itt, ttt, cmdSN, expStatSN, statSN, expCmdSN, maxCmdSN, dataSN, isid, tsih.
// A decoded PDU owns its `data` Buffer (never a slice of a buffer the framer reuses).

/** RFC 7143 11.1.1 opcodes. */
export const Opcode = {
  // initiator -> target
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MGMT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  SCSI_DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
  // target -> initiator
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MGMT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  SCSI_DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

/** The reserved "no task tag" value (RFC 7143 11.18.1 / 11.19.1). */
export const RESERVED_TAG = 0xffffffff;

/** Fields common to every PDU as carried on the wire. */
interface PduBase {
  /** I bit (immediate delivery); only meaningful on initiator PDUs. */
  immediate: boolean;
  /** Additional Header Segments, raw (RFC 7143 11.2.1.5); usually empty. */
  ahs: Buffer;
  /** Data segment without padding or digest. */
  data: Buffer;
}

// ---- initiator -> target -------------------------------------------------------------------------

/** RFC 7143 11.18 NOP-Out. */
export interface NopOut extends PduBase {
  opcode: typeof Opcode.NOP_OUT;
  lun: bigint;
  itt: number;
  ttt: number;
  cmdSN: number;
  expStatSN: number;
}

/** RFC 7143 11.3 SCSI Command. */
export interface ScsiCommandPdu extends PduBase {
  opcode: typeof Opcode.SCSI_COMMAND;
  final: boolean;
  read: boolean;
  write: boolean;
  /** ATTR: 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA. */
  taskAttr: number;
  lun: bigint;
  itt: number;
  expectedDataTransferLength: number;
  cmdSN: number;
  expStatSN: number;
  /** The CDB: 16 bytes from the BHS, extended by an Extended CDB AHS when present. */
  cdb: Buffer;
}

/** RFC 7143 11.5 Task Management Function Request. */
export interface TaskMgmtRequest extends PduBase {
  opcode: typeof Opcode.TASK_MGMT_REQUEST;
  /** 1 ABORT TASK, 2 ABORT TASK SET, 3 CLEAR ACA, 4 CLEAR TASK SET, 5 LUN RESET,
   *  6 TARGET WARM RESET, 7 TARGET COLD RESET, 8 TASK REASSIGN. */
  function: number;
  lun: bigint;
  itt: number;
  referencedTaskTag: number;
  cmdSN: number;
  expStatSN: number;
  refCmdSN: number;
  expDataSN: number;
}

/** RFC 7143 11.12 Login Request. */
export interface LoginRequest extends PduBase {
  opcode: typeof Opcode.LOGIN_REQUEST;
  transit: boolean;
  continue: boolean;
  /** CSG / NSG: 0 security negotiation, 1 login operational negotiation, 3 full feature phase. */
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  /** 6-byte ISID as a Buffer copy. */
  isid: Buffer;
  tsih: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
}

/** RFC 7143 11.10 Text Request. */
export interface TextRequest extends PduBase {
  opcode: typeof Opcode.TEXT_REQUEST;
  final: boolean;
  continue: boolean;
  lun: bigint;
  itt: number;
  ttt: number;
  cmdSN: number;
  expStatSN: number;
}

/** RFC 7143 11.7 SCSI Data-Out. */
export interface DataOut extends PduBase {
  opcode: typeof Opcode.SCSI_DATA_OUT;
  final: boolean;
  lun: bigint;
  itt: number;
  ttt: number;
  expStatSN: number;
  dataSN: number;
  bufferOffset: number;
}

/** RFC 7143 11.14 Logout Request. */
export interface LogoutRequest extends PduBase {
  opcode: typeof Opcode.LOGOUT_REQUEST;
  /** 0 close the session, 1 close the connection, 2 remove the connection for recovery. */
  reasonCode: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
}

/** RFC 7143 11.16 SNACK Request (not supported at ErrorRecoveryLevel 0: answered with Reject). */
export interface SnackRequest extends PduBase {
  opcode: typeof Opcode.SNACK_REQUEST;
  type: number;
  lun: bigint;
  itt: number;
  ttt: number;
  expStatSN: number;
  begRun: number;
  runLength: number;
}

// ---- target -> initiator -------------------------------------------------------------------------

/** RFC 7143 11.19 NOP-In. */
export interface NopIn extends PduBase {
  opcode: typeof Opcode.NOP_IN;
  lun: bigint;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

/** RFC 7143 11.4 SCSI Response. `data` carries SenseLength(2) + sense data when present. */
export interface ScsiResponsePdu extends PduBase {
  opcode: typeof Opcode.SCSI_RESPONSE;
  /** o/u/O/U residual flags. */
  bidiOverflow: boolean;
  bidiUnderflow: boolean;
  overflow: boolean;
  underflow: boolean;
  /** 0 command completed at target, 1 target failure. */
  response: number;
  status: number;
  itt: number;
  snackTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  expDataSN: number;
  bidiResidualCount: number;
  residualCount: number;
}

/** RFC 7143 11.6 Task Management Function Response. */
export interface TaskMgmtResponse extends PduBase {
  opcode: typeof Opcode.TASK_MGMT_RESPONSE;
  /** 0 complete, 1 task does not exist, 2 LUN does not exist, 3 task still allegiant,
   *  4 reassignment not supported, 5 function not supported, 6 authorization failed, 255 rejected. */
  response: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

/** RFC 7143 11.13 Login Response. */
export interface LoginResponse extends PduBase {
  opcode: typeof Opcode.LOGIN_RESPONSE;
  transit: boolean;
  continue: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  isid: Buffer;
  tsih: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  statusClass: number;
  statusDetail: number;
}

/** RFC 7143 11.11 Text Response. */
export interface TextResponse extends PduBase {
  opcode: typeof Opcode.TEXT_RESPONSE;
  final: boolean;
  continue: boolean;
  lun: bigint;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

/** RFC 7143 11.7 SCSI Data-In. When `statusPresent`, `status` and residuals are valid and StatSN advances. */
export interface DataIn extends PduBase {
  opcode: typeof Opcode.SCSI_DATA_IN;
  final: boolean;
  acknowledge: boolean;
  overflow: boolean;
  underflow: boolean;
  statusPresent: boolean;
  status: number;
  lun: bigint;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
  bufferOffset: number;
  residualCount: number;
}

/** RFC 7143 11.15 Logout Response. */
export interface LogoutResponse extends PduBase {
  opcode: typeof Opcode.LOGOUT_RESPONSE;
  /** 0 closed successfully, 1 CID not found, 2 recovery not supported, 3 cleanup failed. */
  response: number;
  itt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  time2Wait: number;
  time2Retain: number;
}

/** RFC 7143 11.8 Ready To Transfer. */
export interface R2T extends PduBase {
  opcode: typeof Opcode.R2T;
  lun: bigint;
  itt: number;
  ttt: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  r2tSN: number;
  bufferOffset: number;
  desiredDataTransferLength: number;
}

/** RFC 7143 11.9 Asynchronous Message. */
export interface AsyncMessage extends PduBase {
  opcode: typeof Opcode.ASYNC_MESSAGE;
  lun: bigint;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** 0 SCSI async event, 1 logout request, 2 drop connection, 3 drop all connections,
   *  4 renegotiate, 255 vendor specific. */
  asyncEvent: number;
  asyncVCode: number;
  parameter1: number;
  parameter2: number;
  parameter3: number;
}

/** RFC 7143 11.17 Reject. `data` carries the complete header of the rejected PDU. */
export interface Reject extends PduBase {
  opcode: typeof Opcode.REJECT;
  /** 0x02 data digest error, 0x03 SNACK reject, 0x04 protocol error, 0x05 command not supported,
   *  0x06 immediate command reject, 0x07 task in progress, 0x08 invalid data ack,
   *  0x09 invalid PDU field, 0x0a long op reject, 0x0c waiting for logout. */
  reason: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
}

export type InitiatorPdu =
  | NopOut
  | ScsiCommandPdu
  | TaskMgmtRequest
  | LoginRequest
  | TextRequest
  | DataOut
  | LogoutRequest
  | SnackRequest;

export type TargetPdu =
  | NopIn
  | ScsiResponsePdu
  | TaskMgmtResponse
  | LoginResponse
  | TextResponse
  | DataIn
  | LogoutResponse
  | R2T
  | AsyncMessage
  | Reject;

export type Pdu = InitiatorPdu | TargetPdu;

/** RFC 7143 11.17.1 Reject reasons. */
export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  LONG_OP_REJECT: 0x0a,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;

/** RFC 7143 11.13.5 Login status classes and details (class << 8 | detail). */
export const LoginStatus = {
  SUCCESS: 0x0000,
  TARGET_MOVED_TEMPORARILY: 0x0101,
  TARGET_MOVED_PERMANENTLY: 0x0102,
  INITIATOR_ERROR: 0x0200,
  AUTHENTICATION_FAILURE: 0x0201,
  AUTHORIZATION_FAILURE: 0x0202,
  NOT_FOUND: 0x0203,
  TARGET_REMOVED: 0x0204,
  UNSUPPORTED_VERSION: 0x0205,
  TOO_MANY_CONNECTIONS: 0x0206,
  MISSING_PARAMETER: 0x0207,
  CANT_INCLUDE_IN_SESSION: 0x0208,
  SESSION_TYPE_NOT_SUPPORTED: 0x0209,
  SESSION_DOES_NOT_EXIST: 0x020a,
  INVALID_DURING_LOGIN: 0x020b,
  TARGET_ERROR: 0x0300,
  SERVICE_UNAVAILABLE: 0x0301,
  OUT_OF_RESOURCES: 0x0302,
} as const;
