import { stripAnsi } from "./ansi.ts";

/** Default `run` timeout (SPEC §4.3). */
export const DEFAULT_RUN_TIMEOUT_MS = 30_000;

/** Options for {@link runMarked}. */
export interface RunOptions {
  /** Give up (Ctrl-C) after this long; default 30000. */
  timeoutMs?: number;
  /** Remove escape sequences from the output. */
  stripAnsi?: boolean;
  signal?: AbortSignal;
}

/** What a `run` returns (SPEC §4.3). */
export interface RunResult {
  output: string;
  exit_code: number | null;
  timed_out: boolean;
}

/** What {@link runMarked} needs from a shell (a `Shell` supplies it). */
export interface RunHost {
  /** Types into the terminal. */
  write(data: string): Promise<void>;
  /** Routes every output chunk to `fn` (instead of the ring) until called with undefined. */
  capture(fn: ((chunk: Uint8Array) => void) | undefined): void;
  /** Puts bytes that belong to later reads into the ring. */
  giveBack(bytes: Uint8Array): void;
  /** Set once the process ended. */
  ended(): { code: number | null } | undefined;
  /** Calls `fn` on every data chunk or state change; returns the unsubscribe. */
  onChange(fn: () => void): () => void;
}

/**
 * Runs one command in a live POSIX shell (bash, dash, busybox sh, zsh…) and returns exactly
 * its output and exit code.
 *
 * How: (1) save the tty mode and turn echo off, then wait until a ready marker shows that
 * took effect, so nothing typed afterwards is echoed (kernel echo and readline/line-edit
 * echo both honour it). (2) Type the command octal-escaped into a variable (lines under
 * 1000 bytes, so canonical-mode line limits never bite) and one line that prints a start
 * marker, `eval`s the command, restores the tty mode, then prints an end marker with the
 * command's `$?` (so when the end marker is seen, echo is already back on).
 * Markers carry a random nonce and are typed as two `printf` arguments, so even an echoed
 * line could not contain them. Everything before the start marker (echo, prompts) is
 * dropped; what follows the end marker (the next prompt) goes back to the ring.
 *
 * On timeout or abort: Ctrl-C, then a recovery line restores the tty mode; the partial
 * output is returned with `timed_out: true`.
 */
export async function runMarked(
  host: RunHost,
  command: string,
  options: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
  const nonce = Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const m = `__rsm${nonce}`;
  const parts: Uint8Array[] = [];
  let latin = ""; // one char per byte: marker positions are byte offsets
  host.capture((chunk) => {
    parts.push(chunk);
    latin += latin1(chunk);
  });
  const bytes = () => concat(parts);
  const deadline = Date.now() + timeoutMs;
  const signal = options.signal;
  const finishOutput = (raw: Uint8Array) => {
    let out = new TextDecoder().decode(raw).replace(/\r\n/g, "\n");
    if (options.stripAnsi) out = stripAnsi(out);
    return out;
  };
  try {
    await host.write(
      ` __rsm_t=$(stty -g 2>/dev/null); stty -echo 2>/dev/null; printf '%s%s\\n' ${m} :r\n`,
    );
    const ready = await waitMatch(host, () => find(latin, `${m}:r`, 0), deadline, signal);
    let startAt = -1;
    if (ready) {
      await host.write(commandLines(command, m));
      const start = await waitMatch(
        host,
        () => {
          const re = new RegExp(`${m}:s\\r*\\n`, "g");
          const hit = re.exec(latin);
          return hit ? hit.index + hit[0].length : -1;
        },
        deadline,
        signal,
      );
      if (start !== undefined) {
        startAt = start;
        const endRe = new RegExp(`${m}:e:(\\d+)\\r*\\n`, "g");
        let code = -1;
        const end = await waitMatch(
          host,
          () => {
            endRe.lastIndex = startAt;
            const hit = endRe.exec(latin);
            if (!hit) return -1;
            code = Number(hit[1]);
            return hit.index;
          },
          deadline,
          signal,
        );
        if (end !== undefined) {
          const all = bytes();
          const endLine = new RegExp(`${m}:e:\\d+\\r*\\n`, "y");
          endLine.lastIndex = end;
          endLine.exec(latin);
          host.capture(undefined);
          host.giveBack(all.subarray(endLine.lastIndex));
          return {
            output: finishOutput(all.subarray(startAt, end)),
            exit_code: code,
            timed_out: false,
          };
        }
      }
    }
    // the process ended, the deadline passed, or the caller gave up
    const ended = host.ended();
    const all = bytes();
    const partial = startAt >= 0 ? all.subarray(startAt) : new Uint8Array();
    if (ended) {
      host.capture(undefined);
      return { output: finishOutput(partial), exit_code: ended.code, timed_out: false };
    }
    const cut = all.length;
    const at = await recover(host, m, () => find(latin, `${m}:x`, cut));
    const after = bytes();
    let rest = at === undefined ? cut : at;
    if (at !== undefined) {
      while (rest < after.length && (after[rest] === 13 || after[rest] === 10)) {
        rest++;
      }
    }
    host.capture(undefined);
    host.giveBack(after.subarray(rest));
    return { output: finishOutput(partial), exit_code: null, timed_out: true };
  } finally {
    host.capture(undefined);
  }
}

/** Ctrl-C, then restore the tty mode; wait briefly for the recovery marker. */
async function recover(
  host: RunHost,
  m: string,
  seen: () => number,
): Promise<number | undefined> {
  try {
    await host.write("\x03");
    await new Promise((r) => setTimeout(r, 150));
    if (host.ended()) return undefined;
    await host.write(` stty "$__rsm_t" 2>/dev/null; printf '%s%s\\n' ${m} :x\n`);
    return await waitMatch(host, seen, Date.now() + 3000);
  } catch {
    return undefined; // the stream died: nothing to recover
  }
}

/** The lines that load the escaped command and run it between markers. */
function commandLines(command: string, m: string): string {
  const esc = escapeForPrintfB(command);
  const lines: string[] = [];
  for (let i = 0; i < esc.length || i === 0; i += 900) {
    const part = esc.slice(i, i + 900);
    lines.push(i === 0 ? ` __rsm_c='${part}'` : ` __rsm_c=$__rsm_c'${part}'`);
  }
  lines.push(
    ` printf '%s%s\\n' ${m} :s; eval "$(printf '%b' "$__rsm_c")"; __rsm_e=$?; ` +
      `stty "$__rsm_t" 2>/dev/null; printf '%s%s:%d\\n' ${m} :e "$__rsm_e"; unset __rsm_c __rsm_e`,
  );
  return lines.join("\n") + "\n";
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

function find(text: string, what: string, from: number): number {
  const i = text.indexOf(what, from);
  return i < 0 ? -1 : i + what.length;
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
