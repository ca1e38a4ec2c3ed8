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
import type { ShellBackends } from "../term/mod.ts";

export { ToolRegistry } from "./registry.ts";
export { type Format } from "./format.ts";
export { type Group, GROUPS } from "./tool.ts";

/** Every tool rsm has with these shell backends (lib/app.ts registers them), in listing order. */
export function allTools(shells: ShellBackends): ToolDef[] {
  return [
    ...sshTools,
    ...execTools,
    ...fleetTools,
    ...shellTools(shells),
    ...forwardTools,
    ...fileTools,
    ...dockerTools,
    ...jobTools,
    ...outputTools,
    ...metaTools,
  ];
}

/** A registry of the tools in `groups`, with the shell tools of the registered backends. */
export function buildRegistry(groups: ReadonlySet<Group>, shells: ShellBackends): ToolRegistry {
  return new ToolRegistry(allTools(shells).filter((t) => groups.has(t.group) || t.always));
}
