/**
 * A domain error with a stable `code` the tool layer and tests can match on.
 * The message says what failed, why, and what to try; it never holds a secret.
 *
 * @example
 * ```ts
 * throw new RsmError("NOT_FOUND", "Cannot find session box: no such session; see ssh_list");
 * ```
 */
export class RsmError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RsmError";
    this.code = code;
  }
}

/** The message of anything thrown, without a stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
