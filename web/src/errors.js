/**
 * The one error type of dualmem. `code` is stable and meant for programs;
 * `message` states what was wrong, the value seen and what was expected.
 *
 * Codes coming from the C++ core: `invalid_argument`, `not_found`,
 * `parse_error`, `limit_exceeded`, `unsupported`, `internal`.
 */
export class DualmemError extends Error {
  /**
   * @param {string} code stable error code
   * @param {string} message human-readable reason
   * @param {object} [options] `cause` and any extra fields to attach
   */
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DualmemError';
    this.code = code;
    for (const [key, value] of Object.entries(options)) {
      if (key !== 'cause') this[key] = value;
    }
  }
}
