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
import { tokenMatches } from "../http/guard.ts";
import { shellInput, shellPage, shellResize, shellStream } from "./shell_view.ts";
import { jobPage, jobStream } from "./jobs.ts";

export type { Section } from "./overview.ts";

/** The logged-in person's web session (lib/http/web/auth.ts): its CSRF token. */
export interface ConsoleSession {
  csrf: string;
}

/** The console's request handler. */
export interface Console {
  /** Handles a request whose path is `/web/console` or below it, from a logged-in person. */
  handle(req: Request, url: URL, session: ConsoleSession): Promise<Response>;
  /** Ends live streams' shared work (daemon shutdown). Idempotent. */
  close(): void;
}

/**
 * Builds the console for `app`. A state-changing request (POST: keystrokes, resize) must
 * carry the session's CSRF token in the `x-rsm-csrf` header and, when it sends an Origin,
 * the daemon's own: a cross-site form cannot set the header, and a cross-origin script would
 * need a CORS preflight the daemon never grants. The login cookie is SameSite=Strict too.
 */
export function createConsole(app: App): Console {
  const hub = new OverviewHub(app);
  return {
    async handle(req, url, session) {
      const path = url.pathname.replace(/\/+$/, "") || "/";
      if (req.method === "POST" && !sameOriginWithToken(req, session)) {
        await req.body?.cancel().catch(() => {});
        return textError(
          403,
          "Refused: this request did not come from a console page (missing or wrong CSRF " +
            "token, or a foreign origin); reload the page",
        );
      }
      if (req.method === "GET" && path.startsWith("/web/console/assets/")) {
        return asset(path.slice("/web/console/assets/".length)) ??
          textError(404, `No such console file: ${path}`);
      }
      const route = `${req.method} ${path}`;
      switch (route) {
        case "GET /web/console": {
          const t0 = performance.now();
          const res = html(overviewPage(app, session.csrf));
          res.headers.set("server-timing", `render;dur=${(performance.now() - t0).toFixed(2)}`);
          return res;
        }
        case "GET /web/console/events":
          return hub.stream();
        case "GET /web/console/shell":
          return shellPage(app, url, session.csrf);
        case "GET /web/console/shell/stream":
          return shellStream(app, url);
        case "GET /web/console/job":
          return jobPage(app, url);
        case "GET /web/console/job/stream":
          return jobStream(app, url);
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

/** The CSRF header matches the session and the Origin, when sent, is this very server. */
function sameOriginWithToken(req: Request, session: ConsoleSession): boolean {
  const origin = req.headers.get("origin");
  if (origin !== null && origin !== `http://${req.headers.get("host")}`) return false;
  const token = req.headers.get("x-rsm-csrf") ?? "";
  return token !== "" && tokenMatches(token, session.csrf);
}

const consoles = new WeakMap<App, Console>();

/** The console of `app`, built on first use (the daemon's web pages route `/web/console` here). */
export function consoleOf(app: App): Console {
  let c = consoles.get(app);
  if (!c) consoles.set(app, c = createConsole(app));
  return c;
}
