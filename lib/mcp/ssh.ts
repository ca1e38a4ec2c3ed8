import type { ToolDef } from "./tool.ts";

/** The ssh tools (filled in by the ssh work). */
export const sshTools: ToolDef[] = [];
