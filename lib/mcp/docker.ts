import type { ToolDef } from "./tool.ts";

/** The docker tools (filled in by the docker work). */
export const dockerTools: ToolDef[] = [];
