import { z } from "zod";
import type { App } from "../app.ts";
import type { Subject } from "../policy/mod.ts";
import type { AuditSubject, CallAudit } from "./audit.ts";

import type { Group } from "../config.ts";

export { type Group, GROUPS } from "../config.ts";

/** The shortest gap between two progress notifications of one call. */
export const PROGRESS_PERIOD_MS = 250;

/** MCP tool annotations (hints for the client). */
export interface Annotations {
  readOnlyHint?: boolean | undefined;
  destructiveHint?: boolean | undefined;
  idempotentHint?: boolean | undefined;
  openWorldHint?: boolean | undefined;
}

/** What a tool handler gets besides its validated arguments. */
export interface ToolContext {
  app: App;
  /** Aborted when the client cancels the request or the daemon shuts down. */
  signal: AbortSignal;
  /**
   * Sends a progress notification when the client asked for progress (a no-op otherwise).
   * Call it as often as the work likes: the registry sends at most one per
   * {@link PROGRESS_PERIOD_MS} (and always the last step, `progress === total`);
   * `message` is shown to the user.
   */
  progress(progress: number, total?: number, message?: string): void;
  /** This call's audit line (written by the registry; see lib/mcp/audit.ts). */
  audit: CallAudit;
  /**
   * Checks one more target of this call against the policy (e.g. each host of a fleet call):
   * returns when it may run, throws the refusal otherwise (a person may be asked first).
   * The registry already checks the call's own {@link ToolDef.policy} subject.
   */
  authorize(subject: Subject): Promise<void>;
}

/** A plain-text result (confirmations like `disconnected box`) that is not TOON/JSON-encoded. */
export class Text {
  constructor(readonly text: string) {}
}

/**
 * A tool's definition. `run` returns a value (rendered as TOON or JSON, bounded) or a
 * {@link Text}; it throws to fail (the message becomes an `isError` result: what failed,
 * why, what to try).
 */
export interface ToolDef<S extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  group: Group;
  /** Short human title for clients' UIs (default: from lib/mcp/titles.ts or the name). */
  title?: string | undefined;
  /** Served in every tool profile, whatever its group (output_read: any tool may cut). */
  always?: boolean | undefined;
  /** A twin tool: when it is served too, this one is listed as "Same as <tool>, <note>." */
  sameAs?: { tool: string; note: string };
  /** First line says what the tool is for; written for a model. */
  description: string;
  /** Input fields; the object is strict (unknown fields are rejected). */
  input: S;
  annotations?: Annotations | undefined;
  /**
   * What the policy checks (see lib/policy): the target, and the command, argv, typed text,
   * written paths or bind address of the call. Default: the target from `session_id` or
   * `host_id` when the tool has one. Return undefined for nothing to check.
   */
  policy?(args: z.infer<z.ZodObject<S>>): Subject | undefined;
  /**
   * What the audit log records of a call that runs a command or changes something: its
   * target and command or path. The registry writes the line when the call ends (with the
   * error, if any); add what is known only later with `ctx.audit.set`.
   */
  audit?(args: z.infer<z.ZodObject<S>>): AuditSubject | undefined;
  run(args: z.infer<z.ZodObject<S>>, ctx: ToolContext): Promise<unknown>;
}

/**
 * Declares a tool with typed arguments.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineTool, Text } from "./tool.ts";
 *
 * export const ping = defineTool({
 *   name: "ping", group: "meta", description: "Answers pong.",
 *   input: { text: z.string().optional() },
 *   run: async ({ text }) => new Text(`pong ${text ?? ""}`),
 * });
 * ```
 */
export function defineTool<S extends z.ZodRawShape>(def: ToolDef<S>): ToolDef {
  return def as unknown as ToolDef;
}

/** Reusable schema pieces so every tool describes the same thing the same way. */
export const fields = {
  id: (what: string) => z.string().min(1).max(200).describe(what),
  duration: (what: string) =>
    z.union([z.string().max(40), z.number().nonnegative()]).describe(
      `${what} ("15s", "1m30s" or ms)`,
    ),
  /** Per-call output control for tools that return program output (README, "Output store"). */
  output: () => ({
    max_output: z.number().int().min(1024).max(1 << 20).optional().describe(
      "bytes shown (default 32768)",
    ),
    keep: z.enum(["head", "tail", "both"]).optional().describe("part shown when cut"),
  }),
  env: () =>
    z.record(z.string().max(1000), z.string().max(1 << 20)).describe(
      "env vars {NAME: value}",
    ),
};
