import type { ToolDef } from "./tool.ts";

/** The file tools (filled in by the file work). */
export const fileTools: ToolDef[] = [];
