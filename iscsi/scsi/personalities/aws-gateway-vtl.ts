// The changer "provided with the gateway" (MediumChangerType "AWS-Gateway-VTL"). AWS publishes
// neither its INQUIRY strings nor its element addresses; these are our choice. Storage elements
// are 1–1600 and import/export elements 1601–3200, so ordinal slot numbers equal element
// addresses — what AWS's Bacula guide implies (`mtx-changer transfer 1601 1` imports from the
// first I/E slot into storage slot 1). Transport 10000, drives 10001–10010.

import { deviceCapabilitiesPage, elementAddressAssignmentPage, transportGeometryPage } from '../smc.js';
import type { ChangerPersonality } from '../media-changer.js';

const addressMap = {
  mediumTransport: { first: 10000, count: 1 },
  storage: { first: 1, count: 1600 },
  importExport: { first: 1601, count: 1600 },
  dataTransfer: { first: 10001, count: 10 },
};

export const awsGatewayVtl: ChangerPersonality = {
  changerType: 'AWS-Gateway-VTL',
  identity: { vendor: 'AWS', product: 'Gateway-VTL', revision: '0100' },
  addressMap,
  modePages: [elementAddressAssignmentPage(addressMap), transportGeometryPage(1), deviceCapabilitiesPage()],
};
