/**
 * Many hosts in one call: open sessions from one spec template, run one command across
 * sessions, with bounded concurrency. Results are per host; grouping identical outputs and
 * bounding them is the tool layer's job (lib/mcp/fleet.ts).
 */
import { errorMessage, RsmError } from "../errors.ts";
import { execCommand, type ExecResult } from "./exec.ts";
import type { Capture } from "../output/mod.ts";
import type { SshManager } from "./manager.ts";
import type { SessionSpec } from "./spec.ts";
import { configHostNames } from "./ssh_config.ts";

/**
 * Runs `work` over `items` with at most `concurrency` at once; results keep the input order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(await pool([1, 2, 3], 2, (n) => Promise.resolve(n * n)), [1, 4, 9]);
 * ```
 */
export async function pool<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  };
  const n = Math.max(1, Math.min(concurrency, items.length));
  await Promise.all(Array.from({ length: n }, worker));
  return out;
}

/** Whether `id` matches the glob `pattern` (`*` any run, `?` one character). */
export function globMatch(pattern: string, id: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(id);
}

/** One target of {@link connectMany}. */
export interface FleetTarget {
  id: string;
  addresses: string | string[];
}

/** The outcome of one target of {@link connectMany}. */
export type ConnectOutcome =
  | { id: string; ok: true; address: string }
  | { id: string; ok: false; error: string };

/**
 * The targets an ssh_config `Host` pattern names: every concrete alias (no wildcard) written in
 * `Host` lines of ~/.ssh/config (Includes followed) that matches `pattern`; the id is the alias.
 */
export function targetsFromConfig(pattern: string): FleetTarget[] {
  const names = configHostNames().filter((n) => globMatch(pattern, n));
  if (!names.length) {
    throw new RsmError(
      "NOT_FOUND",
      `Cannot find hosts for "${pattern}": no Host alias in ~/.ssh/config (or its Includes) ` +
        `matches it; give targets [{id, addresses}] instead`,
    );
  }
  return names.map((n) => ({ id: n, addresses: n }));
}

/** Opens one session per target from `template` (each target's addresses replace its own). */
export function connectMany(
  manager: SshManager,
  template: SessionSpec,
  targets: readonly FleetTarget[],
  options: { concurrency: number; signal?: AbortSignal },
): Promise<ConnectOutcome[]> {
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t.id)) {
      throw new RsmError("BAD_ARGUMENT", `Cannot connect: target id "${t.id}" appears twice`);
    }
    seen.add(t.id);
  }
  return pool(targets, options.concurrency, async (t): Promise<ConnectOutcome> => {
    if (options.signal?.aborted) return { id: t.id, ok: false, error: "cancelled" };
    try {
      const spec: SessionSpec = { ...structuredClone(template), addresses: t.addresses };
      const s = await manager.connect(t.id, spec, { signal: options.signal });
      return { id: t.id, ok: true, address: s.activeAddress };
    } catch (err) {
      return { id: t.id, ok: false, error: errorMessage(err) };
    }
  });
}

/** The session ids a `session_ids` argument names (a list, or a glob over existing ids). */
export function selectSessions(manager: SshManager, ids: string | readonly string[]): string[] {
  if (typeof ids !== "string") return [...new Set(ids)];
  const all = manager.sessions().map((s) => s.id);
  const picked = all.filter((id) => globMatch(ids, id));
  if (!picked.length) {
    throw new RsmError(
      "NOT_FOUND",
      `Cannot run: no session id matches "${ids}"` +
        (all.length ? ` (sessions: ${all.slice(0, 20).join(", ")})` : "") + "; see ssh_list",
    );
  }
  return picked;
}

/** Options for {@link execMany}. */
export interface ExecManyOptions {
  concurrency: number;
  timeoutMs: number;
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  /** Bytes kept per stream per host (head and tail each) when no `sinks` are given. */
  keepBytes?: number | undefined;
  /** Where a host's stdout and stderr go (e.g. Captures that spill to the output store). */
  sinks?: (sessionId: string) => { stdout: Capture; stderr: Capture };
  signal?: AbortSignal | undefined;
  /** Called before running on a host; throwing refuses that host (e.g. a policy). */
  check?: ((sessionId: string) => Promise<void> | void) | undefined;
  /** Called each time a host is done, with how many are. */
  onDone?: ((done: number) => void) | undefined;
}

/** The outcome of one host of {@link execMany}. */
export type ExecOutcome =
  | { session_id: string; ok: true; result: ExecResult }
  | { session_id: string; ok: false; error: string };

/** Runs `command` on every session of `ids`, at most `concurrency` at once. */
export function execMany(
  manager: SshManager,
  ids: readonly string[],
  command: string,
  options: ExecManyOptions,
): Promise<ExecOutcome[]> {
  let done = 0;
  return pool(ids, options.concurrency, async (id): Promise<ExecOutcome> => {
    try {
      return await execOne(id);
    } finally {
      options.onDone?.(++done);
    }
  });
  async function execOne(id: string): Promise<ExecOutcome> {
    try {
      if (options.signal?.aborted) throw new Error("cancelled");
      await options.check?.(id);
      const session = manager.get(id);
      const wait = AbortSignal.timeout(Math.min(options.timeoutMs, 15_000));
      let client;
      try {
        client = await session.ready(
          options.signal ? AbortSignal.any([options.signal, wait]) : wait,
        );
      } catch (err) {
        if (err instanceof RsmError) throw err;
        session.client(); // throws the NOT_CONNECTED explanation
        throw err;
      }
      const result = await execCommand(client, command, {
        env: options.env,
        cwd: options.cwd,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        keepBytes: options.keepBytes,
        ...options.sinks?.(id),
      });
      if (result.exit_code === null && !result.signal && !result.timed_out) {
        throw new RsmError(
          "CONNECTION_LOST",
          `lost the connection while the command ran (${session.lastError || "closed"})`,
        );
      }
      return { session_id: id, ok: true, result };
    } catch (err) {
      return { session_id: id, ok: false, error: errorMessage(err) };
    }
  }
}
