// T10 names for operation codes, service actions and device-level constants shared by every
// device type (SPC-4 annex D "Numeric order codes"; SBC-3 5; SSC-4 / SMC-3 add theirs later).

/** Operation codes (SPC-4 D.3.1). One flat table so one grep finds spec, tgt, LIO and us. */
export const Op = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  FORMAT_UNIT: 0x04,
  READ_6: 0x08,
  WRITE_6: 0x0a,
  INQUIRY: 0x12,
  MODE_SELECT_6: 0x15,
  RESERVE_6: 0x16,
  RELEASE_6: 0x17,
  MODE_SENSE_6: 0x1a,
  START_STOP_UNIT: 0x1b,
  SEND_DIAGNOSTIC: 0x1d,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e,
  READ_CAPACITY_10: 0x25,
  READ_10: 0x28,
  WRITE_10: 0x2a,
  WRITE_AND_VERIFY_10: 0x2e,
  VERIFY_10: 0x2f,
  PRE_FETCH_10: 0x34,
  SYNCHRONIZE_CACHE_10: 0x35,
  READ_DEFECT_DATA_10: 0x37,
  WRITE_BUFFER: 0x3b,
  READ_BUFFER: 0x3c,
  WRITE_SAME_10: 0x41,
  UNMAP: 0x42,
  SANITIZE: 0x48,
  LOG_SELECT: 0x4c,
  LOG_SENSE: 0x4d,
  MODE_SELECT_10: 0x55,
  RESERVE_10: 0x56,
  RELEASE_10: 0x57,
  MODE_SENSE_10: 0x5a,
  PERSISTENT_RESERVE_IN: 0x5e,
  PERSISTENT_RESERVE_OUT: 0x5f,
  EXTENDED_COPY: 0x83,
  RECEIVE_COPY_RESULTS: 0x84,
  READ_16: 0x88,
  COMPARE_AND_WRITE: 0x89,
  WRITE_16: 0x8a,
  ORWRITE_16: 0x8b,
  WRITE_AND_VERIFY_16: 0x8e,
  VERIFY_16: 0x8f,
  PRE_FETCH_16: 0x90,
  SYNCHRONIZE_CACHE_16: 0x91,
  WRITE_SAME_16: 0x93,
  SERVICE_ACTION_IN_16: 0x9e,
  REPORT_LUNS: 0xa0,
  MAINTENANCE_IN: 0xa3,
  MAINTENANCE_OUT: 0xa4,
  READ_12: 0xa8,
  WRITE_12: 0xaa,
  WRITE_AND_VERIFY_12: 0xae,
  VERIFY_12: 0xaf,
  READ_DEFECT_DATA_12: 0xb7,
  // SMC-3 6 media changer commands
  INITIALIZE_ELEMENT_STATUS: 0x07,
  POSITION_TO_ELEMENT: 0x2b,
  INITIALIZE_ELEMENT_STATUS_WITH_RANGE: 0x37,
  MOVE_MEDIUM: 0xa5,
  READ_ELEMENT_STATUS: 0xb8,
  // SSC-4 6 sequential-access (tape) commands
  REWIND: 0x01,
  READ_BLOCK_LIMITS: 0x05,
  WRITE_FILEMARKS_6: 0x10,
  SPACE_6: 0x11,
  ERASE_6: 0x19,
  LOAD_UNLOAD: 0x1b,
  LOCATE_10: 0x2b,
  READ_POSITION: 0x34,
  REPORT_DENSITY_SUPPORT: 0x44,
  SPACE_16: 0x91,
  LOCATE_16: 0x92,
} as const;

/** SERVICE ACTION IN(16) service actions (SBC-3 5.16 / 5.23). */
export const ServiceActionIn16 = {
  READ_CAPACITY_16: 0x10,
  GET_LBA_STATUS: 0x12,
} as const;

/** MAINTENANCE IN service actions (SPC-4 6.35 / 6.25). */
export const MaintenanceIn = {
  REPORT_TARGET_PORT_GROUPS: 0x0a,
  REPORT_SUPPORTED_OPERATION_CODES: 0x0c,
  REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS: 0x0d,
} as const;

/** PERSISTENT RESERVE IN service actions (SPC-4 6.13.1). */
export const PrInAction = {
  READ_KEYS: 0x00,
  READ_RESERVATION: 0x01,
  REPORT_CAPABILITIES: 0x02,
  READ_FULL_STATUS: 0x03,
} as const;

/** PERSISTENT RESERVE OUT service actions (SPC-4 6.14.2). */
export const PrOutAction = {
  REGISTER: 0x00,
  RESERVE: 0x01,
  RELEASE: 0x02,
  CLEAR: 0x03,
  PREEMPT: 0x04,
  PREEMPT_AND_ABORT: 0x05,
  REGISTER_AND_IGNORE_EXISTING_KEY: 0x06,
  REGISTER_AND_MOVE: 0x07,
} as const;

/** Persistent reservation TYPE codes (SPC-4 6.13.3.4 table 169). */
export const PrType = {
  WRITE_EXCLUSIVE: 0x1,
  EXCLUSIVE_ACCESS: 0x3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 0x5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 0x6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS: 0x7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 0x8,
} as const;

/** SPC-4 6.4.2 table 140 PERIPHERAL DEVICE TYPE. */
export const PeripheralDeviceType = {
  DIRECT_ACCESS: 0x00,
  SEQUENTIAL_ACCESS: 0x01,
  MEDIUM_CHANGER: 0x08,
} as const;

/** Version descriptors (SPC-4 6.4.2 table 141). */
export const VersionDescriptor = {
  SAM_5: 0x00a0,
  ISCSI: 0x0960,
  SPC_4: 0x0460,
  SBC_3: 0x04c0,
  SSC_4: 0x0520,
  SMC_3: 0x0480,
} as const;

/** Direction of the data phase of a command (SAM-5 5.4). */
export type DataDirection = 'none' | 'in' | 'out';
