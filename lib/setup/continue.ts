/**
 * Continue: rsm writes its own block file `~/.continue/mcpServers/<name>.yaml` (see
 * clients.ts for why), so the whole file is ours and is compared as a whole.
 */
import type { EditResult } from "./json.ts";

/**
 * The whole Continue block file for our server (`~/.continue/mcpServers/<name>.yaml`).
 * Strings are written as JSON strings, which YAML reads as double-quoted scalars.
 */
export function continueBlock(
  name: string,
  fields: { command: string; args: string[]; env?: Record<string, string> },
): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    "# Written by `rsm setup` (remote-shell-mcp); re-run it to update this file.",
    `name: ${q(name)}`,
    "version: 0.0.1",
    "schema: v1",
    "mcpServers:",
    `  - name: ${q(name)}`,
    `    command: ${q(fields.command)}`,
    "    args:",
    ...fields.args.map((a) => `      - ${q(a)}`),
    ...(fields.env
      ? ["    env:", ...Object.entries(fields.env).map(([k, v]) => `      ${q(k)}: ${q(v)}`)]
      : []),
    "",
  ].join("\n");
}

/** Compares Continue's block file with the one we would write. */
export function editContinue(
  text: string,
  name: string,
  fields: { command: string; args: string[]; env?: Record<string, string> },
): EditResult {
  const want = continueBlock(name, fields);
  if (text === want) return { status: "unchanged", text };
  return { status: text === "" ? "added" : "updated", text: want };
}
