// Content digests for cache integrity checks and model fingerprints.

/**
 * Returns the SHA-256 of `bytes` as 64 lowercase hex digits.
 *
 * @param {Uint8Array|ArrayBuffer} bytes
 * @returns {Promise<string>}
 * @throws {Error} when Web Crypto is missing, as in a page that is not a
 *   secure context
 */
export async function sha256Hex(bytes) {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Returns a digest of `bytes` that names their content: SHA-256 where Web
 * Crypto exists, otherwise 64-bit FNV-1a prefixed with "fnv-" (enough to tell
 * models apart, not to resist tampering).
 *
 * @param {Uint8Array} bytes
 * @returns {Promise<string>}
 */
export async function contentDigest(bytes) {
  if (globalThis.crypto?.subtle) return sha256Hex(bytes);
  // FNV-1a 64 in two 32-bit halves, because BigInt arithmetic per byte is slow.
  let high = 0xcbf29ce4;
  let low = 0x84222325;
  for (let i = 0; i < bytes.length; i += 1) {
    low ^= bytes[i];
    // Multiply by the FNV prime 2^40 + 0x1b3, modulo 2^64.
    const lowProduct = low * 0x1b3;
    const carry = Math.floor(lowProduct / 0x100000000);
    high = (high * 0x1b3 + (low << 8) + carry) >>> 0;
    low = lowProduct >>> 0;
  }
  return `fnv-${high.toString(16).padStart(8, '0')}${low.toString(16).padStart(8, '0')}`;
}

/**
 * Returns 64 hex digits that name a model for its stored memories: a digest
 * over the digests of `parts` (model files, tokenizer, preprocessing
 * config). Without Web Crypto the digits are four salted FNV-1a digests,
 * which tell models apart but do not resist tampering.
 *
 * @param {(Uint8Array|string)[]} parts
 * @returns {Promise<string>}
 */
export async function modelFingerprint(parts) {
  const encoder = new TextEncoder();
  const digests = [];
  for (const part of parts) digests.push(await contentDigest(typeof part === 'string' ? encoder.encode(part) : part));
  return modelFingerprintOfDigests(digests);
}

/**
 * Returns what modelFingerprint returns for parts whose contentDigest values
 * are already known, without reading the parts again.
 *
 * @param {string[]} digests contentDigest of each part, in modelFingerprint's order
 * @returns {Promise<string>}
 */
export async function modelFingerprintOfDigests(digests) {
  const encoder = new TextEncoder();
  const joined = digests.join('\n');
  if (globalThis.crypto?.subtle) return sha256Hex(encoder.encode(joined));
  const quarters = [];
  for (let salt = 0; salt < 4; salt += 1) quarters.push((await contentDigest(encoder.encode(`${salt}\n${joined}`))).slice(4));
  return quarters.join('');
}
