import type { ToolDef } from "./tool.ts";

/** The exec tools (filled in by the exec work). */
export const execTools: ToolDef[] = [];
