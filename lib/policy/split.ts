/**
 * Splits a shell command line into the simple commands a policy pattern is matched against:
 * the parts between `;`, `&&`, `||`, `|`, `&`, newlines and subshell parentheses, and the
 * inner commands of `$(…)` and backticks (also inside double quotes). Quoted regions are
 * remembered so a match inside a quoted string can be reported as uncertain (it may still be
 * run through `sh -c`, `eval` or `ssh`). This is a conservative reader, not a shell: when it
 * cannot be sure (an unclosed quote or substitution), it says so and the policy fails closed.
 */

/** One simple command of a command line. */
export interface Part {
  /** The text as written, trimmed. */
  text: string;
  /** Ranges `[start, end)` of `text` that are inside quotes. */
  quoted: [number, number][];
}

/** What {@link splitCommand} found. */
export interface Split {
  parts: Part[];
  /** Set when the line cannot be split with certainty, saying why. */
  uncertain?: string | undefined;
}

/**
 * Splits `command` into its parts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(splitCommand("echo ok; rm -rf /tmp/x").parts.map((p) => p.text), ["echo ok", "rm -rf /tmp/x"]);
 * ```
 */
export function splitCommand(command: string): Split {
  const out: Part[] = [];
  const uncertain = new Splitter(command, out, 0).run();
  return uncertain ? { parts: out, uncertain } : { parts: out };
}

/** One pass over a command line (or a substitution's body), pushing its parts to `out`. */
class Splitter {
  #problem: string | undefined;
  /** Where the current part starts. */
  #start = 0;
  /** Quoted ranges of the current part (indices into `src`). */
  #quoted: [number, number][] = [];
  #i = 0;

  constructor(readonly src: string, readonly out: Part[], readonly depth: number) {}

  /** Splits the whole text; returns why it is uncertain, if it is. */
  run(): string | undefined {
    if (this.depth > 16) return "command substitutions nested more than 16 deep";
    const src = this.src;
    while (this.#i < src.length) {
      const i = this.#i;
      const c = src[i];
      const next = src[i + 1];
      if (c === "\\") this.#i += 2;
      else if (c === "'") this.#singleQuote();
      else if (c === '"') this.#doubleQuote();
      else if (c === "`" || (c === "$" && next === "(")) this.#substitution(i, false);
      else if ((c === "<" || c === ">") && next === "(") this.#substitution(i + 1, true);
      else if (c === "#" && (i === this.#start || /\s/.test(src[i - 1] ?? ""))) {
        // a comment runs to the end of the line; it is still matched (fail closed) as its own part
        const nl = src.indexOf("\n", i);
        this.#flush(i);
        this.#start = i;
        this.#i = nl < 0 ? src.length : nl;
      } else if (
        c === ";" || c === "\n" || c === "\r" || c === "|" || c === "&" || c === "(" || c === ")"
      ) {
        this.#flush(i);
        this.#i += (c === "|" || c === "&") && next === c ? 2 : 1;
        this.#start = this.#i;
      } else this.#i++;
    }
    this.#flush(src.length);
    return this.#problem;
  }

  /** Ends the current part at `end` (its text trimmed, its quoted ranges made relative). */
  #flush(end: number) {
    const start = this.#start;
    const raw = this.src.slice(start, end);
    const lead = raw.length - raw.trimStart().length;
    const text = raw.trim();
    if (text) {
      this.out.push({
        text,
        quoted: this.#quoted
          .map(([a, b]) => [a - start - lead, b - start - lead] as [number, number])
          .filter(([a, b]) => b > 0 && a < text.length),
      });
    }
    this.#quoted = [];
  }

  #singleQuote() {
    const i = this.#i;
    const end = this.src.indexOf("'", i + 1);
    if (end < 0) {
      this.#problem ??= "a single quote is not closed";
      this.#quoted.push([i, this.src.length]);
      this.#i = this.src.length;
      return;
    }
    this.#quoted.push([i, end + 1]);
    this.#i = end + 1;
  }

  /** A double-quoted string; substitutions inside it are still commands. */
  #doubleQuote() {
    const src = this.src;
    const begin = this.#i++;
    let closed = false;
    while (this.#i < src.length) {
      const d = src[this.#i];
      if (d === "\\") this.#i += 2;
      else if (d === '"') {
        closed = true;
        this.#i++;
        break;
      } else if (d === "`" || (d === "$" && src[this.#i + 1] === "(")) {
        this.#substitution(this.#i, false);
      } else this.#i++;
    }
    if (!closed) this.#problem ??= "a double quote is not closed";
    this.#quoted.push([begin, this.#i]);
  }

  /** A substitution at `at`: its body is split as commands of its own. */
  #substitution(at: number, paren: boolean) {
    const sub = readSubstitution(this.src, at, paren);
    if (sub.problem) this.#problem ??= sub.problem;
    const p = new Splitter(sub.body, this.out, this.depth + 1).run();
    if (p) this.#problem ??= p;
    this.#i = sub.end;
  }
}

/**
 * Reads a `$(…)`, `` `…` `` or (with `paren`) `(…)` starting at `at`; returns its body and
 * the index after it. Nested parentheses and quotes inside are skipped over.
 */
function readSubstitution(
  src: string,
  at: number,
  paren = false,
): { body: string; end: number; problem?: string } {
  if (src[at] === "`") {
    let i = at + 1;
    while (i < src.length && src[i] !== "`") i += src[i] === "\\" ? 2 : 1;
    if (i >= src.length) {
      return { body: src.slice(at + 1), end: src.length, problem: "a backtick is not closed" };
    }
    return { body: src.slice(at + 1, i), end: i + 1 };
  }
  const open = paren ? at : at + 1; // index of "("
  let depth = 0;
  let i = open;
  while (i < src.length) {
    const c = src[i];
    if (c === "\\") {
      i += 2;
      continue;
    }
    if (c === "'") {
      const end = src.indexOf("'", i + 1);
      if (end < 0) break;
      i = end + 1;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') i += src[i] === "\\" ? 2 : 1;
      i++;
      continue;
    }
    if (c === "(") depth++;
    if (c === ")") {
      depth--;
      if (depth === 0) return { body: src.slice(open + 1, i), end: i + 1 };
    }
    i++;
  }
  return {
    body: src.slice(open + 1),
    end: src.length,
    problem: "a $( … ) command substitution is not closed",
  };
}

/**
 * The command with quoting taken away (quotes and backslashes removed, substitution marks
 * replaced by spaces, runs of blanks collapsed): what a pattern is matched against to find
 * words that quoting hides, like `r"m" -rf` or `'rm' -rf`.
 */
export function dequote(command: string): string {
  return command
    .replace(/\$\(|[`()]/g, " ")
    .replace(/\\\n/g, "")
    .replace(/['"\\]/g, "")
    .replace(/[ \t]+/g, " ");
}
