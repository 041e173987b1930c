// KMSEncrypted / KMSKey on CreateTapes, CreateTapeWithBarcode, CreateStorediSCSIVolume and
// CreateCachediSCSIVolume (AWS Storage Gateway API reference: "KMSKey … can only be set when the
// value of KMSEncrypted is true"). shelfgate encrypts every object of a gateway under one key
// (docs/encryption.md), so a request for KMS encryption is accepted when that key is a KMS key and
// KMSKey, if given, names it; anything else is refused with what to configure.

import type { AdminDeps } from '../admin-deps.js';
import { invalidGatewayRequest } from './aws-error.js';

export function checkKmsEncrypted(input: { KMSEncrypted?: boolean | undefined; KMSKey?: string | undefined }, encryption: AdminDeps['encryption']): void {
  if (input.KMSKey !== undefined && input.KMSEncrypted !== true) {
    throw invalidGatewayRequest('InvalidParameters', 'KMSKey: can only be set when KMSEncrypted is true', { field: 'KMSKey' });
  }
  if (input.KMSEncrypted !== true) return;
  if (encryption?.keySource !== 'kms') {
    throw invalidGatewayRequest(
      'NotSupported',
      'KMSEncrypted: this gateway does not encrypt with AWS KMS; set encryption.keySource: kms and encryption.kmsKeyId (docs/encryption.md)',
      { field: 'KMSEncrypted' },
    );
  }
  if (input.KMSKey !== undefined && input.KMSKey !== encryption.kmsKeyId) {
    throw invalidGatewayRequest(
      'NotSupported',
      `KMSKey: every tape and volume of this gateway is encrypted with ${encryption.kmsKeyId}; another key per tape or volume is not supported`,
      { field: 'KMSKey' },
    );
  }
}
