/** The tool layer: every tool, filtered by profile. */
import type { Group, ToolDef } from "./tool.ts";
import { metaTools } from "./meta.ts";
import { sshTools } from "./ssh.ts";
import { execTools } from "./exec.ts";
import { shellTools } from "./shell.ts";
import { forwardTools } from "./forward.ts";
import { fileTools } from "./file.ts";
import { dockerTools } from "./docker.ts";
import { fleetTools } from "./fleet.ts";
import { jobTools } from "./job.ts";
import { outputTools } from "./output.ts";
import { ToolRegistry } from "./registry.ts";

export { ToolRegistry } from "./registry.ts";
export { type Format } from "./format.ts";
export { type Group, GROUPS } from "./tool.ts";

/** Every tool rsm has, in listing order. */
export const ALL_TOOLS: readonly ToolDef[] = [
  ...sshTools,
  ...execTools,
  ...fleetTools,
  ...shellTools,
  ...forwardTools,
  ...fileTools,
  ...dockerTools,
  ...jobTools,
  ...outputTools,
  ...metaTools,
];

/** A registry of the tools in `groups`. */
export function buildRegistry(groups: ReadonlySet<Group>): ToolRegistry {
  return new ToolRegistry(ALL_TOOLS.filter((t) => groups.has(t.group) || t.always));
}
