// Tombstones (docs/object-layout.md "Garbage collection"): a deleted manifest (a snapshot's, or a
// deleted volume's head.json) is moved to `deleted/<its key>` with user metadata `deleted-at`
// (ISO 8601). Garbage collection still counts the chunks a tombstone names until the grace period
// after its deletion has passed, then removes it: a gateway that read the manifest just before it
// was deleted (to restore a volume from it) has stored its own reference by then.

export const TOMBSTONE_PREFIX = 'deleted/';
export const DELETED_AT_METADATA_KEY = 'deleted-at';

export function tombstoneKey(key: string): string {
  return TOMBSTONE_PREFIX + key;
}
