// Deterministic pseudo-random bytes (xorshift32, 4 bytes per step) so failures reproduce: the same
// (length, seed) always gives the same buffer, different seeds give different contents.
export function pattern(lengthBytes: number, seed: number): Buffer {
  const buf = Buffer.alloc(lengthBytes);
  let x = seed | 1;
  for (let i = 0; i < lengthBytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
  return buf;
}
