/** Thrown for bad command-line usage (exit 2). */
export class UsageError extends Error {}
