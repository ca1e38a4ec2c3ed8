/**
 * The daemon's pages for a person: approve or refuse a call (`/web/approvals/ID`), type a
 * secret (`/web/secrets/ID`), and a list of what waits (`/web/`). Plain server-rendered HTML
 * with forms (no script, nothing from elsewhere), usable with the keyboard alone. Access is
 * through {@link WebAuth}: a one-time link sets the session cookie; POSTs need its CSRF token.
 */
import type { App } from "../../app.ts";
import { esc, page, pageHeaders, STYLE, type WebSession } from "./auth.ts";

const MAX_FORM = 64 * 1024;

/** Handles every `/web/…` request (the Host/Origin check has already passed). */
export async function handleWeb(app: App, req: Request, url: URL): Promise<Response> {
  const path = url.pathname;
  if (path === "/web/style.css") {
    return new Response(STYLE, { headers: pageHeaders("text/css; charset=utf-8") });
  }
  if (path === "/web/login") {
    if (req.method !== "GET") return plain(405, "use GET");
    return app.web.login(url);
  }
  const session = app.web.session(req);
  if (!session) {
    await req.body?.cancel().catch(() => {});
    return html(
      401,
      "Not signed in",
      "<p>Open the one-time link rsm gave you (it sets a cookie for this browser). " +
        "Links are printed in the tool's message or opened by your MCP client.</p>",
    );
  }
  if (path === "/web/console" || path.startsWith("/web/console/")) {
    const { consoleOf } = await import("../../console/mod.ts"); // xterm.js: loaded on first use
    return await consoleOf(app).handle(req, url, session);
  }
  let form: FormData | undefined;
  if (req.method === "POST") {
    const len = Number(req.headers.get("content-length") ?? "0");
    if (len > MAX_FORM) return plain(413, "form too large");
    try {
      form = await req.formData();
    } catch {
      return plain(400, "not a form");
    }
    if (!app.web.formOk(req, session, form)) {
      return html(
        403,
        "Refused",
        "<p>This form did not come from this page (missing or wrong CSRF token, or a " +
          "foreign origin). Reload the page and try again.</p>",
      );
    }
  } else if (req.method !== "GET") return plain(405, "use GET or POST");

  let m = /^\/web\/approvals\/([0-9a-f-]{36})$/.exec(path);
  if (m) return approvalPage(app, m[1]!, session, form);
  m = /^\/web\/secrets\/([0-9a-f-]{36})$/.exec(path);
  if (m) return secretPage(app, m[1]!, session, form);
  if (path === "/web/" || path === "/web") return indexPage(app);
  return html(404, "Not found", `<p>No page ${esc(path)}.</p>`);
}

function html(status: number, title: string, body: string): Response {
  return new Response(page(title, body), { status, headers: pageHeaders() });
}

function plain(status: number, text: string): Response {
  return new Response(text, { status, headers: pageHeaders("text/plain; charset=utf-8") });
}

const csrfField = (s: WebSession) => `<input type="hidden" name="csrf" value="${esc(s.csrf)}">`;

function approvalPage(app: App, id: string, s: WebSession, form?: FormData): Response {
  const approvals = app.guard.approvals;
  const a = approvals.get(id);
  if (!a) return html(404, "No such request", "<p>This approval request does not exist.</p>");
  let note = "";
  if (form) {
    const decision = form.get("decision");
    if (decision !== "approve" && decision !== "deny") return plain(400, "decision?");
    try {
      approvals.decide(id, decision === "approve", "page");
      note = decision === "approve"
        ? `<p class="done" id="result">Approved. The same call will run once when the agent ` +
          `makes it again.</p>`
        : `<p class="bad" id="result">Refused.</p>`;
    } catch (err) {
      note = `<p class="bad" id="result">${esc((err as Error).message)}.</p>`;
    }
  }
  const details = `<dl>
<dt>Tool</dt><dd><code>${esc(a.tool)}</code></dd>
<dt>Target</dt><dd><code>${esc(a.target)}</code></dd>
<dt>User</dt><dd>${esc(a.user ?? "(the session's user)")}</dd>
<dt>Directory</dt><dd>${esc(a.cwd ?? "(default)")}</dd>
<dt>Rule</dt><dd>${esc(a.rule)}</dd>
</dl><p>Command, exactly:</p><pre id="command">${esc(a.command)}</pre>`;
  const state = a.state === "pending"
    ? `<p class="note">Waiting for your decision until ` +
      `${esc(new Date(a.expires).toLocaleTimeString())}.</p>` +
      `<form method="post">${csrfField(s)}` +
      `<button class="go" name="decision" value="approve" id="approve">Approve once</button>` +
      `<button name="decision" value="deny" id="deny">Refuse</button></form>`
    : `<p id="state" class="${a.state === "approved" ? "done" : "bad"}">This request is ` +
      `${esc(a.state)}.</p>`;
  return html(200, "Approve a command?", note + details + (note ? "" : state));
}

function secretPage(app: App, id: string, s: WebSession, form?: FormData): Response {
  const ask = app.secretAsks.get(id);
  if (!ask) return html(404, "No such request", "<p>This secret request does not exist.</p>");
  const { need } = ask;
  if (form) {
    const value = form.get("secret");
    if (typeof value !== "string" || value === "") {
      return html(400, need.label, "<p class='bad'>Nothing was entered.</p>");
    }
    try {
      app.secretAsks.submit(id, value);
    } catch (err) {
      return html(
        409,
        need.label,
        `<p class="bad" id="result">${esc((err as Error).message)}.</p>`,
      );
    }
    return html(
      200,
      "Received",
      `<p class="done" id="result">rsm has it (in memory only). You can close this tab.</p>`,
    );
  }
  if (ask.state !== "pending") {
    return html(200, need.label, `<p id="state">This request is ${esc(ask.state)}.</p>`);
  }
  const question = need.prompt
    ? `<p>The server asks: <code id="prompt">${esc(need.prompt.trim())}</code></p>`
    : "";
  return html(
    200,
    need.label,
    `${question}<form method="post" autocomplete="off">${csrfField(s)}` +
      `<label for="secret">${esc(need.kind === "answer" ? "Answer" : "Secret")}</label>` +
      `<input type="password" id="secret" name="secret" autofocus required ` +
      `autocomplete="off" spellcheck="false">` +
      `<button class="go" type="submit" id="send">Send to rsm</button></form>` +
      `<p class="note">It goes only to the rsm daemon on this machine, is kept in memory, and ` +
      `is never shown to the model or written to disk.</p>`,
  );
}

function indexPage(app: App): Response {
  const rows = app.guard.approvals.pending().map((a) =>
    `<li><a href="/web/approvals/${a.id}">${esc(a.tool)} on ${esc(a.target)}: ` +
    `<code>${esc(a.command.slice(0, 120))}</code></a></li>`
  );
  return html(
    200,
    "rsm",
    rows.length
      ? `<p>Waiting for approval:</p><ul>${rows.join("")}</ul>`
      : "<p>Nothing waits for approval.</p>",
  );
}
