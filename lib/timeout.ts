/** Options for {@linkcode waitAtMost}. */
export interface WaitAtMostOptions {
  /** Stops waiting early (resolving `false`) when aborted. */
  signal?: AbortSignal | undefined;
}

/**
 * Waits for `promise` for at most `ms` milliseconds. Resolves `true` when the promise fulfilled
 * in time, `false` when the time ran out or `options.signal` was aborted first; a rejection of
 * `promise` in time rejects. The timer and the abort listener are removed as soon as the race
 * settles, so nothing outlives it (a leaked timer keeps the process, and whatever its closure
 * holds, alive for the whole `ms`). The promise itself is not cancelled: stop the work first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { waitAtMost } from "./timeout.ts";
 *
 * const quick = new Promise((resolve) => setTimeout(resolve, 10));
 * assert.equal(await waitAtMost(quick, 60_000), true); // returns after ~10 ms
 * assert.equal(await waitAtMost(new Promise(() => {}), 10), false);
 * ```
 */
export function waitAtMost(
  promise: Promise<unknown>,
  ms: number,
  options: WaitAtMostOptions = {},
): Promise<boolean> {
  const { signal } = options;
  if (signal?.aborted) return Promise.resolve(false);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort = () => {};
  const expired = new Promise<false>((resolve) => {
    onAbort = () => resolve(false);
    timer = setTimeout(onAbort, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([promise.then(() => true as const), expired]).finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  });
}
