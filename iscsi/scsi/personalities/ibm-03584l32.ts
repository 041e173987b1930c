// IBM TotalStorage 3584 (TS3500) L32 frame, firmware 0402 (MediumChangerType
// "IBM-03584L32-0402"; IBM Spectrum Protect's recommended type). Element addresses follow the 3584
// SCSI reference layout (as mhVTL's IBM 3584 model does): transport 1, drives from 0x101,
// import/export from 0x300, storage from 0x400 — with the gateway's 1,600 storage elements
// (0x400–0xA3F) the 1,600 import/export elements move above them to 0xC00–0x123F.

import { deviceCapabilitiesPage, elementAddressAssignmentPage, transportGeometryPage } from '../smc.js';
import type { ChangerPersonality } from '../media-changer.js';

const addressMap = {
  mediumTransport: { first: 0x0001, count: 1 },
  storage: { first: 0x0400, count: 1600 },
  importExport: { first: 0x0c00, count: 1600 },
  dataTransfer: { first: 0x0101, count: 10 },
};

export const ibm03584L32: ChangerPersonality = {
  changerType: 'IBM-03584L32-0402',
  identity: { vendor: 'IBM', product: '03584L32', revision: '0402' },
  addressMap,
  modePages: [elementAddressAssignmentPage(addressMap), transportGeometryPage(1), deviceCapabilitiesPage()],
};
