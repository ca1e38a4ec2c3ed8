/**
 * Fleet tools (README "Fleets"): `ssh_connect_many` opens many sessions from one spec template;
 * `ssh_exec_many` runs one command across sessions and groups identical results once with the
 * list of sessions that produced them, failures apart, the whole answer within the output
 * bound however many hosts there are.
 */
import { z } from "zod";
import { defineTool, type ToolDef } from "./tool.ts";
import type { CallAudit } from "./audit.ts";
import { sessionSpec } from "./ssh.ts";
import { fields } from "./tool.ts";
import { describeIssues } from "./validate.ts";
import {
  connectMany,
  execMany,
  type ExecOutcome,
  selectSessions,
  type SessionSpec,
  targetsFromConfig,
} from "../ssh/mod.ts";
import { Capture, splitBudget } from "../output/mod.ts";
import { createHash } from "node:crypto";
import { RsmError } from "../errors.ts";
import { render } from "./format.ts";

const concurrency = z.number().int().min(1).max(256).optional().describe("default 16");

/** One group of identical results. */
export interface ExecGroup {
  sessions: string[];
  exit_code: number | null;
  signal?: string | undefined;
  stdout: string;
  stderr: string;
  /** Set when this group's text had to be cut to fit the output bound. */
  truncated?: boolean | undefined;
  /** The full stdout of the group (one host's; the group's are identical), when cut. */
  output_id?: string | undefined;
  /** The full stderr, when cut. */
  stderr_output_id?: string | undefined;
}

/** The answer of ssh_exec_many. */
export interface ExecManyResult {
  hosts: number;
  groups: ExecGroup[];
  failed: { session_id: string; error: string }[];
  /** Groups not shown because the output bound was reached (their sessions are counted). */
  groups_left_out?: number | undefined;
}

const enc = new TextEncoder();
const size = (v: unknown) => enc.encode(JSON.stringify(v)).length;

interface Raw {
  sessions: string[];
  exit_code: number | null;
  signal?: string | undefined;
  out: Capture;
  err: Capture;
}

/**
 * What identifies a stream's content: its size, its first `keep` bytes and its last `keep`
 * bytes (the tail a Capture holds may be longer, depending on how the bytes were chunked).
 */
function fingerprint(c: Capture): string {
  const tail = c.tail();
  const h = createHash("sha256").update(c.head()).update("\0")
    .update(tail.subarray(Math.max(0, tail.length - c.keep)));
  return `${c.total}:${h.digest("base64")}`;
}

/**
 * Groups per-host outcomes (identical exit code, signal, stdout and stderr → one group, largest
 * group first) and fits the whole answer in `max` bytes: each group's text gets an equal share
 * of what the session lists and failures leave, and groups that do not fit are counted.
 */
export function groupOutcomes(
  outcomes: ExecOutcome[],
  max: number,
  timeoutMs: number,
  measure: (value: ExecManyResult | Record<string, unknown>) => number = size,
): ExecManyResult {
  const byKey = new Map<string, Raw>();
  const failed: { session_id: string; error: string }[] = [];
  for (const o of outcomes) {
    if (!o.ok) {
      failed.push({ session_id: o.session_id, error: o.error.slice(0, 400) });
      continue;
    }
    const r = o.result;
    if (r.timed_out) {
      failed.push({
        session_id: o.session_id,
        error: `timed out after ${timeoutMs} ms; the command was stopped` +
          (r.stop_result && r.stop_result !== "stopped" ? ` (${r.stop_result})` : ""),
      });
      continue;
    }
    // the kept bytes decide identity (everything up to the per-host keep limit, head and tail)
    const key = JSON.stringify([
      r.exit_code,
      r.signal ?? "",
      fingerprint(r.stdout),
      fingerprint(r.stderr),
    ]);
    const g = byKey.get(key);
    if (g) g.sessions.push(o.session_id);
    else {
      byKey.set(key, {
        sessions: [o.session_id],
        exit_code: r.exit_code,
        ...(r.signal ? { signal: r.signal } : {}),
        out: r.stdout,
        err: r.stderr,
      });
    }
  }
  const raws = [...byKey.values()].sort((a, b) => b.sessions.length - a.sessions.length);
  const base: ExecManyResult = { hosts: outcomes.length, groups: [], failed };
  const fixed = measure({ ...base, groups: raws.map((r) => r.sessions) }) + 200;
  let avail = max - fixed;
  if (avail < 0) {
    // even the session lists do not fit: keep failures short
    for (const f of failed) f.error = f.error.slice(0, 80);
    avail = max - measure({ ...base, groups: raws.map((r) => r.sessions) }) - 200;
  }
  // Shares are counted in raw bytes; the rendering escapes newlines and quotes, so measure
  // the real answer and shrink the shares until it fits.
  let result = layoutGroups(raws, base, avail);
  for (let i = 0; i < 8; i++) {
    const shown = measure(result);
    if (shown <= max) break;
    avail = Math.floor(avail * Math.min(0.9, (max / shown) * 0.95));
    result = layoutGroups(raws, base, avail);
  }
  return result;
}

function layoutGroups(raws: Raw[], base: ExecManyResult, avail: number): ExecManyResult {
  const result: ExecManyResult = { ...base, groups: [], failed: [...base.failed] };
  const perGroup = 160; // JSON keys, numbers and output ids of one group
  let shown = raws.length;
  while (shown > 0 && avail / shown < perGroup + 256) shown--;
  for (const r of raws.slice(0, shown)) {
    const share = Math.floor(avail / shown) - perGroup;
    const [o, e] = splitBudget(r.out.total, r.err.total, Math.max(256, share));
    // a cut text's marker names the stored full output (output_read), kept in the store
    const out = r.out.render(o);
    const err = r.err.render(e);
    const outId = out.truncated ? r.out.storedId() : undefined;
    const errId = err.truncated ? r.err.storedId() : undefined;
    result.groups.push({
      sessions: r.sessions,
      exit_code: r.exit_code,
      ...(r.signal ? { signal: r.signal } : {}),
      stdout: out.text,
      stderr: err.text,
      ...(out.truncated || err.truncated ? { truncated: true } : {}),
      ...(outId ? { output_id: outId } : {}),
      ...(errId ? { stderr_output_id: errId } : {}),
    });
  }
  if (shown < raws.length) {
    result.groups_left_out = raws.length - shown;
    for (const r of raws.slice(shown)) {
      result.failed.push({
        session_id: r.sessions.join(","),
        error: `ran (exit ${r.exit_code}) but its output did not fit; run ssh_exec on one of them`,
      });
    }
  }
  return result;
}

/** One audit line per host (the call's own line is not written then). */
function auditHosts(audit: CallAudit, command: string, outcomes: ExecOutcome[]) {
  for (const o of outcomes) {
    audit.record({
      target: o.session_id,
      command,
      ...(o.ok ? { exit_code: o.result.exit_code } : { error: o.error }),
    });
  }
}

/** The fleet tools. */
export const fleetTools: ToolDef[] = [
  defineTool({
    name: "ssh_connect_many",
    group: "fleet",
    description: "Opens many SSH sessions from one spec → {connected, failed}.\n" +
      'Example: {"spec": {"user": "ops"}, "targets": [{"id": "web1", "addresses": "10.0.0.11"}]}',
    input: {
      spec: z.record(z.string(), z.unknown()).describe(
        "ssh_connect spec; targets' addresses replace its own",
      ),
      targets: z.array(z.strictObject({
        id: z.string().min(1).max(200),
        addresses: z.union([
          z.string().min(1).max(300),
          z.array(z.string().min(1).max(300)).min(1).max(32),
        ]),
      })).max(2000).optional(),
      host_pattern: z.string().min(1).max(300).optional().describe(
        "or: ~/.ssh/config Host aliases matching this glob",
      ),
      concurrency,
    },
    annotations: { openWorldHint: true },
    run: async (args, { app, signal }) => {
      if (!args.targets === !args.host_pattern) {
        throw new RsmError("BAD_ARGUMENT", "Cannot connect: give either targets or host_pattern");
      }
      // validated here rather than listed again: ssh_connect's schema already shows it
      const spec = sessionSpec.safeParse({ addresses: "-", ...args.spec });
      if (!spec.success) {
        throw new RsmError("BAD_ARGUMENT", describeIssues("ssh_connect_many", spec.error.issues));
      }
      const targets = args.targets ?? targetsFromConfig(args.host_pattern!);
      const outcomes = await connectMany(app.ssh, spec.data as SessionSpec, targets, {
        concurrency: args.concurrency ?? 16,
        signal,
      });
      return {
        connected: outcomes.flatMap((o) => (o.ok ? [{ id: o.id, address: o.address }] : [])),
        failed: outcomes.flatMap((o) => (o.ok ? [] : [{ id: o.id, error: o.error }])),
      };
    },
  }),
  defineTool({
    name: "ssh_exec_many",
    group: "fleet",
    description: "Runs one command on many SSH sessions → {hosts, groups: [{sessions, exit_code, " +
      "stdout, stderr}], failed}; identical results come once.\n" +
      'Example: {"session_ids": "web*", "command": "df -h /"}',
    input: {
      session_ids: z.union([
        z.string().min(1).max(200),
        z.array(z.string().min(1).max(200)).min(1).max(2000),
      ]).describe("session ids, or a glob"),
      command: z.string().min(1).max(1 << 20),
      concurrency,
      timeout_ms: z.number().int().min(1).max(3_600_000).optional().describe(
        "per host (default 30000)",
      ),
      env: fields.env().optional(),
      cwd: z.string().min(1).max(4096).optional().describe("working directory"),
    },
    annotations: { destructiveHint: true, openWorldHint: true },
    run: async (args, { app, signal, authorize, progress, audit }) => {
      const ids = selectSessions(app.ssh, args.session_ids);
      const timeoutMs = args.timeout_ms ?? 30_000;
      const keep = Math.max(4096, app.maxOutput);
      let sent = 0;
      const outcomes = await execMany(app.ssh, ids, args.command, {
        // the policy per host: a refused host is listed in failed with the rule that refused it
        check: (id) => authorize({ kind: "ssh", target: id, command: args.command, cwd: args.cwd }),
        concurrency: args.concurrency ?? 16,
        timeoutMs,
        env: args.env,
        cwd: args.cwd,
        // every host's streams, kept whole in the output store once they outgrow memory
        sinks: (id) => ({
          stdout: new Capture({ keep, store: app.outputs, label: `ssh_exec_many ${id} stdout` }),
          stderr: new Capture({ keep, store: app.outputs, label: `ssh_exec_many ${id} stderr` }),
        }),
        signal,
        onDone: (done) => {
          if (done < ids.length && Date.now() - sent < 1000) return;
          sent = Date.now();
          progress(done, ids.length, `${done} of ${ids.length} hosts done`);
        },
      });
      auditHosts(audit, args.command, outcomes);
      const shown = (v: unknown) => enc.encode(render(v, app.format)).length;
      return groupOutcomes(outcomes, app.maxOutput - 256, timeoutMs, shown);
    },
  }),
];
