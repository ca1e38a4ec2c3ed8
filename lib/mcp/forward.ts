import type { ToolDef } from "./tool.ts";

/** The forward tools (filled in by the forward work). */
export const forwardTools: ToolDef[] = [];
