/**
 * Every file the console's pages load, served by the daemon itself (no CDN, no third-party
 * request). The files are imported as text, so they are part of the module graph: `deno run`
 * reads them from the npm cache and this folder, and `deno compile` embeds them in the binary
 * with no `--include` flag to keep in sync. xterm.js comes from `npm:@xterm/xterm` (the same
 * engine as the daemon's headless screen), pinned in deno.json.
 */
import xtermJs from "@xterm/xterm/lib/xterm.js" with { type: "text" };
import xtermCss from "@xterm/xterm/css/xterm.css" with { type: "text" };
import fitJs from "@xterm/addon-fit/lib/addon-fit.js" with { type: "text" };
import consoleCss from "./static/console.css" with { type: "text" };
import overviewJs from "./static/overview.js" with { type: "text" };
import shellJs from "./static/shell.js" with { type: "text" };
import jobJs from "./static/job.js" with { type: "text" };
import { securityHeaders } from "./page.ts";

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

// xterm.js's bundle ends with a source-map comment naming a file the console does not serve.
const noMap = (js: string) => js.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");

/** name → [content type, body]. */
const ASSETS: Record<string, [string, string]> = {
  "xterm.js": [JS, noMap(xtermJs)],
  "xterm.css": [CSS, xtermCss],
  "addon-fit.js": [JS, noMap(fitJs)],
  "console.css": [CSS, consoleCss],
  "overview.js": [JS, overviewJs],
  "shell.js": [JS, shellJs],
  "job.js": [JS, jobJs],
};

/** `GET /web/console/assets/<name>`, or null when there is no such asset. */
export function asset(name: string): Response | null {
  const a = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!a) return null;
  return new Response(a[1], { headers: securityHeaders(a[0]) });
}
