/**
 * The console's shell view: a real terminal (xterm.js in the page) fed from the shell's output
 * as it arrives, and take-over — what the person types goes to the shell, and while they type
 * the agent's writes wait (lib/term/watch.ts).
 */
import { Buffer } from "node:buffer";
import type { App } from "../app.ts";
import { RsmError } from "../errors.ts";
import { PERSON_QUIET_MS } from "../term/mod.ts";
import { esc, html, layout, securityHeaders, textError } from "./page.ts";
import { sseStream } from "./sse.ts";

/** Longest keystroke batch a page may send at once (bytes). */
const MAX_INPUT = 64 * 1024;

/** The page address of one shell. */
export function shellHref(kind: string, owner: string, id: string): string {
  const q = new URLSearchParams({ kind, owner, id });
  return `/web/console/shell?${q}`;
}

/** The shell a request names (`kind`, `owner`, `id` query parameters), or an error response. */
function target(app: App, url: URL) {
  const kind = url.searchParams.get("kind");
  const owner = url.searchParams.get("owner") ?? "";
  const id = url.searchParams.get("id") ?? "";
  if (kind === null || !app.shells.backends.has(kind)) {
    const kinds = app.shells.backends.kinds().join(" or ");
    return textError(400, `Cannot find the shell: kind must be ${kinds}`);
  }
  try {
    return { kind, owner, id, shell: app.shells.get(kind, owner, id) } as const;
  } catch (err) {
    const message = err instanceof RsmError ? err.message : "no such shell";
    return textError(404, `${message}. Back to the overview: /web/console`);
  }
}

/** `GET /web/console/shell`: the terminal page. */
export function shellPage(app: App, url: URL, csrf: string): Response {
  const t = target(app, url);
  if (t instanceof Response) return t;
  const q = new URLSearchParams({ kind: t.kind, owner: t.owner, id: t.id }).toString();
  const where = app.shells.where(t.kind, t.owner);
  const main = `<div class="shellbar"><h1>Shell ${esc(t.id)} <small>on ${esc(where)}</small></h1>` +
    `<span id="shell-state" class="state">connecting…</span>` +
    `<label><input type="checkbox" id="fit" checked> size follows the window</label>` +
    `<span id="size" class="size">${t.shell.rows}×${t.shell.cols}</span></div>` +
    `<p class="hint">Watching live. Click the terminal (or press Tab to it) and type to take ` +
    `over: your keys go to the shell, and the agent's writes wait while you type (and ` +
    `${
      PERSON_QUIET_MS / 1000
    } s after). The agent is told that a person typed. Shift+Esc leaves the terminal.</p>` +
    `<div id="term" class="term" role="application" aria-label="terminal of shell ${
      esc(t.id)
    }"></div>` +
    `<p><a href="/web/console">← Overview</a></p>`;
  return html(layout(main, {
    title: `Shell ${t.id}`,
    styles: ["xterm.css"],
    scripts: ["xterm.js", "addon-fit.js", "shell.js"],
    bodyClass: "shell-page",
    data: {
      stream: `/web/console/shell/stream?${q}`,
      input: `/web/console/shell/input?${q}`,
      resize: `/web/console/shell/resize?${q}`,
      csrf,
      rows: String(t.shell.rows),
      cols: String(t.shell.cols),
    },
  }));
}

/**
 * `GET /web/console/shell/stream`: server-sent events. `reset` carries the recent output (base64)
 * to draw the screen, then `out` every new chunk, and `state` when the shell ends or is lost.
 */
export function shellStream(app: App, url: URL): Response {
  const t = target(app, url);
  if (t instanceof Response) return t;
  const { shell } = t;
  return sseStream((send, close) => {
    send("reset", Buffer.from(shell.watch.recent()).toString("base64"));
    let lastState = "";
    const sendState = () => {
      const s = shell.closed ? (shell.lost ? "lost" : `exited ${shell.exitCode ?? ""}`) : "running";
      if (s !== lastState) send("state", s.trim());
      lastState = s;
    };
    sendState();
    const off = shell.watch.subscribe((chunk) => {
      send("out", Buffer.from(chunk).toString("base64"));
    });
    // the end of a shell is not an output chunk: look at its state every second
    const timer = setInterval(() => {
      sendState();
      if (shell.closed) close();
    }, 1000);
    return () => {
      off();
      clearInterval(timer);
    };
  });
}

/** `POST /web/console/shell/input`: a person's keystrokes (the body, UTF-8) go to the shell. */
export async function shellInput(app: App, url: URL, req: Request): Promise<Response> {
  const t = target(app, url);
  if (t instanceof Response) return t;
  const body = new Uint8Array(await req.arrayBuffer());
  if (body.length > MAX_INPUT) {
    return textError(413, `Cannot type ${body.length} bytes at once: at most ${MAX_INPUT}`);
  }
  if (body.length === 0) {
    return new Response(null, { status: 204, headers: securityHeaders("text/plain") });
  }
  const stream = t.shell.stream;
  if (t.shell.closed || !stream) {
    return textError(409, "Cannot type into this shell: it has ended or is re-attaching");
  }
  // Audited once per spell of typing, never the keys (a person may type a password).
  if (!t.shell.watch.personActive()) {
    app.audit.record({ tool: "console_take_over", target: `${t.owner}/${t.id}` });
  }
  t.shell.watch.personTyped();
  // Straight to the terminal, not queued behind an agent's run: a person's Ctrl-C must arrive
  // while the agent waits for a command.
  await stream.write(body);
  return new Response(null, { status: 204, headers: securityHeaders("text/plain") });
}

/** `POST /web/console/shell/resize` with `{rows, cols}`: the terminal follows the page. */
export async function shellResize(app: App, url: URL, req: Request): Promise<Response> {
  const t = target(app, url);
  if (t instanceof Response) return t;
  let size: { rows?: unknown; cols?: unknown };
  try {
    size = JSON.parse(await req.text());
  } catch {
    return textError(400, "Cannot resize: the body must be JSON {rows, cols}");
  }
  try {
    await t.shell.resize(Number(size.rows), Number(size.cols));
  } catch (err) {
    return textError(400, (err as Error).message);
  }
  return new Response(null, { status: 204, headers: securityHeaders("text/plain") });
}
