// The tape status machine: AWS's transitions, and everything else refused in one place.

import t from 'tap';
import { TapeStatus, transition } from '../../src/gateway/tape-status.js';

t.test('TapeStatus.Lifecycle', async (t) => {
  let s: TapeStatus = TapeStatus.CREATING;
  const steps: string[] = [s];
  for (const event of ['created', 'exported', 'upload-completed', 'archive-completed', 'retrieve-requested', 'retrieval-completed', 'exported'] as const) {
    s = transition(s, event);
    steps.push(s);
  }
  t.same(steps, ['CREATING', 'AVAILABLE', 'IN TRANSIT TO VTS', 'ARCHIVING', 'ARCHIVED', 'RETRIEVING', 'RETRIEVED', 'ARCHIVED']);
});

t.test('TapeStatus.CancelArchival', async (t) => {
  t.equal(transition(TapeStatus.IN_TRANSIT_TO_VTS, 'archival-cancelled'), TapeStatus.AVAILABLE);
  t.equal(transition(TapeStatus.ARCHIVING, 'archival-cancelled'), TapeStatus.AVAILABLE, 'issue 10: also while the upload runs');
  t.equal(transition(TapeStatus.ARCHIVING, 'archive-failed'), TapeStatus.AVAILABLE);
  t.equal(transition(TapeStatus.RETRIEVING, 'retrieval-failed'), TapeStatus.ARCHIVED);
  t.throws(() => transition(TapeStatus.ARCHIVED, 'archival-cancelled'), { code: 'GW_TAPE_INVALID_STATE' });
});

t.test('TapeStatus.Delete', async (t) => {
  t.equal(transition(transition(TapeStatus.AVAILABLE, 'delete-requested'), 'deleted'), TapeStatus.DELETED);
  t.equal(transition(TapeStatus.ARCHIVED, 'delete-requested'), TapeStatus.DELETING);
  t.throws(() => transition(TapeStatus.IN_TRANSIT_TO_VTS, 'delete-requested'), { code: 'GW_TAPE_INVALID_STATE' });
  t.throws(() => transition(TapeStatus.RETRIEVED, 'delete-requested'), { code: 'GW_TAPE_INVALID_STATE' }, 'a retrieved tape is ejected first');
  t.throws(() => transition(TapeStatus.DELETED, 'created'), { code: 'GW_TAPE_INVALID_STATE' });
});
