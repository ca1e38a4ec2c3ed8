/**
 * The daemon's settings that every layer may read: tool groups (the unit of tool profiles),
 * output formats and the default output cap. Kept apart from lib/mcp so that domain modules and
 * the composition root can name them without importing the tool layer (docs/architecture.md).
 */

/** Tool groups, the unit of tool profiles (README "MCP client config"). */
export type Group = "ssh" | "shell" | "forward" | "file" | "docker" | "job" | "meta" | "fleet";

/** Every tool group, in the order tool lists show them. */
export const GROUPS: readonly Group[] = [
  "ssh",
  "shell",
  "forward",
  "file",
  "docker",
  "job",
  "meta",
  "fleet",
];

/** Output formats (README "Tools"). */
export type Format = "toon" | "json";

/** Default cap on one text result, in bytes (README "Readable results and the output store"). */
export const DEFAULT_MAX_OUTPUT = 32 * 1024;

/**
 * Parses the tool profile `ssh,shell,…` (README "MCP client config"); unknown names are an
 * error. Empty or `all` means every group; a group whose long tools hand back job ids brings
 * the job tools with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseGroups } from "./config.ts";
 * assert.deepEqual([...parseGroups("ssh")], ["ssh", "job"]);
 * ```
 */
export function parseGroups(value: string | undefined): Set<Group> {
  if (!value || value.trim() === "" || value.trim() === "all") return new Set(GROUPS);
  const out = new Set<Group>();
  for (const raw of value.split(",")) {
    const g = raw.trim() as Group;
    if (!g) continue;
    if (!GROUPS.includes(g)) {
      throw new Error(
        `unknown tool group "${g}" in REMOTE_SHELL_MCP_TOOLS; use ${GROUPS.join(",")}`,
      );
    }
    out.add(g);
  }
  // the long tools of these groups hand back job ids: their job tools come with them
  if (["ssh", "shell", "file", "docker"].some((g) => out.has(g as Group))) out.add("job");
  return out;
}
