// Encryption at rest of stored memories with Web Crypto: AES-GCM with a
// random 12-byte IV per record. The model fingerprint and namespace are the
// additional data, so a record moved to another namespace or model fails to
// decrypt instead of loading.

import { DualmemError } from './errors.js';

/** PBKDF2-HMAC-SHA-256 iterations for passphrases, OWASP's 2023 figure. */
export const PBKDF2_ITERATIONS = 600000;

export const IV_BYTES = 12;
export const SALT_BYTES = 16;

function subtle() {
  const api = globalThis.crypto?.subtle;
  if (!api) {
    throw new DualmemError('storage_unavailable',
      'memory.encryption needs Web Crypto (crypto.subtle), which exists only in secure contexts (https or localhost)');
  }
  return api;
}

/** Returns `count` random bytes. */
export function randomBytes(count) {
  return globalThis.crypto.getRandomValues(new Uint8Array(count));
}

/** Additional data that binds a ciphertext to its model and namespace. */
export function additionalData(fingerprint, namespace) {
  return new TextEncoder().encode(`dualmem-memory\n${fingerprint}\n${namespace}`);
}

/**
 * Imports raw key bytes as a non-extractable AES-GCM key.
 *
 * @param {Uint8Array|ArrayBuffer} bytes 16 or 32 bytes
 * @returns {Promise<CryptoKey>}
 * @throws {DualmemError} `bad_option` for another length
 */
export async function importRawKey(bytes) {
  const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  if (!(view instanceof Uint8Array) || (view.length !== 16 && view.length !== 32)) {
    throw new DualmemError('bad_option',
      `memory.encryption.key has ${view?.length ?? 'no'} bytes, expected 16 or 32 (AES-128 or AES-256) or a CryptoKey`,
      { option: 'memory.encryption.key' });
  }
  return subtle().importKey('raw', view, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

/**
 * Derives a non-extractable AES-GCM key from a passphrase with PBKDF2.
 *
 * @param {string} passphrase
 * @param {Uint8Array} salt SALT_BYTES random bytes, stored beside the data
 * @param {number} [iterations=PBKDF2_ITERATIONS]
 * @returns {Promise<CryptoKey>}
 */
export async function deriveKey(passphrase, salt, iterations = PBKDF2_ITERATIONS) {
  const api = subtle();
  const material = await api.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return api.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, material,
    { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** Generates a non-extractable AES-GCM key, for keys kept in IndexedDB. */
export async function generateDeviceKey() {
  return subtle().generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/**
 * Encrypts bytes.
 *
 * @returns {Promise<{iv: Uint8Array, ciphertext: ArrayBuffer}>}
 */
export async function encryptBytes(key, plaintext, aad) {
  const iv = randomBytes(IV_BYTES);
  const ciphertext = await subtle().encrypt({ name: 'AES-GCM', iv, additionalData: aad }, key, plaintext);
  return { iv, ciphertext };
}

/**
 * Decrypts bytes from encryptBytes.
 *
 * @returns {Promise<Uint8Array>}
 * @throws {DualmemError} `memory_key_invalid` when the key, the data or the
 *   additional data differ from those at encryption
 */
export async function decryptBytes(key, iv, ciphertext, aad) {
  try {
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv, additionalData: aad }, key, ciphertext));
  } catch (error) {
    if (error instanceof DualmemError) throw error;
    throw new DualmemError('memory_key_invalid',
      'the stored memory could not be decrypted: the key or passphrase differs from the one it was ' +
      'encrypted with, or the record was altered', { cause: error });
  }
}
