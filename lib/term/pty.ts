/**
 * The byte stream a shell runs over. SSH (ssh2 channels, tmux control mode) and Docker
 * (exec with a TTY) each provide one; the shell engine ({@link Shell}) does the rest.
 */

/**
 * A live terminal: bytes in, bytes out, a size, an end.
 *
 * Contract for implementers:
 * - `onData`/`onExit` may be called after data or the exit already happened: what came
 *   before the first `onData` callback is registered is buffered and delivered to it, and
 *   `onExit` registered after the end fires at once. {@link PtyEvents} does this for you.
 * - `write` resolves once the bytes were handed to the transport (respecting back-pressure);
 *   the engine serialises writes, so an implementation never sees two at once.
 * - `onExit` fires exactly once, with the remote exit code, or `null` when it is unknown
 *   (killed by a signal, connection lost).
 * - `close()` ends the remote process (not just the local end) and is idempotent; it makes
 *   `onExit` fire if it has not yet.
 */
export interface PtyStream {
  write(data: string | Uint8Array): Promise<void>;
  resize(rows: number, cols: number): void | Promise<void>;
  close(): void;
  onData(cb: (chunk: Uint8Array) => void): void;
  onExit(cb: (code: number | null) => void): void;
}

/** What a backend needs to open a terminal. Backend-specific fields travel in `extra`. */
export interface PtyOpenOptions {
  rows: number;
  cols: number;
  /** `TERM` value, default `xterm-256color`. */
  term?: string | undefined;
  /** Extra environment for the remote process. */
  env?: Record<string, string> | undefined;
  signal?: AbortSignal | undefined;
}

/** Opens one terminal; SSH and Docker each supply one. */
export type PtyOpener = (options: PtyOpenOptions) => Promise<PtyStream>;

/**
 * Buffers data and the exit until listeners are attached, so a backend can emit from the
 * moment its channel opens. Backends call `data()` and `exit()`; they expose `onData`/`onExit`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PtyEvents } from "./pty.ts";
 *
 * // a backend feeds its channel's events in (channel.on("data", …) / on("close", …)) ...
 * const ev = new PtyEvents();
 * ev.data(new TextEncoder().encode("$ ")); // the channel spoke before anyone listened
 * ev.exit(0);
 * // ... and the engine attaches later: nothing is lost
 * const seen: string[] = [];
 * ev.onData((chunk) => seen.push(new TextDecoder().decode(chunk)));
 * ev.onExit((code) => seen.push(`exit ${code}`));
 * assert.deepEqual(seen, ["$ ", "exit 0"]);
 * ```
 */
export class PtyEvents {
  #pending: Uint8Array[] = [];
  #dataCb?: ((chunk: Uint8Array) => void) | undefined;
  #exitCbs: ((code: number | null) => void)[] = [];
  #exited = false;
  #code: number | null = null;

  /** Whether `exit()` was called. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Delivers (or buffers) one chunk of output. Ignored after `exit()`. */
  data(chunk: Uint8Array): void {
    if (this.#exited || chunk.length === 0) return;
    if (this.#dataCb) this.#dataCb(chunk);
    else this.#pending.push(chunk);
  }

  /** Records the end (first call wins) and tells the listeners. */
  exit(code: number | null): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#code = code;
    for (const cb of this.#exitCbs.splice(0)) cb(code);
  }

  /** Registers the data listener and flushes what was buffered. */
  onData(cb: (chunk: Uint8Array) => void): void {
    this.#dataCb = cb;
    for (const c of this.#pending.splice(0)) cb(c);
  }

  /** Registers an exit listener (fires at once if the end already happened). */
  onExit(cb: (code: number | null) => void): void {
    if (this.#exited) cb(this.#code);
    else this.#exitCbs.push(cb);
  }
}
