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
  uncertain?: string;
}

/**
 * Splits `command` into its parts.
 *
 * @example
 * ```ts
 * splitCommand("echo ok; rm -rf /tmp/x").parts.map((p) => p.text); // ["echo ok", "rm -rf /tmp/x"]
 * ```
 */
export function splitCommand(command: string): Split {
  const out: Part[] = [];
  const uncertain = splitInto(command, out, 0);
  return uncertain ? { parts: out, uncertain } : { parts: out };
}

function splitInto(src: string, out: Part[], depth: number): string | undefined {
  if (depth > 16) return "command substitutions nested more than 16 deep";
  let problem: string | undefined;
  let start = 0;
  let quoted: [number, number][] = [];
  const flush = (end: number) => {
    const raw = src.slice(start, end);
    const lead = raw.length - raw.trimStart().length;
    const text = raw.trim();
    if (text) {
      out.push({
        text,
        quoted: quoted
          .map(([a, b]) => [a - start - lead, b - start - lead] as [number, number])
          .filter(([a, b]) => b > 0 && a < text.length),
      });
    }
    quoted = [];
  };
  const inner = (text: string) => {
    const p = splitInto(text, out, depth + 1);
    if (p) problem ??= p;
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === "\\") {
      i += 2;
      continue;
    }
    if (c === "'") {
      const end = src.indexOf("'", i + 1);
      if (end < 0) {
        problem ??= "a single quote is not closed";
        quoted.push([i, src.length]);
        i = src.length;
        break;
      }
      quoted.push([i, end + 1]);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      const begin = i;
      i++;
      let closed = false;
      while (i < src.length) {
        const d = src[i];
        if (d === "\\") {
          i += 2;
          continue;
        }
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === "`" || (d === "$" && src[i + 1] === "(")) {
          const sub = readSubstitution(src, i);
          if (sub.problem) problem ??= sub.problem;
          inner(sub.body);
          i = sub.end;
          continue;
        }
        i++;
      }
      if (!closed) problem ??= "a double quote is not closed";
      quoted.push([begin, i]);
      continue;
    }
    if (c === "`" || (c === "$" && src[i + 1] === "(")) {
      const sub = readSubstitution(src, i);
      if (sub.problem) problem ??= sub.problem;
      inner(sub.body);
      i = sub.end;
      continue;
    }
    if (c === "<" && src[i + 1] === "(" || c === ">" && src[i + 1] === "(") {
      const sub = readSubstitution(src, i + 1, true);
      if (sub.problem) problem ??= sub.problem;
      inner(sub.body);
      i = sub.end;
      continue;
    }
    if (c === "#" && (i === start || /\s/.test(src[i - 1]))) {
      // a comment runs to the end of the line; it is still matched (fail closed) as its own part
      const nl = src.indexOf("\n", i);
      const end = nl < 0 ? src.length : nl;
      flush(i);
      start = i;
      i = end;
      continue;
    }
    if (c === ";" || c === "\n" || c === "\r" || c === "|" || c === "&" || c === "(" || c === ")") {
      flush(i);
      i += (c === "|" || c === "&") && src[i + 1] === c ? 2 : 1;
      start = i;
      continue;
    }
    i++;
  }
  flush(src.length);
  return problem;
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
