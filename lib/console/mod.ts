/**
 * The web console (README, "The console"): an overview of everything the daemon holds with
 * live updates, and a terminal view of any shell that a person can watch and take over.
 * Routes under `/console`; the caller has already checked Host/Origin and the person's login.
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
  /** Handles a request whose path is `/console` or below it. */
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
      if (req.method === "GET" && path.startsWith("/console/assets/")) {
        return asset(path.slice("/console/assets/".length)) ??
          textError(404, `No such console file: ${path}`);
      }
      const route = `${req.method} ${path}`;
      switch (route) {
        case "GET /console":
          return html(overviewPage(app));
        case "GET /console/events":
          return hub.stream(req.signal);
        case "GET /console/shell":
          return shellPage(app, url);
        case "GET /console/shell/stream":
          return shellStream(app, url, req.signal);
        case "POST /console/shell/input":
          return await shellInput(app, url, req);
        case "POST /console/shell/resize":
          return await shellResize(app, url, req);
      }
      await req.body?.cancel().catch(() => {});
      return textError(404, `No console page ${req.method} ${path}; the overview is at /console`);
    },
    close() {
      hub.close();
    },
  };
}
