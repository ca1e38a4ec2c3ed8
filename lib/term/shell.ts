import { RsmError } from "../errors.ts";
import { stripAnsi } from "./ansi.ts";
import type { PtyStream } from "./pty.ts";
import { ByteRing } from "./ring.ts";
import { type RunHost, runMarked, type RunOptions, type RunResult } from "./run.ts";
import { Screen, type ScreenSnapshot } from "./screen.ts";
import { ShellWatch } from "./watch.ts";

/** Longest `read` wait (SPEC §4.3). */
export const MAX_READ_TIMEOUT_MS = 300_000;

/** Options for {@link Shell.read}. */
export interface ReadOptions {
  /** How long to wait for output when none is buffered (default 1000, max 300000). */
  timeoutMs?: number;
  /** Wait until the unread text matches this regex (or the timeout passes). */
  until?: RegExp;
  /** Wait until output has been quiet this long (or the timeout passes). */
  idleMs?: number;
  /** Remove escape sequences and `\r` from the returned text. */
  stripAnsi?: boolean;
  /**
   * Return at most this many bytes as JSON-escaped text (escape codes count 6); the rest
   * stays for the next read (`more: true`).
   */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** What {@link Shell.read} returns (SPEC §4.3, plus `until_matched` when `until` was given). */
export interface ReadResult {
  data: string;
  eof: boolean;
  dropped_bytes: number;
  /** Present (true) when more output is buffered than this read returned. */
  more?: boolean;
  until_matched?: boolean;
}

/** Options for {@link Shell}. */
export interface ShellOptions {
  id: string;
  rows: number;
  cols: number;
  /** Ring capacity (default 1 MiB). */
  capacity?: number;
  /** ISO time the shell was opened (kept across daemon restarts for durable shells). */
  openedAt?: string;
  /** Called when the shell's process ends (after the state changed). */
  onExit?: (shell: Shell) => void;
}

/**
 * One live terminal over a {@link PtyStream}: a 1 MiB output ring, serialised writes,
 * reads that wait (timeout, `until`, `idle_ms`), marker-delimited `run`, and a headless
 * screen. The stream can be swapped (`attach`) when a durable shell is re-attached.
 */
export class Shell {
  readonly id: string;
  readonly openedAt: string;
  readonly ring: ByteRing;
  readonly screen: Screen;
  /** Viewers and take-over from the console (see {@link ShellWatch}). */
  readonly watch: ShellWatch;
  rows: number;
  cols: number;
  /** The process ended (or the shell was closed). */
  closed = false;
  /** Exit code once `closed` (null when unknown: killed, connection lost). */
  exitCode: number | null = null;
  /** The connection under a plain shell was lost; buffered output stays readable. */
  lost = false;
  #stream?: PtyStream;
  #gen = 0;
  #lock: Promise<void> = Promise.resolve();
  #waiters = new Set<() => void>();
  #capture?: (chunk: Uint8Array) => void;
  #lastDataAt = 0;
  #onExit?: (shell: Shell) => void;
  #disposed = false;

  constructor(stream: PtyStream | undefined, options: ShellOptions) {
    this.id = options.id;
    this.openedAt = options.openedAt ?? new Date().toISOString();
    this.rows = options.rows;
    this.cols = options.cols;
    this.ring = new ByteRing(options.capacity);
    this.screen = new Screen(options.rows, options.cols);
    this.watch = new ShellWatch(options.id);
    this.#onExit = options.onExit;
    if (stream) this.attach(stream);
  }

  /** Whether a stream is attached (false while a durable shell waits to re-attach). */
  get attached(): boolean {
    return this.#stream !== undefined;
  }

  /** The attached stream, if any. */
  get stream(): PtyStream | undefined {
    return this.#stream;
  }

  /**
   * Attaches a (new) stream. The old one, if any, is forgotten without being closed.
   * `onEnd` decides what an end of this stream means; by default the process exited.
   */
  attach(stream: PtyStream, onEnd?: (code: number | null) => void): void {
    const gen = ++this.#gen;
    this.#stream = stream;
    this.closed = false;
    this.lost = false;
    stream.onData((chunk) => {
      if (gen !== this.#gen) return;
      this.#lastDataAt = Date.now();
      this.screen.write(chunk);
      this.watch.output(chunk);
      if (this.#capture) this.#capture(chunk);
      else this.ring.push(chunk);
      this.#notify();
    });
    stream.onExit((code) => {
      if (gen !== this.#gen) return;
      this.#stream = undefined;
      if (onEnd) onEnd(code);
      else this.markExited(code);
    });
    this.#notify();
  }

  /** Forgets the stream without ending the remote process (durable shells on shutdown). */
  detach(): PtyStream | undefined {
    const s = this.#stream;
    this.#gen++;
    this.#stream = undefined;
    this.#notify();
    return s;
  }

  /** Records the end of the process. */
  markExited(code: number | null): void {
    if (this.closed) return;
    this.closed = true;
    this.exitCode = code;
    this.#stream = undefined;
    this.#gen++;
    this.#notify();
    this.#onExit?.(this);
  }

  /** Marks the shell lost (its connection went away); output stays readable. */
  markLost(): void {
    const s = this.#stream;
    this.lost = true;
    this.markExited(null);
    try {
      s?.close();
    } catch { /* already gone */ }
  }

  /** Writes raw bytes (serialised with other writes and runs); returns the byte count. */
  write(data: string | Uint8Array, signal?: AbortSignal): Promise<number> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    return this.#exclusive(async () => {
      signal?.throwIfAborted();
      await (await this.#ready(signal)).write(bytes);
      return bytes.length;
    });
  }

  /** Runs one command in the live shell between unique markers (see {@link runMarked}). */
  run(command: string, options: RunOptions = {}): Promise<RunResult> {
    return this.#exclusive(async () => {
      await this.#ready(options.signal);
      if (await this.screen.alternate()) {
        throw new RsmError(
          "SHELL_BUSY",
          `Cannot run in shell ${this.id}: a full-screen program (vim, less, top…) is in the ` +
            `foreground; look with screen, quit it with write (e.g. "q" or ":q!\\r"), then run`,
        );
      }
      const r = await runMarked(this.#runHost(), command, options);
      if (r.exit_code === null && !r.timed_out && this.closed) {
        // Not a result: the shell died under the command (connection lost, killed).
        throw new RsmError(
          "SHELL_ENDED",
          `Cannot finish the run in shell ${this.id}: the shell ended during the command ` +
            `(connection lost or process killed), so it may not have completed and its exit ` +
            `code is unknown (output so far: ${JSON.stringify(r.output.slice(-300))}); ` +
            `open a new shell and retry`,
        );
      }
      return r;
    });
  }

  /** Reads buffered output, waiting as asked (see {@link ReadOptions}). */
  async read(options: ReadOptions = {}): Promise<ReadResult> {
    const timeoutMs = Math.min(Math.max(options.timeoutMs ?? 1000, 0), MAX_READ_TIMEOUT_MS);
    const deadline = Date.now() + timeoutMs;
    const started = Date.now();
    const text = () => {
      const t = this.ring.peekText(this.closed);
      return options.stripAnsi ? stripAnsi(t) : t;
    };
    let matched: boolean | undefined;
    if (options.until) {
      const re = options.until;
      matched = await this.#waitFor(() => re.test(text()), deadline, options.signal);
    } else if (options.idleMs !== undefined) {
      const idle = options.idleMs;
      await this.#waitFor(
        () => {
          const quietSince = Math.max(this.#lastDataAt, started);
          return Date.now() - quietSince >= idle;
        },
        deadline,
        options.signal,
        () => Math.max(this.#lastDataAt, started) + idle,
      );
    } else if (this.ring.completeLength(this.closed) === 0) {
      const got = await this.#waitFor(
        () => this.ring.completeLength(this.closed) > 0,
        deadline,
        options.signal,
      );
      // let a burst that is still arriving land in the same read
      if (got && !this.closed) {
        await this.#waitFor(
          () => Date.now() - this.#lastDataAt >= 15,
          Date.now() + 200,
          options.signal,
          () => this.#lastDataAt + 15,
        );
      }
    }
    const { text: raw, dropped } = this.ring.take(this.closed, options.maxBytes);
    const data = options.stripAnsi ? stripAnsi(raw) : raw;
    const result: ReadResult = {
      data,
      eof: this.closed && this.ring.size === 0,
      dropped_bytes: dropped,
    };
    if (this.ring.completeLength(this.closed) > 0) result.more = true;
    if (matched !== undefined) result.until_matched = matched;
    return result;
  }

  /** Resizes the terminal (1..1000 each way). */
  async resize(rows: number, cols: number): Promise<void> {
    for (const [n, what] of [[rows, "rows"], [cols, "cols"]] as const) {
      if (!Number.isInteger(n) || n < 1 || n > 1000) {
        throw new RsmError("BAD_SIZE", `Cannot resize shell ${this.id}: ${what} must be 1..1000`);
      }
    }
    await (await this.#ready()).resize(rows, cols);
    this.rows = rows;
    this.cols = cols;
    this.screen.resize(rows, cols);
  }

  /** The screen as a person sees it. */
  snapshot(): Promise<ScreenSnapshot> {
    return this.screen.snapshot();
  }

  /** Ends the remote process and frees the emulator. Idempotent. */
  close(): void {
    const s = this.#stream;
    if (!this.closed) this.markExited(null);
    try {
      s?.close();
    } catch { /* already gone */ }
    this.dispose();
  }

  /** Frees local resources only. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.screen.close();
    this.#notify();
  }

  /** Wakes waiters (new data, exit, attach). */
  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** The stream, waiting up to 20 s while a durable shell re-attaches. */
  async #ready(signal?: AbortSignal): Promise<PtyStream> {
    if (!this.closed && !this.#stream) {
      await this.#waitFor(() => this.closed || !!this.#stream, Date.now() + 20_000, signal);
    }
    return this.#live();
  }

  #live(): PtyStream {
    if (this.closed) {
      throw new RsmError(
        "SHELL_CLOSED",
        `Cannot use shell ${this.id}: its process has ${
          this.lost ? "been lost with its connection" : "exited"
        }` +
          `; read what is left, then close it and open a new one`,
      );
    }
    if (!this.#stream) {
      throw new RsmError(
        "SHELL_DETACHED",
        `Cannot use shell ${this.id}: it is re-attaching to its tmux session; retry in a moment`,
      );
    }
    return this.#stream;
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(() => {}, () => {});
    return run;
  }

  /**
   * Resolves true once `done()` holds, false at the deadline or abort. Rechecks on every
   * notification and at `nextCheck()` (for time-based conditions).
   */
  #waitFor(
    done: () => boolean,
    deadline: number,
    signal?: AbortSignal,
    nextCheck?: () => number,
  ): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (v: boolean) => {
        if (timer !== undefined) clearTimeout(timer);
        this.#waiters.delete(check);
        signal?.removeEventListener("abort", onAbort);
        resolve(v);
      };
      const onAbort = () => finish(false);
      const arm = () => {
        if (timer !== undefined) clearTimeout(timer);
        const at = Math.min(deadline, nextCheck ? nextCheck() : deadline);
        timer = setTimeout(check, Math.max(0, at - Date.now()));
      };
      const check = () => {
        if (done()) return finish(true);
        if (Date.now() >= deadline || this.#disposed || (this.closed && !nextCheck)) {
          return finish(done());
        }
        arm();
      };
      if (signal?.aborted) return finish(false);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(check);
      arm();
    });
  }

  /** What `runMarked` needs from the shell. */
  #runHost(): RunHost {
    return {
      write: (data: string) => this.#live().write(new TextEncoder().encode(data)),
      capture: (fn: ((chunk: Uint8Array) => void) | undefined) => {
        this.#capture = fn;
      },
      giveBack: (bytes: Uint8Array) => {
        this.ring.push(bytes);
        this.#notify();
      },
      ended: () => (this.closed ? { code: this.exitCode } : undefined),
      onChange: (fn: () => void) => {
        this.#waiters.add(fn);
        return () => this.#waiters.delete(fn);
      },
    };
  }
}
