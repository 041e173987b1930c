// UpdateVTLDeviceType: the medium changer type chosen through the API. AWS swaps the emulation
// while the gateway runs; shelfgate stores the choice and applies it on the next start (a changer
// type change renumbers every element, which initiators logged in to the changer would not expect).

import { z } from 'zod';
import type { ChangerType } from '../../iscsi/scsi/media-changer.js';
import type { Database } from '../store/database.js';
import { getSetting, putSetting } from '../store/settings-catalog.js';
import { CHANGER_PERSONALITIES } from './vtl-targets.js';

const CHANGER_TYPE_SETTING = 'vtl-changer-type';

/** The changer type stored by UpdateVTLDeviceType, if any (it wins over the configuration). */
export async function storedChangerType(db: Database): Promise<ChangerType | undefined> {
  const value = await getSetting(db, CHANGER_TYPE_SETTING, z.string().refine((v) => Object.hasOwn(CHANGER_PERSONALITIES, v), 'not a changer type'));
  return value as ChangerType | undefined;
}

export async function storeChangerType(db: Database, changerType: ChangerType): Promise<void> {
  await putSetting(db, CHANGER_TYPE_SETTING, changerType);
}
