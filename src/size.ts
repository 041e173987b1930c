// Byte sizes as people write them in configuration: "1GiB", "500 GiB", "16TiB", "1073741824".
// Binary units only (AWS Storage Gateway sizes volumes in GiB); "GB" is accepted as GiB would be a
// silent 7% surprise, so decimal units are rejected with a hint instead.

const UNITS: Record<string, number> = {
  b: 1,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  pib: 2 ** 50,
};

export const GiB = 2 ** 30;
export const TiB = 2 ** 40;

/** Parses a size; throws an Error whose message says what is accepted. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new Error(`must be a whole number of bytes (got ${input})`);
    return input;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (match === null) {
    throw new Error(`must be a size like "100GiB", "2TiB" or a number of bytes (got ${JSON.stringify(input)})`);
  }
  const unit = match[2].toLowerCase();
  const factor = unit === '' ? 1 : UNITS[unit];
  if (factor === undefined) {
    const hint = /^[kmgtp]b?$/.test(unit) ? `; use binary units like "${match[1]}${unit[0].toUpperCase()}iB"` : '';
    throw new Error(`unknown unit "${match[2]}" in ${JSON.stringify(input)}${hint}`);
  }
  const bytes = Number(match[1]) * factor;
  if (!Number.isSafeInteger(bytes)) {
    throw new Error(`must be a whole number of bytes (got ${JSON.stringify(input)})`);
  }
  return bytes;
}

/** The largest binary unit that divides `bytes` exactly: 1073741824 -> "1GiB", 1536 -> "1536B"... */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['TiB', TiB],
    ['GiB', GiB],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
