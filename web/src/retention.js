// Retention of stored memories: dynamic slots older than maxAgeDays go, and
// over the byte budget the highest-entropy dynamic slots go first. Shots and
// corrections are labelled by a user and are never dropped here. When they
// alone exceed the budget, the caller gets overBudget and warns.

/** Milliseconds in a day. */
export const DAY_MS = 24 * 60 * 60 * 1000;

// Per-slot bytes of a snapshot besides the vector: source, reserved, view,
// entropy, timestamp, sequence and int8 scale (see src/snapshot.h).
const SLOT_HEADER_BYTES = 32;
const ELEMENT_BYTES = Object.freeze({ float32: 4, float16: 2, int8: 1 });

/** Bytes one slot adds to a snapshot. */
export function snapshotSlotBytes(dim, precision) {
  return SLOT_HEADER_BYTES + dim * ELEMENT_BYTES[precision];
}

/**
 * Drops the dynamic slots stored more than `maxAgeDays` before `nowMs`.
 *
 * @param {import('./core.js').DualMemory} memory
 * @param {number|null} maxAgeDays null keeps every slot
 * @param {number} [nowMs=Date.now()]
 * @returns {number} slots dropped
 */
export function dropExpired(memory, maxAgeDays, nowMs = Date.now()) {
  if (maxAgeDays === null || maxAgeDays === undefined) return 0;
  return memory.dropDynamicOlderThan(nowMs - maxAgeDays * DAY_MS);
}

/**
 * Serializes the memory, dropping the highest-entropy dynamic slots until
 * the snapshot fits `budget` bytes or no dynamic slot is left.
 *
 * @param {import('./core.js').DualMemory} memory
 * @param {() => Uint8Array} serialize returns the snapshot of `memory`
 * @param {number} budget bytes; Infinity for no limit
 * @returns {{bytes: Uint8Array, dropped: number, overBudget: boolean}}
 *   overBudget is true when shots and corrections alone exceed the budget
 */
export function serializeWithinBudget(memory, serialize, budget) {
  let bytes = serialize();
  if (bytes.length <= budget) return { bytes, dropped: 0, overBudget: false };

  // Every dynamic slot costs the same number of bytes, so one drop suffices.
  const perSlot = snapshotSlotBytes(memory.dim, memory.precision);
  const dropped = memory.dropHighestEntropyDynamic(Math.ceil((bytes.length - budget) / perSlot));
  if (dropped > 0) bytes = serialize();
  return { bytes, dropped, overBudget: bytes.length > budget };
}
