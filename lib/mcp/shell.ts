import type { ToolDef } from "./tool.ts";

/** The shell tools (filled in by the shell work). */
export const shellTools: ToolDef[] = [];
