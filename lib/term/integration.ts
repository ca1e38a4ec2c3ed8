/**
 * Shell integration through invisible escape sequences, as terminals do it: OSC 133 marks a
 * command's start (`C`) and its end with the exit status (`D;<code>`), OSC 7 reports the
 * working directory. rsm installs small prompt hooks (bash `PS0`/`PROMPT_COMMAND`, zsh
 * `preexec`/`precmd`, `PS1` in busybox ash and dash) once, typed where nothing of it shows,
 * so even commands a person types report their exit code and cwd. The marks never reach
 * `read` data: {@link MarkFilter} takes them out of the stream.
 */
import { Buffer } from "node:buffer";

/** What kind of shell answered the probe. */
export type ShellFlavour = "bash" | "zsh" | "ksh" | "fish" | "posix";

/** Which shells rsm probes at open: a program named like a shell, run without `-c`. */
const SHELL_NAMES = new Set(["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "fish"]);

/**
 * Whether an argv (Docker) or a command line (SSH `command`) starts an interactive shell, so
 * integration may be typed into it. Anything else (python3, cat, a script) is left alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(looksLikeShell(["/bin/sh"]), true);
 * assert.equal(looksLikeShell("busybox sh"), true);
 * assert.equal(looksLikeShell("python3"), false);
 * ```
 */
export function looksLikeShell(command: string | string[]): boolean {
  const argv = typeof command === "string" ? command.trim().split(/\s+/) : command;
  if (argv.length === 0 || argv.some((a) => a === "-c" || /[;&|<>`$(]/.test(a))) return false;
  let i = 0;
  if (argv[0] === "exec") i++;
  let name = (argv[i] ?? "").split("/").pop() ?? "";
  if (name === "busybox") name = argv[i + 1] ?? "";
  return SHELL_NAMES.has(name.replace(/^-/, ""));
}

/** The probe line: valid in POSIX shells and fish; answers `ESC ] 6973 ; p ; <vars> BEL`. */
export const PROBE_LINE =
  ` printf '\\033]6973;p;%s|%s|%s|%s\\007' "$BASH_VERSION" "$ZSH_VERSION" "$KSH_VERSION" ` +
  `"$FISH_VERSION"\n`;

/** Finds the probe's answer in captured text (one char per byte); the flavour and its end. */
export function probeAnswer(latin: string): { flavour: ShellFlavour; end: number } | undefined {
  // deno-lint-ignore no-control-regex
  const m = /\x1b\]6973;p;([^|\x07]*)\|([^|\x07]*)\|([^|\x07]*)\|([^|\x07]*)\x07/.exec(latin);
  if (!m) return undefined;
  const flavour: ShellFlavour = m[1]
    ? "bash"
    : m[2]
    ? "zsh"
    : m[3]
    ? "ksh"
    : m[4]
    ? "fish"
    : "posix";
  return { flavour, end: m.index + m[0].length };
}

/** Whether rsm installs prompt hooks in this flavour. */
export function hookable(flavour: ShellFlavour): boolean {
  return flavour === "bash" || flavour === "zsh" || flavour === "posix";
}

/**
 * The one line that installs the hooks, then clears the screen (so a person attached to a
 * tmux pane does not see it either) and answers `ESC ] 6973 ; ok BEL`. `token` tags the
 * marks so a program's own output cannot fake them. History keeps none of rsm's lines
 * (they start with a space), and bash's `!` history expansion is off, so commands run as
 * written.
 */
export function setupLine(flavour: ShellFlavour, token: string): string {
  const c = `\\033]133;C;rsm=${token}\\007`;
  const d = `\\033]133;D;%s;rsm=${token}\\007\\033]7;file://%s\\007`;
  const done = `printf '\\033[H\\033[2J\\033]6973;ok;%s\\007' $'\\101'`;
  if (flavour === "bash") {
    return ` __rsm_pc() { local e=$?; printf '${d}' "$e" "$PWD"; return $e; }; ` +
      `PS0='${c}'"$PS0"; PROMPT_COMMAND="__rsm_pc\${PROMPT_COMMAND:+;$PROMPT_COMMAND}"; ` +
      `case ":$HISTCONTROL:" in *:ignorespace:*|*:ignoreboth:*) ;; ` +
      `*) HISTCONTROL="ignorespace\${HISTCONTROL:+:$HISTCONTROL}";; esac; set +H; ${done}\n`;
  }
  if (flavour === "zsh") {
    return ` __rsm_pc() { local e=$?; printf '${d}' "$e" "$PWD"; return $e }; ` +
      `__rsm_px() { printf '${c}' }; __rsm_r() { return $1 }; typeset -ga precmd_functions preexec_functions; ` +
      `precmd_functions=(__rsm_pc $precmd_functions); preexec_functions+=(__rsm_px); ` +
      `setopt histignorespace; ${done}\n`;
  }
  // ash and dash expand parameters in PS1 at every prompt; busybox's line editor needs the
  // invisible part between \[ \] to measure the prompt, dash prints \[ literally.
  const d1 = `\\033]133;D;`;
  const d2 = `;rsm=${token}\\007\\033]7;file://`;
  return ` __rsm_a="$(printf '${d1}')"; __rsm_b="$(printf '${d2}')"; __rsm_z="$(printf '\\007')"; ` +
    `case $'\\101' in A) PS1="\\[$__rsm_a"'$?'"$__rsm_b"'$PWD'"$__rsm_z\\]$PS1";; ` +
    `*) PS1="$__rsm_a"'$?'"$__rsm_b"'$PWD'"$__rsm_z$PS1";; esac; ` +
    `unset __rsm_a __rsm_b __rsm_z; ${done}\n`;
}

/** Finds the setup's answer: where it ends, and whether the shell knows `$'…'` quoting. */
export function setupAnswer(latin: string): { end: number; ansiC: boolean } | undefined {
  // deno-lint-ignore no-control-regex
  const m = /\x1b\]6973;ok;([^\x07]*)\x07/.exec(latin);
  return m ? { end: m.index + m[0].length, ansiC: m[1] === "A" } : undefined;
}

/** A mark seen in a shell's output. */
export type Mark =
  | { kind: "start"; token: string }
  | { kind: "end"; code: number; token: string }
  | { kind: "cwd"; path: string };

/** The escape sequences rsm strips from what `read` returns: OSC 133, OSC 7, its probes. */
// deno-lint-ignore no-control-regex
const OWN_OSC = /\x1b\](?:133|7|6973);[^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** The start of one of those, cut off at the end of a chunk. */
const PARTIAL_OSC =
  // deno-lint-ignore no-control-regex
  /^\x1b(?:\](?:1(?:3(?:3(?:;[^\x07\x1b]*)?)?)?|7(?:;[^\x07\x1b]*)?|6(?:9(?:7(?:3(?:;[^\x07\x1b]*)?)?)?)?)?)?$/;

/** Removes rsm's marks (OSC 133, OSC 7, OSC 6973) from text. */
export function stripMarks(text: string): string {
  return text.includes("\x1b]") ? text.replace(OWN_OSC, "") : text;
}

/**
 * A streaming filter over a shell's raw output: reports the marks and passes on the bytes
 * without them. A mark cut across two chunks is held back until its end arrives (at most
 * 4 KiB; anything longer is not one of ours and passes through).
 */
export class MarkFilter {
  #held = "";

  /** Whether the end of the last chunk is held back (it may be the start of a mark). */
  get holding(): boolean {
    return this.#held.length > 0;
  }

  /** Gives up waiting: returns what was held back, unfiltered. */
  flush(): Uint8Array {
    const held = this.#held;
    this.#held = "";
    return fromLatin1(held);
  }

  /** Filters one chunk; returns the bytes to keep and the marks found. */
  push(chunk: Uint8Array): { bytes: Uint8Array; marks: Mark[] } {
    if (!this.#held && chunk.indexOf(0x1b) < 0) return { bytes: chunk, marks: [] };
    let text = this.#held + latin1(chunk);
    this.#held = "";
    const tail = text.lastIndexOf("\x1b");
    if (tail >= 0 && text.length - tail < 4096 && PARTIAL_OSC.test(text.slice(tail))) {
      this.#held = text.slice(tail);
      text = text.slice(0, tail);
    }
    const marks: Mark[] = [];
    OWN_OSC.lastIndex = 0;
    const kept = text.replace(OWN_OSC, (seq) => {
      const mark = parseMark(seq);
      if (mark) marks.push(mark);
      return "";
    });
    return { bytes: fromLatin1(kept), marks };
  }
}

/** Parses one OSC 133 C/D or OSC 7 sequence. */
export function parseMark(seq: string): Mark | undefined {
  const body = seq.slice(2, seq.endsWith("\x07") ? -1 : -2);
  const c = /^133;C;rsm=([0-9a-f]+)$/.exec(body);
  if (c?.[1]) return { kind: "start", token: c[1] };
  const d = /^133;D;(\d+);rsm=([0-9a-f]+)$/.exec(body);
  if (d?.[1] && d[2]) return { kind: "end", code: Number(d[1]), token: d[2] };
  const p = /^7;file:\/\/[^/]*(\/.*)$/.exec(body);
  if (p?.[1]) {
    let path = p[1];
    try {
      path = decodeURIComponent(path);
    } catch { /* not percent-encoded: keep it as sent */ }
    // the path came as raw bytes (one char per byte): decode them as UTF-8
    return { kind: "cwd", path: new TextDecoder().decode(fromLatin1(path)) };
  }
  return undefined;
}

const PROMPTS = [
  /(password|passphrase|passcode|pin|token|otp|verification code|username|login)[^\n]*:\s*$/i,
  /[[(](y\/n|yes\/no|y\/n\/q|y\/n\/a|yes\/no\/\[fingerprint\])[\])]\s*[:?]?\s*$/i,
  /\(END\)\s*$/,
  /^:\s*$/,
  /^(>>>|\.\.\.) ?$/,
  /^(In \[\d+\]:|irb\([^)]*\):\d+:\d+[>*]|\(gdb\)|\(Pdb\)|mysql>|sqlite>|[\w-]+=[#>]|>|=>) ?$/,
  /\?\s*$/,
];

/**
 * Whether the text before the cursor looks like a program waiting for an answer: a password
 * or yes/no question, a pager's `(END)` or `:`, a REPL prompt (`>>> `, `In [1]: `, `mysql> `).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(promptLooking("[sudo] password for ann: "), true);
 * assert.equal(promptLooking(">>> "), true);
 * assert.equal(promptLooking("compiling…"), false);
 * ```
 */
export function promptLooking(line: string): boolean {
  const text = line.replace(/\s+$/, (s) => s.includes("\n") ? "" : s);
  if (!text.trim()) return false;
  return PROMPTS.some((re) => re.test(text));
}

/**
 * One char per byte. Node's `latin1` (not `TextDecoder("latin1")`, which is windows-1252
 * and maps 0x80–0x9f elsewhere); native, ~100× faster than `String.fromCharCode(...bytes)`
 * on a 64 KiB chunk, which cost 1.6 ms.
 */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** The inverse of {@link latin1} (each char's low byte). */
export function fromLatin1(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "latin1")); // a copy: small ones sit in a shared pool
}
