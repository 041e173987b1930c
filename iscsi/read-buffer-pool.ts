// Buffers for Data-In (RFC 7143 11.7). A backend takes one for a READ and fills it; the connection
// gives it back once the socket has taken the Data-In PDUs that are slices of it. Large reads then
// reuse memory instead of making the garbage collector sweep a fresh megabyte per command.
// A buffer that is never given back (a READ that failed, data kept by its caller) is simply
// collected as usual; only buffers taken here are ever reused.

/** Smaller buffers come from Node's own pool (Buffer.allocUnsafe). */
const MIN_POOLED_BYTES = 64 * 1024;
/** Free buffers kept for reuse, in bytes. */
const MAX_FREE_BYTES = 64 * 1024 * 1024;

const taken = new WeakSet<Buffer>();
const free = new Map<number, Buffer[]>();
let freeBytes = 0;

/** A buffer of exactly `lengthBytes` with undefined contents. */
export function takeReadBuffer(lengthBytes: number): Buffer {
  if (lengthBytes < MIN_POOLED_BYTES) return Buffer.allocUnsafe(lengthBytes);
  const reused = free.get(lengthBytes)?.pop();
  if (reused !== undefined) freeBytes -= lengthBytes;
  const buffer = reused ?? Buffer.allocUnsafeSlow(lengthBytes);
  taken.add(buffer);
  return buffer;
}

/** Hands a buffer from takeReadBuffer back once nothing refers to it any more (other buffers are
 *  ignored). */
export function giveBackReadBuffer(buffer: Buffer): void {
  if (!taken.delete(buffer) || freeBytes + buffer.length > MAX_FREE_BYTES) return;
  let list = free.get(buffer.length);
  if (list === undefined) free.set(buffer.length, (list = []));
  list.push(buffer);
  freeBytes += buffer.length;
}
