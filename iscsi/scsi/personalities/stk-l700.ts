// StorageTek L700 as AWS Tape Gateway emulates it (MediumChangerType "STK-L700"; DescribeVTLDevices
// reports vendor "STK", product "L700"). Element addresses follow the L700e/L180 SCSI reference
// layout (as mhVTL's STK L-series model does): transport 1, drives from 500, storage from 1000.
// A real L700 has at most 20 CAP cells at 10–29; the gateway reports 1,600 storage + 1,600
// import/export elements (AWS: "3200 storage+I/E slots"), so the CAP range moves to 3000–4599.

import { deviceCapabilitiesPage, elementAddressAssignmentPage, transportGeometryPage } from '../smc.js';
import type { ChangerPersonality } from '../media-changer.js';

const addressMap = {
  mediumTransport: { first: 1, count: 1 },
  storage: { first: 1000, count: 1600 },
  importExport: { first: 3000, count: 1600 },
  dataTransfer: { first: 500, count: 10 },
};

export const stkL700: ChangerPersonality = {
  changerType: 'STK-L700',
  identity: { vendor: 'STK', product: 'L700', revision: '0107' },
  addressMap,
  modePages: [elementAddressAssignmentPage(addressMap), transportGeometryPage(1), deviceCapabilitiesPage()],
};
