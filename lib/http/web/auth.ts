/**
 * Browser access to the daemon's pages: a one-time login link (a random code in the URL,
 * usable once, for a limited time) is exchanged for an HttpOnly, SameSite=Strict cookie
 * holding a web session; every form carries that session's CSRF token, and a POST must come
 * from the daemon's own origin. The bearer token never reaches the browser. Built to be
 * reused by every page the daemon serves (approvals, secrets, a console).
 */
import { tokenMatches } from "../guard.ts";
import { randomHex } from "../../random.ts";

/** The cookie that holds a web session id. */
export const COOKIE = "rsm_web";

/** A logged-in browser. */
export interface WebSession {
  id: string;
  /** Echoed in every form as `csrf`; checked on every POST. */
  csrf: string;
  expires: number;
}

/** Security headers of every page: no caching, no framing, nothing loaded from elsewhere. */
export function pageHeaders(type = "text/html; charset=utf-8"): Record<string, string> {
  return {
    "content-type": type,
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; " +
      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts
    "referrer-policy": "same-origin",
  };
}

/** One-time login links and the web sessions they open. */
export class WebAuth {
  /** The daemon's base URL (`http://127.0.0.1:PORT`), set once it listens. */
  base = "";
  #codes = new Map<string, { next: string; expires: number }>();
  #sessions = new Map<string, WebSession>();
  #sessionMs: number;

  constructor(options: { sessionMs?: number } = {}) {
    this.#sessionMs = options.sessionMs ?? 12 * 3_600_000;
  }

  /**
   * A one-time login link that opens `next` (a path under `/web/`), valid for `ttlMs`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * const auth = new WebAuth();
   * auth.base = "http://127.0.0.1:4000";
   * assert.match(auth.link("/web/approvals/abc", 600_000), /^http:\/\/127\.0\.0\.1:4000\/web\/login\?code=[0-9a-f]+$/);
   * ```
   */
  link(next: string, ttlMs: number): string {
    this.#sweep();
    const code = randomHex(24);
    this.#codes.set(code, { next, expires: Date.now() + ttlMs });
    return `${this.base}/web/login?code=${code}`;
  }

  /** `GET /web/login?code=…`: uses the code up, sets the cookie and redirects to its page. */
  login(url: URL): Response {
    this.#sweep();
    const code = url.searchParams.get("code") ?? "";
    let found: { next: string; expires: number } | undefined;
    for (const [c, v] of this.#codes) {
      if (tokenMatches(c, code)) {
        found = v;
        this.#codes.delete(c);
        break;
      }
    }
    if (!found || found.expires <= Date.now()) return this.#expired();
    const session: WebSession = {
      id: randomHex(32),
      csrf: randomHex(16),
      expires: Date.now() + this.#sessionMs,
    };
    this.#sessions.set(session.id, session);
    return new Response(null, {
      status: 303,
      headers: {
        ...pageHeaders(),
        location: found.next,
        "set-cookie": `${COOKIE}=${session.id}; Path=/web; HttpOnly; SameSite=Strict; ` +
          `Max-Age=${Math.floor(this.#sessionMs / 1000)}`,
      },
    });
  }

  /** The web session of a request (from its cookie), or null. */
  session(req: Request): WebSession | null {
    const cookie = req.headers.get("cookie") ?? "";
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([0-9a-f]{64})`).exec(cookie);
    if (!m) return null;
    for (const s of this.#sessions.values()) {
      if (tokenMatches(s.id, m[1]!)) return s.expires > Date.now() ? s : null;
    }
    return null;
  }

  /**
   * Whether a POST is a real form submission from the daemon's own page: the session's CSRF
   * token in the form, and an `Origin` (when sent) equal to the daemon's own origin.
   */
  formOk(req: Request, session: WebSession, form: FormData): boolean {
    const origin = req.headers.get("origin");
    if (origin !== null && this.base && origin !== this.base) {
      const host = req.headers.get("host");
      if (!host || origin !== `http://${host}`) return false;
    }
    const token = form.get("csrf");
    return typeof token === "string" && tokenMatches(token, session.csrf);
  }

  #expired(): Response {
    return new Response(
      page(
        "Link expired",
        "<p>This link was already used or has expired. Ask for a new one: call the tool again.</p>",
      ),
      { status: 403, headers: pageHeaders() },
    );
  }

  #sweep(): void {
    const now = Date.now();
    for (const [c, v] of this.#codes) if (v.expires <= now) this.#codes.delete(c);
    for (const [id, s] of this.#sessions) if (s.expires <= now) this.#sessions.delete(id);
  }
}

/** Escapes text for HTML. */
export function esc(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** A whole page: title, the daemon's stylesheet, and `body` (already escaped HTML). */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(title)} · rsm</title><link rel="stylesheet" href="/web/style.css"></head>` +
    `<body><main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

/** The stylesheet (served as a file so the CSP can forbid inline styles). */
export const STYLE = `
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #1c1c1c; }
main { max-width: 46rem; margin: 2rem auto; padding: 1.5rem 2rem; background: #fff;
  border: 1px solid #ddd; border-radius: 8px; }
h1 { font-size: 1.4rem; margin-top: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
pre, code { font: 14px/1.4 ui-monospace, monospace; background: #f0f0ee; padding: .1rem .3rem;
  white-space: pre-wrap; word-break: break-all; }
pre { padding: .6rem; }
button { font: inherit; padding: .5rem 1.2rem; margin-right: .6rem; border-radius: 6px;
  border: 1px solid #888; background: #fff; cursor: pointer; }
button.go { background: #1d5fbf; color: #fff; border-color: #1d5fbf; }
button:focus-visible, input:focus-visible { outline: 3px solid #f0a000; outline-offset: 2px; }
input[type=password], input[type=text] { font: inherit; padding: .4rem; width: 100%;
  box-sizing: border-box; margin: .3rem 0 1rem; }
.note { color: #555; font-size: .9rem; }
.done { color: #1a7f37; } .bad { color: #b42318; }
`;
