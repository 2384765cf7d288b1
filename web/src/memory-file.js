// The export file of classifier.memory.export(): a small header and a
// snapshot, optionally encrypted with a passphrase or key.
//
// Format version 1, integers little-endian:
//   0   8   magic "DMNMEMEX"
//   8   4   format version (1)
//   12  4   header length H in bytes
//   16  H   header, UTF-8 JSON: { fingerprint, createdAt, payloadBytes,
//           encryption: null | { kind: "passphrase" | "key", iv, salt?,
//           iterations? } } with iv and salt as hex
//   16+H    payload: the snapshot, or its AES-GCM ciphertext whose
//           additional data is the fingerprint (so a file imports into any
//           namespace of the same model)

import { DualmemError } from './errors.js';
import { additionalData, decryptBytes, deriveKey, encryptBytes, importRawKey, PBKDF2_ITERATIONS, randomBytes, SALT_BYTES } from './memory-crypto.js';

export const MEMORY_FILE_VERSION = 1;
const MAGIC = 'DMNMEMEX';
const PREFIX_BYTES = 16;
// Headers are a few hundred bytes; anything far larger is not this format.
const MAX_HEADER_BYTES = 64 * 1024;
const EXPORT_NAMESPACE = 'export';
// A file could name any PBKDF2 cost; above this an import would stall the page.
const MAX_ITERATIONS = 10 * PBKDF2_ITERATIONS;

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function fromHex(hex, field) {
  if (typeof hex !== 'string' || !/^([0-9a-f]{2})+$/.test(hex)) invalid(`header field ${field} is not hex`);
  return Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
}

function invalid(reason) {
  throw new DualmemError('memory_file_invalid', `not a dualmem memory file: ${reason}`);
}

async function exportKey(encrypt, salt) {
  if (typeof encrypt.passphrase === 'string' && encrypt.passphrase.length > 0) {
    const iterations = encrypt.iterations ?? PBKDF2_ITERATIONS;
    return { key: await deriveKey(encrypt.passphrase, salt, iterations), kind: 'passphrase', iterations };
  }
  if (encrypt.key !== undefined) {
    const key = encrypt.key instanceof Uint8Array || encrypt.key instanceof ArrayBuffer
      ? await importRawKey(encrypt.key) : encrypt.key;
    return { key, kind: 'key' };
  }
  throw new DualmemError('invalid_argument', 'encrypt is missing a passphrase (non-empty string) or key (CryptoKey or 32 bytes)');
}

/**
 * Builds an export file.
 *
 * @param {Uint8Array} snapshot
 * @param {string} fingerprint 64 hex digits
 * @param {{passphrase?: string, key?: CryptoKey|Uint8Array}|undefined} encrypt
 * @returns {Promise<Uint8Array>}
 */
export async function writeMemoryFile(snapshot, fingerprint, encrypt) {
  let payload = snapshot;
  let encryption = null;
  if (encrypt) {
    const salt = randomBytes(SALT_BYTES);
    const { key, kind, iterations } = await exportKey(encrypt, salt);
    const { iv, ciphertext } = await encryptBytes(key, snapshot, additionalData(fingerprint, EXPORT_NAMESPACE));
    payload = new Uint8Array(ciphertext);
    encryption = kind === 'passphrase' ? { kind, iv: toHex(iv), salt: toHex(salt), iterations } : { kind, iv: toHex(iv) };
  }
  const header = new TextEncoder().encode(JSON.stringify({
    fingerprint, createdAt: new Date().toISOString(), payloadBytes: payload.length, encryption,
  }));
  const file = new Uint8Array(PREFIX_BYTES + header.length + payload.length);
  const view = new DataView(file.buffer);
  file.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, MEMORY_FILE_VERSION, true);
  view.setUint32(12, header.length, true);
  file.set(header, PREFIX_BYTES);
  file.set(payload, PREFIX_BYTES + header.length);
  return file;
}

function parseHeader(bytes) {
  if (bytes.length < PREFIX_BYTES) invalid(`${bytes.length} bytes, shorter than the ${PREFIX_BYTES}-byte prefix`);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) invalid(`magic is ${JSON.stringify(magic)}, expected "${MAGIC}"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version > MEMORY_FILE_VERSION || version === 0) {
    throw new DualmemError('unsupported',
      `memory file version ${version} is not readable by this dualmem, which reads version ${MEMORY_FILE_VERSION}; update dualmem`);
  }
  const headerBytes = view.getUint32(12, true);
  if (headerBytes > MAX_HEADER_BYTES || PREFIX_BYTES + headerBytes > bytes.length) {
    invalid(`header length ${headerBytes} does not fit the file of ${bytes.length} bytes`);
  }
  let header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)));
  } catch (error) {
    invalid(`header is not UTF-8 JSON (${error.message})`);
  }
  if (header === null || typeof header !== 'object') invalid('header is not a JSON object');
  if (typeof header.fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(header.fingerprint)) {
    invalid('header field fingerprint is not 64 lowercase hex digits');
  }
  const payload = bytes.subarray(PREFIX_BYTES + headerBytes);
  if (header.payloadBytes !== payload.length) {
    invalid(`header says ${header.payloadBytes} payload bytes, the file has ${payload.length}; it may be truncated`);
  }
  return { header, payload };
}

/**
 * Reads an export file and returns its snapshot bytes.
 *
 * @param {Uint8Array} bytes
 * @param {string} fingerprint the current model's; another model's file is rejected
 * @param {{passphrase?: string, key?: CryptoKey|Uint8Array}|undefined} decrypt
 * @returns {Promise<Uint8Array>} the snapshot, still to be validated by the core
 * @throws {DualmemError} `memory_file_invalid`, `unsupported`,
 *   `memory_model_mismatch`, `memory_key_required`, `memory_key_invalid`
 */
export async function readMemoryFile(bytes, fingerprint, decrypt) {
  const { header, payload } = parseHeader(bytes);
  if (header.fingerprint !== fingerprint) {
    throw new DualmemError('memory_model_mismatch',
      `the memory file was written for model ${header.fingerprint.slice(0, 16)}…, this classifier runs ` +
      `${fingerprint.slice(0, 16)}…; import it into a classifier of the same model`,
      { stored: header.fingerprint, expected: fingerprint });
  }
  const encryption = header.encryption;
  if (encryption === null || encryption === undefined) return payload;
  if (!decrypt) {
    throw new DualmemError('memory_key_required',
      `the memory file is encrypted with a ${encryption.kind}; pass { ${encryption.kind} } to import`);
  }
  const iv = fromHex(encryption.iv, 'encryption.iv');
  let key;
  if (encryption.kind === 'passphrase') {
    if (typeof decrypt.passphrase !== 'string') {
      throw new DualmemError('memory_key_required', 'the memory file is encrypted with a passphrase; pass { passphrase }');
    }
    const iterations = encryption.iterations;
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
      invalid(`encryption.iterations is ${JSON.stringify(iterations)}, expected an integer from 1 to ${MAX_ITERATIONS}`);
    }
    key = await deriveKey(decrypt.passphrase, fromHex(encryption.salt, 'encryption.salt'), iterations);
  } else if (encryption.kind === 'key') {
    if (decrypt.key === undefined) {
      throw new DualmemError('memory_key_required', 'the memory file is encrypted with a key; pass { key }');
    }
    key = (await exportKey({ key: decrypt.key }, null)).key;
  } else {
    invalid(`encryption kind ${JSON.stringify(encryption.kind)} is unknown`);
  }
  return decryptBytes(key, iv, payload, additionalData(fingerprint, EXPORT_NAMESPACE));
}
