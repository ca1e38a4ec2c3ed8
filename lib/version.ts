import config from "../deno.json" with { type: "json" };

/** The one version of rsm: from `deno.json`, reported by `rsm version`, `/health` and MCP server info. */
export const VERSION: string = config.version;
