import { RsmError } from "../errors.ts";
import { stripAnsi } from "./ansi.ts";
import type { PtyStream } from "./pty.ts";
import { ByteRing } from "./ring.ts";
import { completeLength, nextBoundary } from "../output/mod.ts";
import { randomHex } from "../random.ts";
import {
  fromLatin1,
  hookable,
  latin1,
  type Mark,
  MarkFilter,
  PROBE_LINE,
  probeAnswer,
  promptLooking,
  setupAnswer,
  setupLine,
  type ShellFlavour,
  stripMarks,
} from "./integration.ts";
import { type RunHost, runMarked, type RunOptions, type RunResult } from "./run.ts";
import { Screen, type ScreenSnapshot } from "./screen.ts";
import { ShellWatch } from "./watch.ts";

/** Longest `read` wait (README "Shells"). */
export const MAX_READ_TIMEOUT_MS = 300_000;

/** Options for {@link Shell.read}. */
export interface ReadOptions {
  /** How long to wait for output when none is buffered (default 1000, max 300000). */
  timeoutMs?: number | undefined;
  /** Wait until the unread text matches this regex (or the timeout passes). */
  until?: RegExp | undefined;
  /** Wait until output has been quiet this long (or the timeout passes). */
  idleMs?: number | undefined;
  /**
   * Only output pushed after this ring position (`ring.pushedTotal`) counts for `until` and
   * for the default wait (write-and-wait: the output that followed the write).
   */
  since?: number | undefined;
  /**
   * Without `until`/`idleMs`: return once the shell's prompt came back (an end mark beyond
   * this count) or output has been quiet `quietMs` after some arrived.
   */
  settle?: { ends: number; quietMs: number } | undefined;
  /** Remove escape sequences and `\r` from the returned text. */
  stripAnsi?: boolean | undefined;
  /**
   * Return at most this many bytes as JSON-escaped text (escape codes count 6); the rest
   * stays for the next read (`more: true`).
   */
  maxBytes?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** What {@link Shell.read} returns (README "Shells", plus `until_matched` when `until` was given). */
export interface ReadResult {
  data: string;
  eof: boolean;
  dropped_bytes: number;
  /** Present (true) when more output is buffered than this read returned. */
  more?: boolean | undefined;
  until_matched?: boolean | undefined;
}

/** What rsm knows of the shell's state (shell integration; see integration.ts). */
export interface ShellState {
  /** Exit status of the last command (typed or run), where the shell reports it. */
  last_exit_code?: number | undefined;
  /** Working directory, where the shell reports it (OSC 7). */
  cwd?: string | undefined;
  /** A command is in progress (known where the shell has rsm's prompt hooks). */
  running?: boolean | undefined;
  /** The cursor sits after a prompt-looking text (`password:`, `[y/N]`, `>>> `, `(END)`). */
  waiting_for_input: boolean;
}

/** Options for {@link Shell}. */
export interface ShellOptions {
  id: string;
  rows: number;
  cols: number;
  /** Ring capacity (default 1 MiB). */
  capacity?: number | undefined;
  /** ISO time the shell was opened (kept across daemon restarts for durable shells). */
  openedAt?: string | undefined;
  /** Called when the shell's process ends (after the state changed). */
  onExit?: ((shell: Shell) => void) | undefined;
  /**
   * Hold all output back until {@link Shell.integrate} runs (it types its probe and hooks
   * where nothing of them shows).
   */
  integrate?: boolean | undefined;
  /** A durable shell re-attached by a new daemon: its hooks are already installed. */
  restored?: {
    flavour?: ShellFlavour | undefined;
    hookToken?: string | undefined;
    ansiC?: boolean | undefined;
  };
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
  /** The shell's kind, once probed (see {@link integrate}). */
  flavour?: ShellFlavour | undefined;
  /** The token the prompt hooks put in their marks (set when hooks are installed). */
  hookToken?: string | undefined;
  /** The shell understands `$'…'` quoting. */
  ansiC = false;
  /** Exit status of the last command, where known. */
  lastExitCode?: number | undefined;
  /** Working directory, where the shell reports it. */
  cwd?: string | undefined;
  /** A command is in progress (undefined: unknown). */
  running?: boolean | undefined;
  #filter = new MarkFilter();
  #held: Uint8Array[] | undefined;
  #ends = 0;
  #skipExit = false;
  #alternate = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #stream: PtyStream | undefined;
  #gen = 0;
  #lock: Promise<void> = Promise.resolve();
  #waiters = new Set<() => void>();
  #capture?: ((chunk: Uint8Array) => void) | undefined;
  #lastDataAt = 0;
  #onExit?: ((shell: Shell) => void) | undefined;
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
    if (options.restored) {
      this.flavour = options.restored.flavour;
      this.hookToken = options.restored.hookToken;
      this.ansiC = options.restored.ansiC ?? false;
    }
    if (options.integrate) {
      const held: Uint8Array[] = [];
      this.#held = held;
      this.#capture = (chunk) => held.push(chunk);
    }
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
      if (chunk.includes(0x1b)) this.#trackAlternate(chunk);
      const { bytes, marks } = this.#filter.push(chunk);
      for (const m of marks) this.#mark(m);
      if (this.#capture) this.#capture(chunk);
      else {
        this.#show(chunk);
        this.ring.push(bytes);
      }
      if (this.#filter.holding) this.#flushSoon();
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
      if (this.hookToken && (bytes.includes(13) || bytes.includes(10))) this.running = true;
      return bytes.length;
    });
  }

  /**
   * Writes, then reads the output that followed in the same call: until `until` matches it,
   * output has been quiet `idleMs`, or (neither given) the prompt came back or output
   * paused for 500 ms; at most `timeoutMs`.
   */
  async writeAndRead(
    data: string,
    options: ReadOptions = {},
  ): Promise<{ bytes_written: number } & ReadResult & ShellState> {
    const since = this.ring.pushedTotal;
    const ends = this.#ends;
    const n = await this.write(data, options.signal);
    const settle = options.until || options.idleMs !== undefined
      ? undefined
      : { ends, quietMs: 500 };
    const r = await this.read({ ...options, since, settle });
    return { bytes_written: n, ...r };
  }

  /**
   * Probes the shell and installs the prompt hooks (see integration.ts) in two typed lines
   * whose echo is never shown: everything the shell printed until the hooks answered is
   * dropped (a fresh shell then shows just its prompt). A shell that does not answer keeps
   * all its output. Needs the `integrate` option.
   */
  integrate(timeoutMs = 10_000): Promise<void> {
    return this.#exclusive(async () => {
      const parts = this.#held ?? [];
      this.#held = undefined;
      let latin = parts.map(latin1).join("");
      this.#capture = (chunk) => {
        parts.push(chunk);
        latin += latin1(chunk);
      };
      let from = 0;
      try {
        await this.#live().write(new TextEncoder().encode(PROBE_LINE));
        const deadline = Date.now() + timeoutMs;
        await this.#waitFor(() => probeAnswer(latin) !== undefined, deadline);
        const probe = probeAnswer(latin);
        if (!probe) return;
        from = probe.end;
        this.flavour = probe.flavour;
        this.ansiC = probe.flavour !== "posix" && probe.flavour !== "fish";
        if (!hookable(probe.flavour)) return;
        const token = randomHex(8);
        this.hookToken = token;
        this.#skipExit = true;
        await this.#live().write(new TextEncoder().encode(setupLine(probe.flavour, token)));
        await this.#waitFor(() => setupAnswer(latin) !== undefined, Date.now() + timeoutMs);
        const setup = setupAnswer(latin);
        if (!setup) {
          this.hookToken = undefined;
          return;
        }
        from = setup.end;
        this.ansiC = setup.ansiC;
        this.running = false;
      } catch {
        // the stream died or refused the write: show what there is
      } finally {
        this.#capture = undefined;
        const all = fromLatin1(latin);
        const rest = all.subarray(from);
        this.#show(rest);
        this.ring.push(stripMarkBytes(rest));
        this.#notify();
      }
    });
  }

  /** The shell's state as rsm knows it. */
  state(): ShellState {
    const out: ShellState = { waiting_for_input: false };
    if (this.lastExitCode !== undefined) out.last_exit_code = this.lastExitCode;
    if (this.cwd !== undefined) out.cwd = this.cwd;
    if (this.running !== undefined && !this.closed) out.running = this.running;
    out.waiting_for_input = !this.closed && this.running !== false &&
      promptLooking(this.screen.cursorPrefix());
    return out;
  }

  /** A chunk ended in what might start a mark: if nothing follows soon, it was output. */
  #flushSoon(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      if (!this.#filter.holding || this.#disposed) return;
      const held = this.#filter.flush();
      if (!this.#capture) {
        this.ring.push(held);
        this.#notify();
      }
    }, 50);
  }

  /** What a person sees: to the headless screen and to console viewers. */
  #show(bytes: Uint8Array): void {
    this.screen.write(bytes);
    this.watch.output(bytes);
  }

  /**
   * Follows the switches to and from the alternate screen (vim, less, top) in the raw output,
   * so `run` can refuse at once, without waiting for the emulator to parse.
   */
  #trackAlternate(chunk: Uint8Array): void {
    // deno-lint-ignore no-control-regex
    const re = /\x1b\[\?(?:1049|1047|47)([hl])/g;
    const text = latin1(chunk);
    for (let m = re.exec(text); m; m = re.exec(text)) this.#alternate = m[1] === "h";
  }

  /** Updates the state from one mark of the shell's prompt hooks. */
  #mark(m: Mark): void {
    if (m.kind === "cwd") {
      this.cwd = m.path;
      return;
    }
    if (m.token !== this.hookToken) return;
    if (m.kind === "start") {
      this.running = true;
      return;
    }
    this.#ends++;
    this.running = false;
    if (this.#skipExit) this.#skipExit = false;
    else this.lastExitCode = m.code;
  }

  /** Runs one command in the live shell between invisible marks (see {@link runMarked}). */
  run(command: string, options: RunOptions = {}): Promise<RunResult> {
    return this.#exclusive(async () => {
      await this.#ready(options.signal);
      if (this.#alternate) {
        throw new RsmError(
          "SHELL_BUSY",
          `Cannot run in shell ${this.id}: a full-screen program (vim, less, top…) is in the ` +
            `foreground; look with screen, quit it with write (e.g. "q" or ":q!\\r"), then run`,
        );
      }
      if (this.hookToken && this.running) {
        await this.screen.flush();
        const line = this.screen.cursorPrefix().trimEnd();
        if (promptLooking(line)) {
          throw new RsmError(
            "SHELL_BUSY",
            `Cannot run in shell ${this.id}: a program in the foreground is waiting for input ` +
              `(${JSON.stringify(line.slice(-60))}), so the command would be typed into it; ` +
              `answer it with write (wait_until helps), or end it (e.g. write "\\u0003" or ` +
              `"exit()\\n"), then run`,
          );
        }
      }
      if (this.flavour === "fish") {
        throw new RsmError(
          "SHELL_NOT_POSIX",
          `Cannot run in shell ${this.id}: it is fish, not a POSIX shell; type the command ` +
            `with write and wait_until (e.g. data "ls\\n", wait_idle_ms 500), or open the ` +
            `shell with command "bash" or "sh"`,
        );
      }
      if (this.hookToken) this.running = true;
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
      if (r.exit_code !== null && !r.timed_out) {
        this.lastExitCode = r.exit_code;
      }
      return r;
    });
  }

  /** Reads buffered output, waiting as asked (see {@link ReadOptions}), and the state. */
  async read(options: ReadOptions = {}): Promise<ReadResult & ShellState> {
    const timeoutMs = Math.min(Math.max(options.timeoutMs ?? 1000, 0), MAX_READ_TIMEOUT_MS);
    const deadline = Date.now() + timeoutMs;
    const started = Date.now();
    const since = options.since;
    const fresh = () => since === undefined ? this.ring.size : this.ring.pushedTotal - since;
    const text = () => {
      const all = this.ring.peekBytes();
      const from = nextBoundary(all, Math.max(0, all.length - fresh()));
      const end = this.closed ? all.length : completeLength(all);
      return stripAnsi(new TextDecoder().decode(all.subarray(from, Math.max(from, end))));
    };
    let matched: boolean | undefined;
    if (options.until) {
      const re = options.until;
      matched = await this.#waitFor(() => re.test(text()), deadline, options.signal);
    } else if (options.settle && options.idleMs === undefined) {
      const { ends, quietMs } = options.settle;
      const quietAt = () =>
        Math.max(this.#lastDataAt, started) + (this.#ends > ends ? 15 : quietMs);
      await this.#waitFor(
        () => (this.#ends > ends || fresh() > 0) && Date.now() >= quietAt(),
        deadline,
        options.signal,
        quietAt,
      );
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
    await this.screen.flush();
    return { ...result, ...this.state() };
  }

  /** Resizes the terminal (1..1000 each way). */
  async resize(rows: number, cols: number): Promise<void> {
    for (const [n, what] of [[rows, "rows"], [cols, "cols"]] as const) {
      if (!Number.isInteger(n) || n < 1 || n > 1000) {
        throw new RsmError(
          "BAD_ARGUMENT",
          `Cannot resize shell ${this.id}: ${what} must be 1..1000`,
        );
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
    clearTimeout(this.#flushTimer);
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
        "CLOSED",
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
        this.ring.push(stripMarkBytes(bytes));
        this.#notify();
      },
      show: (bytes: Uint8Array) => this.#show(bytes),
      ...(this.flavour === "zsh" && this.hookToken
        ? { restoreStatus: "__rsm_r" }
        : { hookToken: this.hookToken }),
      ansiC: this.ansiC,
      ended: () => (this.closed ? { code: this.exitCode } : undefined),
      onChange: (fn: () => void) => {
        this.#waiters.add(fn);
        return () => this.#waiters.delete(fn);
      },
    };
  }
}

/** Removes rsm's marks from a byte slice (a whole one: nothing is held back). */
function stripMarkBytes(bytes: Uint8Array): Uint8Array {
  return bytes.indexOf(0x1b) < 0 ? bytes : fromLatin1(stripMarks(latin1(bytes)));
}
