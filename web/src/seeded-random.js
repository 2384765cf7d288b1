// The one seeded generator of the library, its tools and benchmarks, so that
// crops, shot draws and stream orders repeat exactly for a given seed.

/**
 * Returns a generator of uniform numbers in [0, 1) from a 32-bit seed
 * (mulberry32: small, fast, and enough for shuffles and crop positions).
 *
 * @param {number} seed taken modulo 2^32
 * @returns {() => number}
 */
export function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}
