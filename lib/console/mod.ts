/**
 * The web console (README, "The console"): an overview of everything the daemon holds with
 * live updates, and a terminal view of any shell that a person can watch and take over.
 * Routes under `/web/console`; the caller has already checked Host/Origin and the person's login.
 */
import type { App } from "../app.ts";
import { asset } from "./assets.ts";
import { OverviewHub } from "./events.ts";
import { overviewPage } from "./overview.ts";
import { html, textError } from "./page.ts";
import { shellInput, shellPage, shellResize, shellStream } from "./shell_view.ts";

export { addSection, type Section } from "./overview.ts";
export { esc, layout } from "./page.ts";

/** The console's request handler. */
export interface Console {
  /** Handles a request whose path is `/web/console` or below it. */
  handle(req: Request, url: URL): Promise<Response>;
  /** Ends live streams' shared work (daemon shutdown). Idempotent. */
  close(): void;
}

/**
 * Builds the console for `app`. A state-changing request (POST) must carry the header
 * `x-rsm-console: 1`: a cross-site form or image cannot set it, and a cross-origin script
 * would need a CORS preflight the daemon never grants — defence in depth behind the
 * SameSite=Strict login cookie and the Origin check.
 */
export function createConsole(app: App): Console {
  const hub = new OverviewHub(app);
  return {
    async handle(req, url) {
      const path = url.pathname.replace(/\/+$/, "") || "/";
      if (req.method === "POST" && req.headers.get("x-rsm-console") !== "1") {
        await req.body?.cancel().catch(() => {});
        return textError(403, "Cannot accept this request: it did not come from a console page");
      }
      if (req.method === "GET" && path.startsWith("/web/console/assets/")) {
        return asset(path.slice("/web/console/assets/".length)) ??
          textError(404, `No such console file: ${path}`);
      }
      const route = `${req.method} ${path}`;
      switch (route) {
        case "GET /web/console": {
          const t0 = performance.now();
          const res = html(overviewPage(app));
          res.headers.set("server-timing", `render;dur=${(performance.now() - t0).toFixed(2)}`);
          return res;
        }
        case "GET /web/console/events":
          return hub.stream(req.signal);
        case "GET /web/console/shell":
          return shellPage(app, url);
        case "GET /web/console/shell/stream":
          return shellStream(app, url, req.signal);
        case "POST /web/console/shell/input":
          return await shellInput(app, url, req);
        case "POST /web/console/shell/resize":
          return await shellResize(app, url, req);
      }
      await req.body?.cancel().catch(() => {});
      return textError(
        404,
        `No console page ${req.method} ${path}; the overview is at /web/console`,
      );
    },
    close() {
      hub.close();
    },
  };
}
