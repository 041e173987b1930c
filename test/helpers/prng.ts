// mulberry32: a small, fast, seedable PRNG, so a fuzz failure replays from its seed.
export interface Rng {
  u32(): number;
  int(n: number): number;
  chance(p: number): boolean;
  bytes(n: number): Buffer;
}

export function prng(seed: number): Rng {
  let state = seed >>> 0;
  const u32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (x ^ (x >>> 14)) >>> 0;
  };
  const int = (n: number): number => u32() % n;
  return {
    u32,
    int,
    chance: (p) => u32() / 0x1_0000_0000 < p,
    bytes: (n) => {
      const out = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) out[i] = u32() & 0xff;
      return out;
    },
  };
}
