import { stripAnsi } from "./ansi.ts";
import { latin1, stripMarks } from "./integration.ts";
import { randomHex } from "../random.ts";
import { concatBytes } from "../output/mod.ts";

/** Default `run` timeout (see the README's "Shells" section). */
export const DEFAULT_RUN_TIMEOUT_MS = 30_000;

/** Options for {@link runMarked}. */
export interface RunOptions {
  /** Give up (Ctrl-C) after this long; default 30000. */
  timeoutMs?: number | undefined;
  /** Remove escape sequences from the output. */
  stripAnsi?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Sees the command's output as it arrives (raw terminal bytes; the result is the clean text). */
  onOutput?: ((chunk: Uint8Array) => void) | undefined;
}

/** What a `run` returns. */
export interface RunResult {
  output: string;
  exit_code: number | null;
  timed_out: boolean;
}

/** What {@link runMarked} needs from a shell (a `Shell` supplies it). */
export interface RunHost {
  /** Types into the terminal. */
  write(data: string): Promise<void>;
  /**
   * Routes every raw output chunk to `fn` until called with undefined; while set, nothing
   * reaches the ring or the screen except what `giveBack`/`show` put there.
   */
  capture(fn: ((chunk: Uint8Array) => void) | undefined): void;
  /** Puts bytes that belong to later reads into the ring (rsm's marks are removed). */
  giveBack(bytes: Uint8Array): void;
  /** Feeds bytes to the headless screen. */
  show(bytes: Uint8Array): void;
  /** Set once the process ended. */
  ended(): { code: number | null } | undefined;
  /** Calls `fn` on every data chunk or state change; returns the unsubscribe. */
  onChange(fn: () => void): () => void;
  /**
   * The token of the shell's prompt hook when it reports exit codes (`OSC 133;D`), so the
   * command line needs no end mark of its own.
   */
  hookToken?: string | undefined;
  /** The shell understands `$'…'` quoting (bash, zsh, ksh, busybox ash). */
  ansiC?: boolean | undefined;
  /**
   * The line prints its own end mark, then calls this function (defined by the hooks) with
   * the status, so the prompt hook still reports the command's (zsh prints its
   * partial-line marker before its hook runs, so its hook cannot end the output).
   */
  restoreStatus?: string | undefined;
}

/**
 * Runs one command in a live POSIX shell (bash, dash, busybox sh, zsh…) and returns exactly
 * its output and exit code, in one write and one wait.
 *
 * How: one line is typed: `printf` of an invisible start mark (`OSC 133;C` with a random
 * nonce), then `eval` of the command in quotes. Where the shell's prompt hook reports the
 * exit status (see integration.ts), its `OSC 133;D` mark ends the output; elsewhere the line
 * prints its own end mark with `$?`. No `stty`, no subshell: the shell forks nothing of
 * rsm's. The typed line's echo is never shown: while the run lasts, the shell's output goes
 * here; the screen gets the command as a person would have typed it, then the output as it
 * arrives, and the ring what follows the end mark (the next prompt). The marks are escape
 * sequences a terminal ignores, so even the remote terminal (a tmux pane) shows none.
 *
 * On timeout or abort: Ctrl-C; the partial output is returned with `timed_out: true`, and
 * what followed (`^C`, the prompt) goes to the ring.
 */
export async function runMarked(
  host: RunHost,
  command: string,
  options: RunOptions = {},
): Promise<RunResult> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS);
  const run = new MarkedRun(host, command, options);
  try {
    await host.write(commandLines(command, run.nonce, host));
    const end = await waitMatch(host, () => run.findEnd(), deadline, options.signal);
    if (end !== undefined) return run.finished(end);
    return await run.cut();
  } finally {
    host.capture(undefined);
  }
}

/** One run's view of the shell's output: start mark, output, end mark (see {@link runMarked}). */
class MarkedRun {
  readonly nonce = randomHex(8);
  readonly #startMark = `\x1b]133;C;rsm=${this.nonce}\x07`;
  readonly #endRe: RegExp;
  readonly #parts: Uint8Array[] = [];
  /** The output so far, one char per byte: mark positions are byte offsets. */
  #latin = "";
  /** Where the output starts (after the start mark); -1 until it is seen. */
  #startAt = -1;
  /** Where the next search for the end mark may begin. */
  #searched = 0;
  #code = -1;
  #endLen = 0;
  #joined: Uint8Array | undefined;
  #joinedParts = 0;
  /** The command as a person would have typed it, for the screen. */
  readonly #echo: Uint8Array;

  constructor(readonly host: RunHost, command: string, readonly options: RunOptions) {
    this.#endRe = new RegExp(`\\x1b\\]133;D;(\\d+);rsm=${host.hookToken ?? this.nonce}\\x07`, "g");
    this.#echo = new TextEncoder().encode(command.replace(/\r?\n/g, "\r\n") + "\r\n");
    host.capture((chunk) => this.#onChunk(chunk));
  }

  /** The offset of the end mark, or -1 while it has not come. */
  findEnd(): number {
    if (this.#startAt < 0) return -1;
    this.#endRe.lastIndex = this.#searched;
    const hit = this.#endRe.exec(this.#latin);
    if (!hit) {
      this.#searched = Math.max(this.#startAt, this.#latin.length - 96);
      return -1;
    }
    this.#code = Number(hit[1]);
    this.#endLen = hit[0].length;
    return hit.index;
  }

  /** The end mark came at `end`: the output before it; what follows goes to the ring. */
  finished(end: number): RunResult {
    const all = this.#bytes();
    this.host.capture(undefined);
    this.host.giveBack(all.subarray(end + this.#endLen));
    return {
      output: this.#clean(all.subarray(this.#startAt, end)),
      exit_code: this.#code,
      timed_out: false,
    };
  }

  /** The process ended, the deadline passed, or the caller gave up: partial output. */
  async cut(): Promise<RunResult> {
    const { host } = this;
    const ended = host.ended();
    const all = this.#bytes();
    const partial = this.#startAt >= 0 ? all.subarray(this.#startAt) : new Uint8Array();
    if (ended) {
      host.capture(undefined);
      return { output: this.#clean(partial), exit_code: ended.code, timed_out: false };
    }
    const cut = all.length;
    await interrupt(host, () => {
      if (!host.hookToken) return -1;
      this.#endRe.lastIndex = cut;
      return this.#endRe.test(this.#latin) ? 1 : -1;
    });
    const after = this.#bytes();
    host.capture(undefined);
    if (this.#startAt < 0) host.show(after.subarray(cut));
    host.giveBack(after.subarray(cut));
    return { output: this.#clean(partial), exit_code: null, timed_out: true };
  }

  #bytes(): Uint8Array {
    if (!this.#joined || this.#joinedParts !== this.#parts.length) {
      this.#joined = concatBytes(this.#parts);
      this.#joinedParts = this.#parts.length;
    }
    return this.#joined;
  }

  #onChunk(chunk: Uint8Array): void {
    const { host, options } = this;
    const before = this.#latin.length;
    this.#parts.push(chunk);
    this.#latin += latin1(chunk);
    if (this.#startAt >= 0) {
      options.onOutput?.(chunk);
      return host.show(chunk);
    }
    const mark = this.#startMark;
    const i = this.#latin.indexOf(mark, Math.max(0, before - mark.length));
    if (i < 0) return;
    this.#startAt = this.#searched = i + mark.length;
    // what came before the typed line's echo (a late prompt) is the shell's own
    const typed = this.#latin.search(/ (?:printf '\\033\]133;C;rsm=|__rsm_c=)/);
    if (typed > 0) {
      host.show(this.#bytes().subarray(0, typed));
      host.giveBack(this.#bytes().subarray(0, typed));
    }
    host.show(this.#echo);
    host.show(this.#bytes().subarray(this.#startAt));
    options.onOutput?.(this.#bytes().subarray(this.#startAt));
  }

  #clean(raw: Uint8Array): string {
    let out = stripMarks(new TextDecoder().decode(raw)).replace(/\r\n/g, "\n");
    if (this.options.stripAnsi) out = stripAnsi(out);
    return out;
  }
}

/**
 * Ctrl-C, then wait for the prompt: the hook's end mark where there is one, else a moment
 * of quiet.
 */
async function interrupt(host: RunHost, prompted: () => number): Promise<void> {
  try {
    await host.write("\x03");
  } catch {
    return; // the stream died: nothing to recover
  }
  if (host.hookToken) await waitMatch(host, prompted, Date.now() + 2000);
  let last = Date.now();
  const off = host.onChange(() => last = Date.now());
  try {
    const until = Date.now() + 2000;
    const quiet = host.hookToken ? 30 : 200; // with a hook, only the prompt's text is still due
    while (Date.now() < until && Date.now() - last < quiet && !host.ended()) {
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    off();
  }
}

/** Longest typed line (bytes): canonical-mode ttys cap a line at 4095, busybox's editor lower. */
const MAX_LINE = 800;

/** The line(s) that run `command` between an invisible start mark and the end mark. */
export function commandLines(
  command: string,
  nonce: string,
  shell: {
    hookToken?: string | undefined;
    ansiC?: boolean | undefined;
    restoreStatus?: string | undefined;
  } = {},
): string {
  const start = ` printf '\\033]133;C;rsm=${nonce}\\007'; eval `;
  const restore = shell.restoreStatus ? `; ${shell.restoreStatus} $__rsm_e` : "";
  const end = shell.hookToken
    ? ""
    : `; __rsm_e=$?; printf '\\033]133;D;%d;rsm=${nonce}\\007' $__rsm_e${restore}`;
  const quoted = quote(command, shell.ansiC ?? false);
  const longest = Math.max(...quoted.split("\n").map((l) => new TextEncoder().encode(l).length));
  if (longest + start.length + end.length <= MAX_LINE) return `${start}${quoted}${end}\n`;
  const lines: string[] = [];
  const chars = [...command];
  for (let i = 0; i < chars.length; i += 150) {
    const part = quote(chars.slice(i, i + 150).join(""), shell.ansiC ?? false);
    lines.push(i === 0 ? ` __rsm_c=${part}` : ` __rsm_c="$__rsm_c"${part}`);
  }
  lines.push(`${start}"$__rsm_c"${end}`);
  return lines.join("\n") + "\n";
}

/**
 * Quotes a command for the shell without anything a line editor would act on: single quotes
 * when it has no control characters but newlines; otherwise `$'…'` with octal escapes, or
 * (shells without `$'…'`) `printf %b` of an escaped copy.
 */
export function quote(text: string, ansiC: boolean): string {
  // deno-lint-ignore no-control-regex
  if (!/[\x00-\x09\x0b-\x1f\x7f]/.test(text)) return `'${text.replace(/'/g, `'\\''`)}'`;
  if (ansiC) {
    let out = "";
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      if (c >= 0x80 || /[A-Za-z0-9 ,._+:@%/=-]/.test(ch)) out += ch;
      else out += "\\" + c.toString(8).padStart(3, "0");
    }
    return `$'${out}'`;
  }
  return `"$(printf '%b' '${escapeForPrintfB(text)}')"`;
}

/**
 * Escapes text for a single-quoted `printf '%b'` argument: every ASCII byte other than
 * letters, digits and a few safe signs becomes `\0ooo`; non-ASCII passes through.
 */
export function escapeForPrintfB(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x80 || /[A-Za-z0-9 ,._+:@%/=-]/.test(ch)) out += ch;
    else out += "\\0" + c.toString(8).padStart(3, "0");
  }
  return out;
}

/**
 * Waits until `probe()` returns a position >= 0 (resolves it), or the deadline, the end of
 * the process or the abort (resolves undefined).
 */
function waitMatch(
  host: RunHost,
  probe: () => number,
  deadline: number,
  signal?: AbortSignal,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: number | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      off();
      signal?.removeEventListener("abort", onAbort);
      resolve(v);
    };
    const check = () => {
      const p = probe();
      if (p >= 0) return finish(p);
      if (host.ended()) finish(undefined);
    };
    const onAbort = () => finish(undefined);
    const off = host.onChange(check);
    const timer = setTimeout(() => finish(undefined), Math.max(0, deadline - Date.now()));
    if (signal?.aborted) return finish(undefined);
    signal?.addEventListener("abort", onAbort, { once: true });
    check();
  });
}
