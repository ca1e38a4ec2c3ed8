/** The daemon's page access in-process: one-time login links, the cookie, CSRF and origin checks. */
import assert from "node:assert/strict";
import { COOKIE, WebAuth } from "../lib/http/web/auth.ts";

const BASE = "http://127.0.0.1:4000";

function login(auth: WebAuth, next = "/web/approvals/x") {
  const link = auth.link(next, 60_000);
  return { link, res: auth.login(new URL(link)) };
}

Deno.test("a login link works once and sets an HttpOnly SameSite=Strict cookie", () => {
  const auth = new WebAuth();
  auth.base = BASE;
  const { link, res } = login(auth);
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/web/approvals/x");
  const cookie = res.headers.get("set-cookie")!;
  assert.match(cookie, new RegExp(`^${COOKIE}=[0-9a-f]{64}; Path=/web; HttpOnly; SameSite=Strict`));
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(auth.login(new URL(link)).status, 403, "used up");
  assert.equal(auth.login(new URL(`${BASE}/web/login?code=nope`)).status, 403);
});

Deno.test("an expired login link is refused", () => {
  const auth = new WebAuth();
  auth.base = BASE;
  const link = auth.link("/web/", 0);
  assert.equal(auth.login(new URL(link)).status, 403);
});

Deno.test("a session comes only from its cookie; forms need its CSRF token and our origin", () => {
  const auth = new WebAuth();
  auth.base = BASE;
  const cookie = login(auth).res.headers.get("set-cookie")!.split(";")[0]!; // split returns at least one part
  const req = (headers: Record<string, string>) =>
    new Request(`${BASE}/web/approvals/x`, { method: "POST", headers });
  assert.equal(auth.session(req({})), null);
  assert.equal(auth.session(req({ cookie: `${COOKIE}=${"0".repeat(64)}` })), null);
  const s = auth.session(req({ cookie }))!;
  assert.ok(s);
  const form = (csrf?: string) => {
    const f = new FormData();
    if (csrf !== undefined) f.set("csrf", csrf);
    return f;
  };
  assert.ok(auth.formOk(req({ cookie, origin: BASE }), s, form(s.csrf)));
  assert.ok(!auth.formOk(req({ cookie, origin: BASE }), s, form()));
  assert.ok(!auth.formOk(req({ cookie, origin: BASE }), s, form("0".repeat(32))));
  assert.ok(!auth.formOk(req({ cookie, origin: "http://127.0.0.1:5000" }), s, form(s.csrf)));
});
