/**
 * The policy decision for one tool call: allowed, refused (naming the rule and why) or in
 * need of a person's approval. Pure: the caller supplies the policy, what the call does
 * (a {@link Subject}) and facts about the target (host names).
 */
import { posix } from "node:path";
import { dequote, type Part, splitCommand } from "./split.ts";
import { globMatch, type Pattern, type Policy, type Rule } from "./rules.ts";

/** What one call does, as far as the policy cares. Built by each tool's policy description. */
export interface Subject {
  /** `ssh` session or `docker` host. */
  kind: "ssh" | "docker";
  /** Session id or Docker host id. */
  target: string;
  /** A shell command line (ssh_exec, *_shell_run, a shell opened with a command). */
  command?: string | undefined;
  /** An argv run without a shell (docker_exec, docker_run); `sh -c SCRIPT` scripts are read. */
  argv?: string[] | undefined;
  /** Keystrokes typed into a shell (checked line by line). */
  typed?: string | undefined;
  /**
   * The shell typed into (e.g. `ssh:box/sh1`): the unfinished line of earlier writes is kept
   * per shell and checked with what follows, so a command split over writes is still seen.
   */
  typedInto?: string | undefined;
  /** Remote paths the call writes, creates, renames or deletes. */
  writes?: string[] | undefined;
  /** Address a forward listens on. */
  bindAddr?: string | undefined;
  /** Working directory, for the approval form. */
  cwd?: string | undefined;
  /** User the command runs as, when the call says (docker_exec user). */
  user?: string | undefined;
}

/** Facts about the call's target that the rules select on. */
export interface TargetFacts {
  /** Host names and addresses of the target (SSH addresses, the Docker endpoint's host). */
  hosts: string[];
}

/** The outcome of {@link decide}. */
export type Decision =
  | { action: "allow" }
  | { action: "deny"; rule?: Rule; message: string }
  | { action: "confirm"; rule: Rule; pattern: string; command: string };

/**
 * Decides one call. Deny beats confirm; confirm beats allow. Every rule whose `targets` or
 * `hosts` select the call applies (a rule with neither applies to every target).
 */
export function decide(
  policy: Policy,
  tool: { name: string; readOnly: boolean },
  subject: Subject | undefined,
  facts: TargetFacts = { hosts: [] },
): Decision {
  if (policy.mode === "read-only" && !tool.readOnly) {
    return {
      action: "deny",
      message: `${tool.name} changes things, and the policy in ${policy.file} sets ` +
        `mode = "read-only" (only read-only tools may run). Ask the person to change the ` +
        `policy file if this is needed.`,
    };
  }
  if (!subject) return { action: "allow" };
  let confirm: Decision | undefined;
  for (const rule of policy.rules) {
    if (!selects(rule, subject.target, facts.hosts)) continue;
    const refuse = (why: string): Decision => ({
      action: "deny",
      rule,
      message: `Refused by policy ${rule.label} in ${policy.file}: ${why}. Ask the person to ` +
        `change the policy file if this is needed.`,
    });
    if (rule.readOnly && !tool.readOnly) {
      return refuse(
        `${subject.kind === "ssh" ? "session" : "Docker host"} ${subject.target} ` +
          `is read-only (read_only = true), and ${tool.name} changes things`,
      );
    }
    const commands = commandsOf(subject);
    for (const cmd of commands) {
      const hit = findMatch(rule.deny, cmd);
      if (hit) return refuse(`deny pattern ${JSON.stringify(hit.pattern)} matches ${hit.why}`);
    }
    if (rule.allow.length) {
      for (const cmd of commands) {
        const bad = notAllowed(rule.allow, cmd);
        if (bad) return refuse(bad);
      }
    }
    if (rule.writablePaths && subject.writes) {
      for (const path of subject.writes) {
        if (!rule.writablePaths.some((w) => within(path, w))) {
          return refuse(
            `${JSON.stringify(path)} is outside writable_paths ` +
              `[${rule.writablePaths.map((w) => JSON.stringify(w)).join(", ")}]`,
          );
        }
      }
    }
    if (subject.bindAddr !== undefined && !rule.publicForwards && !isLoopback(subject.bindAddr)) {
      return refuse(
        `a forward may listen only on loopback here (bind_addr ${subject.bindAddr}; ` +
          `public_forwards = true in the rule allows other addresses)`,
      );
    }
    if (!confirm) {
      for (const cmd of commands) {
        const hit = findMatch(rule.confirm, cmd);
        if (hit) {
          confirm = { action: "confirm", rule, pattern: hit.pattern, command: cmd.text };
          break;
        }
      }
    }
  }
  return confirm ?? { action: "allow" };
}

/** Whether a rule applies to `target` (an id) with `hosts` (its host names). */
function selects(rule: Rule, target: string, hosts: string[]): boolean {
  if (!rule.targets && !rule.hosts) return true;
  if (rule.targets?.some((g) => globMatch(g, target))) return true;
  return !!rule.hosts?.some((g) => hosts.some((h) => globMatch(g, h)));
}

/** One command to match, with how it was split. */
interface Cmd {
  text: string;
  /** Split into parts; `uncertain` says why the split may be wrong. */
  parts: Part[];
  uncertain?: string | undefined;
}

function shellCmd(text: string): Cmd {
  const s = splitCommand(text);
  return { text, parts: s.parts, uncertain: s.uncertain };
}

const SHELLS = /(^|\/)(sh|bash|ash|dash|zsh|ksh|busybox)$/;

/** The commands a subject runs: the command line, each typed line, the argv (and sh -c scripts). */
function commandsOf(subject: Subject): Cmd[] {
  const out: Cmd[] = [];
  if (subject.command !== undefined) out.push(shellCmd(subject.command));
  if (subject.typed !== undefined) {
    // Enter ends a line; Ctrl-C and Ctrl-U throw it away
    // deno-lint-ignore no-control-regex
    for (const line of subject.typed.split(/[\r\n\x03\x15]/)) {
      // control keys (Ctrl-C, Esc …) are not part of what the shell reads as a command
      // deno-lint-ignore no-control-regex
      const clean = line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
      if (clean.trim()) out.push(shellCmd(clean));
    }
  }
  const argv = subject.argv;
  if (argv?.length) {
    const text = argv.join(" ");
    out.push({ text, parts: [{ text, quoted: [] }] });
    argv.forEach((arg, i) => {
      const script = argv[i + 1];
      if (arg === "-c" && i > 0 && SHELLS.test(argv[0]!) && script) out.push(shellCmd(script));
    });
  }
  return out;
}

/** The first pattern that matches `cmd` (its whole text or a part), or one hidden by quoting. */
function findMatch(patterns: Pattern[], cmd: Cmd): { pattern: string; why: string } | undefined {
  for (const p of patterns) {
    for (const part of cmd.parts) {
      const m = p.find.exec(part.text);
      if (!m) continue;
      const end = m.index + Math.max(1, m[0].length);
      const inQuotes = part.quoted.some(([a, b]) => m.index < b && end > a);
      if (!inQuotes) return { pattern: p.source, why: `the command ${JSON.stringify(part.text)}` };
      return {
        pattern: p.source,
        why: `words inside a quoted string in ${JSON.stringify(part.text)}; rsm cannot tell ` +
          `with certainty whether quoted text runs (sh -c, eval, ssh …), so it treats it as a ` +
          `match (fail closed)`,
      };
    }
    if (p.find.test(cmd.text)) {
      return { pattern: p.source, why: `the command ${JSON.stringify(cmd.text)}` };
    }
    if (p.find.test(dequote(cmd.text))) {
      return {
        pattern: p.source,
        why: `${JSON.stringify(cmd.text)} once quotes are taken away; ` +
          (cmd.uncertain
            ? `the command cannot be split with certainty (${cmd.uncertain})`
            : "quoting may hide the words from a plain match") +
          `, so rsm treats it as a match (fail closed)`,
      };
    }
  }
  return undefined;
}

/** Why `cmd` is not covered by the allow list, or undefined when every part is. */
function notAllowed(allow: Pattern[], cmd: Cmd): string | undefined {
  if (cmd.uncertain) {
    return `the command ${JSON.stringify(cmd.text)} cannot be split with certainty ` +
      `(${cmd.uncertain}), so the allow list cannot vouch for it (fail closed)`;
  }
  for (const part of cmd.parts) {
    // leading VAR=value assignments are part of the command, not its name
    const body = part.text.replace(/^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*/, "");
    if (!allow.some((p) => p.start.test(body) || p.start.test(part.text))) {
      return `${JSON.stringify(part.text)} is not in the allow list ` +
        `[${allow.map((p) => JSON.stringify(p.source)).join(", ")}]`;
    }
  }
  return undefined;
}

/** Normal form of a remote path: `~/x` stays home-relative; a relative path is home-relative. */
function normalPath(p: string): string {
  let s = p.trim();
  if (s === "~") s = "~/";
  if (!s.startsWith("/") && !s.startsWith("~/")) s = `~/${s}`;
  const home = s.startsWith("~/");
  const n = posix.normalize(home ? s.slice(1) : s).replace(/\/+$/, "");
  return home ? `~${n}` : n || "/";
}

/** Whether `path` is `dir` or inside it (after normalising `..` and `.`). */
export function within(path: string, dir: string): boolean {
  const p = normalPath(path);
  const d = normalPath(dir);
  if (d === "/" || d === "~") return p.startsWith(d);
  return p === d || p.startsWith(`${d}/`);
}

/** Whether a bind address is loopback (`127.x`, `::1`, `localhost`). */
export function isLoopback(addr: string): boolean {
  const a = addr.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return a === "localhost" || a === "::1" || /^127\.\d+\.\d+\.\d+$/.test(a);
}
