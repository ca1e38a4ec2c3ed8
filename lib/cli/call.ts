import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Handle } from "../http/handle.ts";
import { connectDaemon } from "./connect.ts";

import { UsageError } from "./usage.ts";

/**
 * Parses `key=value` (string), `key:=json` and `key@=file` (file contents as a string) into
 * tool arguments. Dotted keys are not expanded: use `key:=` with JSON for nested values.
 *
 * @example
 * ```ts
 * parseCallArgs(["session_id=box", "timeout_ms:=5000"]);
 * // { session_id: "box", timeout_ms: 5000 }
 * ```
 */
export async function parseCallArgs(pairs: string[]): Promise<Record<string, unknown>> {
  const args: Record<string, unknown> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(:=|@=|=)([\s\S]*)$/.exec(pair);
    if (!m) {
      throw new UsageError(
        `cannot read argument "${pair}": use key=value, key:=json or key@=file`,
      );
    }
    const [key, op, value] = [m[1]!, m[2]!, m[3]!]; // all three groups always match
    if (op === "=") args[key] = value;
    else if (op === ":=") {
      try {
        args[key] = JSON.parse(value);
      } catch {
        throw new UsageError(`argument ${key}:= is not valid JSON: ${value}`);
      }
    } else {
      try {
        args[key] = await Deno.readTextFile(value);
      } catch (err) {
        throw new UsageError(`cannot read file for ${key}@=: ${(err as Error).message}`);
      }
    }
  }
  return args;
}

/** Calls one tool; prints its text to stdout (exit 0) or its error to stderr (exit 1). */
export async function callTool(handle: Handle, tool: string, pairs: string[]): Promise<number> {
  const args = await parseCallArgs(pairs);
  await using client = await connectDaemon(handle);
  const result = await client.callTool({ name: tool, arguments: args }, undefined, {
    timeout: 3_700_000,
  }) as CallToolResult;
  const text = result.content.map((
    c: CallToolResult["content"][number],
  ) => (c.type === "text" ? c.text : "")).join("");
  if (result.isError) {
    console.error(text);
    return 1;
  }
  console.log(text);
  return 0;
}
