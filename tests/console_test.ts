/**
 * The web console end to end: rsm stdio (SDK client) → daemon → real OpenSSH sshd, with the
 * pages driven in a real headless Chromium (Debian's `chromium`) through puppeteer-core.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { need, ROOT, testIf, waitFor } from "./support/env.ts";
import { readHandle, rsmCli, rsmSession } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { consoleSession } from "./support/console.ts";

const missing = await need(["sshd", "chromium"], true);

/** Where the README's screenshots go when RSM_CONSOLE_SCREENSHOTS=1 (else a temp dir). */
const SHOT_DIR = Deno.env.get("RSM_CONSOLE_SCREENSHOTS") === "1" ? join(ROOT, "docs") : null;

/** A slow HTTP download (for byte counters that move): `size` bytes over about `ms`. */
function slowServer(size: number, ms: number) {
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  const steps = Math.ceil(size / chunk.length);
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let i = 0;
    let timer: ReturnType<typeof setInterval>;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        timer = setInterval(() => {
          if (i++ >= steps) {
            clearInterval(timer);
            c.close();
          } else c.enqueue(chunk);
        }, ms / steps);
      },
      cancel() {
        clearInterval(timer);
      },
    });
    return new Response(body, { headers: { "content-length": String(steps * chunk.length) } });
  });
}

async function launch(): Promise<Browser> {
  const { default: puppeteer } = await import("puppeteer-core");
  return await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    headless: true,
  });
}

/** The text of the shell view's terminal buffer (every line, trailing blanks trimmed). */
function termText(page: Page): Promise<string> {
  return page.evaluate(() => {
    // deno-lint-ignore no-explicit-any
    const t = (globalThis as any).rsmTerm;
    if (!t) return "";
    const b = t.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? "");
    return out.join("\n");
  });
}

/** A user, sshd, an rsm daemon with session "box", shell "sh1", forward "web", and a browser. */
async function world() {
  const user = await createUser();
  const sshd = await startSshd();
  const server = slowServer(24 << 20, 4000);
  const rsm = await rsmSession({ json: true });
  const browser = await launch().catch(async (err) => {
    await rsm[Symbol.asyncDispose]();
    throw err;
  });
  const dispose = async () => {
    await browser.close().catch(() => {});
    await rsm[Symbol.asyncDispose]();
    await server.shutdown();
    await sshd[Symbol.asyncDispose]();
    await user.remove();
  };
  try {
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    await rsm.callJson("ssh_shell_open", { session_id: "box", shell_id: "sh1", cols: 100 });
    const fwd = await rsm.callJson("ssh_forward_local", {
      session_id: "box",
      forward_id: "web",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: server.addr.port,
    });
    const handle = (await readHandle(rsm.env))!;
    return { user, sshd, rsm, browser, fwd, handle, [Symbol.asyncDispose]: dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

type World = Awaited<ReturnType<typeof world>>;

/** `rsm console --print`: exit 0 and one login link on stdout. */
async function consoleLink(w: World): Promise<string> {
  const r = await rsmCli(w.rsm.env, ["console", "--print"]);
  assert.equal(r.code, 0, r.stderr);
  const link = r.stdout.trim();
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/web\/login\?code=[0-9a-f]{48}$/);
  return link;
}

/** A page logged in to the console through a fresh one-time link. */
async function consolePage(w: World): Promise<Page> {
  const page = await w.browser.newPage();
  await page.setViewport({ width: 1100, height: 700 });
  const r = await page.goto(await consoleLink(w), { waitUntil: "load" });
  assert.equal(r?.status(), 200);
  assert.equal(new URL(page.url()).pathname, "/web/console");
  return page;
}

/** A raw HTTP/1.1 request (any Host header) to the daemon; returns the status code. */
async function rawStatus(port: number, lines: string[]): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode([...lines, "Connection: close", "", ""].join("\r\n")),
    );
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    return Number(/^HTTP\/1\.1 (\d+)/.exec(new TextDecoder().decode(buf.subarray(0, n ?? 0)))?.[1]);
  } finally {
    conn.close();
  }
}

const sh1 = { session_id: "box", shell_id: "sh1" };
const shellUrl = (w: World) => `${w.handle.url}/web/console/shell?kind=ssh&owner=box&id=sh1`;

/** Acceptance 1: the link, the overview, and everything that must be refused. */
async function loginAndRefusals(w: World) {
  // without --print and without a browser rsm may start: the link and what to do with it
  const plain = await rsmCli({ ...w.rsm.env, DISPLAY: "", WAYLAND_DISPLAY: "" }, ["console"]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^http:\/\/127\.0\.0\.1:\d+\/web\/login\?code=[0-9a-f]{48}\n$/);
  assert.match(plain.stderr, /Open this link in a browser on this machine; it works once/);
  const link = await consoleLink(w);
  const port = Number(new URL(w.handle.url).port);
  const ctx = await w.browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1100, height: 700 });
  const first = await page.goto(link, { waitUntil: "load" });
  assert.equal(first?.status(), 200);
  assert.equal(new URL(page.url()).pathname, "/web/console");
  const main = await page.$eval("main", (m) => (m as unknown as { innerText: string }).innerText);
  assert.match(main, /box\s+\S+@127\.0\.0\.1:\d+\s+connected/);
  assert.match(main, /web\s+box\s+-L 127\.0\.0\.1:\d+:127\.0\.0\.1:\d+/);
  assert.match(main, /sh1\s+session box\s+running/);
  const cookie = (await ctx.cookies()).find((c) => c.name === "rsm_web");
  assert.ok(cookie, "the link set the login cookie");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  const csrf = await page.$eval("body", (b) => b.getAttribute("data-csrf") ?? "");

  // the link is dead after one use, even in another browser
  const other = await w.browser.createBrowserContext();
  const again = await (await other.newPage()).goto(link, { waitUntil: "load" });
  assert.equal(again?.status(), 403);
  // no cookie: refused (page, event stream, shell stream, keystrokes)
  const bare = await other.newPage();
  for (
    const path of [
      "/web/console",
      "/web/console/events",
      "/web/console/shell?kind=ssh&owner=box&id=sh1",
    ]
  ) {
    assert.equal((await bare.goto(`${w.handle.url}${path}`))?.status(), 401, path);
  }
  await other.close();
  const withCookie = `Cookie: rsm_web=${cookie.value}`;
  assert.equal(
    await rawStatus(port, ["GET /web/console HTTP/1.1", `Host: 127.0.0.1:${port}`, withCookie]),
    200,
  );
  // a foreign Host (DNS rebinding) or a foreign Origin: refused even with the cookie
  assert.equal(
    await rawStatus(port, ["GET /web/console HTTP/1.1", `Host: evil.example:${port}`, withCookie]),
    403,
  );
  assert.equal(
    await rawStatus(port, [
      "GET /web/console/events HTTP/1.1",
      `Host: 127.0.0.1:${port}`,
      "Origin: http://evil.example",
      withCookie,
    ]),
    403,
  );
  const input = "/web/console/shell/input?kind=ssh&owner=box&id=sh1";
  const post = (extra: string[]) =>
    rawStatus(port, [
      `POST ${input} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      withCookie,
      "Content-Length: 0",
      ...extra,
    ]);
  assert.equal(await post(["Origin: http://evil.example", `x-rsm-csrf: ${csrf}`]), 403);
  assert.equal(await post([`Origin: http://127.0.0.1:${port}`]), 403, "no CSRF token");
  assert.equal(await post([`Origin: http://127.0.0.1:${port}`, "x-rsm-csrf: 00"]), 403);
  assert.equal(await post([`Origin: http://127.0.0.1:${port}`, `x-rsm-csrf: ${csrf}`]), 204);
  // every response says: not cached, strict CSP
  const res = await page.goto(`${w.handle.url}/web/console`);
  assert.equal(res?.headers()["cache-control"], "no-store");
  assert.match(res?.headers()["content-security-policy"] ?? "", /script-src 'self'/);
  await ctx.close();
}

/** Acceptance 1 and 2: what the test made through MCP is there, and counters move live. */
async function overviewLive(w: World) {
  const page = await consolePage(w);
  const text = () => page.$eval("main", (m) => (m as unknown as { innerText: string }).innerText);
  const first = await text();
  assert.match(first, /box\s+\S+@127\.0\.0\.1:\d+\s+connected/);
  assert.match(first, /web\s+box\s+-L 127\.0\.0\.1:\d+:127\.0\.0\.1:\d+/);
  assert.match(first, /sh1\s+session box\s+running/);
  if (SHOT_DIR) {
    await page.screenshot({ path: join(SHOT_DIR, "console-overview.png") });
  }

  // a download through the forward: its byte counter moves while it runs, without a reload
  const counter = () =>
    page.$eval(
      "#s-forwards tbody tr td:nth-child(6) .num",
      (e) => Number(e.getAttribute("data-bytes")),
    );
  assert.equal(await counter(), 0);
  using client = Deno.createHttpClient({});
  const download = fetch(`http://127.0.0.1:${w.fwd.bind_port}/`, { client })
    .then((r) => r.arrayBuffer());
  const seen = new Set<number>();
  await waitFor(
    "three different byte counts during the download",
    async () => {
      const n = await counter();
      if (n > 0 && n < 24 << 20) seen.add(n);
      return seen.size >= 3;
    },
    15_000,
    200,
  );
  assert.equal((await download).byteLength, 24 << 20);
  await waitFor("the final byte count", async () => (await counter()) >= 24 << 20, 5_000);
  await page.close();
}

/** Acceptance 2: an agent's run appears in the open shell view within a second. */
async function shellLive(w: World) {
  const page = await consolePage(w);
  await page.goto(shellUrl(w), { waitUntil: "load" });
  await page.waitForFunction('document.getElementById("live")?.textContent === "live"');
  const word = `hello-${crypto.getRandomValues(new Uint32Array(1))[0]}`;
  const r = await w.rsm.callJson("ssh_shell_run", { ...sh1, command: `echo ${word}` });
  assert.equal(r.output, `${word}\n`);
  const t0 = Date.now();
  await waitFor(
    "the run's output in the page's terminal",
    async () => {
      return new RegExp(`^${word}$`, "m").test(await termText(page));
    },
    1000,
    25,
  );
  assert.ok(Date.now() - t0 <= 1000);
  if (SHOT_DIR) {
    await w.rsm.callJson("ssh_shell_run", { ...sh1, command: "uname -sr; ls -la / | head -8" });
    await new Promise((r) => setTimeout(r, 300));
    await page.screenshot({ path: join(SHOT_DIR, "console-shell.png") });
  }
  // the size stays the shell's until the person asks it to follow the window
  const size = async () =>
    (await w.rsm.callJson("ssh_shell_run", { ...sh1, command: "stty size" })).output.trim();
  assert.equal(await size(), "24 100");
  await page.click("#fit");
  await page.setViewport({ width: 800, height: 600 });
  const shown = await waitFor("the page's size in the toolbar", async () => {
    const t = await page.$eval("#size", (e) => e.textContent ?? "");
    return t !== "24×100" ? t : null;
  }, 5000);
  const [rows, cols] = shown.split("×");
  await waitFor(
    "the shell to take the page's size",
    async () => (await size()) === `${rows} ${cols}`,
    5000,
    200,
  );
  await page.close();
}

/** Acceptance 3: typing in the page reaches the shell; agent writes wait or fail; reads say so. */
async function takeOver(w: World) {
  const page = await consolePage(w);
  await page.goto(shellUrl(w), { waitUntil: "load" });
  await page.waitForFunction('document.getElementById("live")?.textContent === "live"');
  // drain what the shell printed so far (prompt)
  await w.rsm.callJson("ssh_shell_read", { ...sh1, timeout_ms: 500 });

  // typed in the page: reaches the remote shell
  const mark = `taken-${crypto.getRandomValues(new Uint32Array(1))[0]}`;
  await page.click("#term");
  await page.keyboard.type(`echo ${mark} > ~/person.txt; echo done-${mark}\n`, { delay: 5 });
  const read = await w.rsm.callJson("ssh_shell_read", {
    ...sh1,
    until: `^done-${mark}`,
    timeout_ms: 10_000,
    strip_ansi: true,
  });
  assert.equal(read.until_matched, true);
  assert.match(read.person_typed, /a person typed in this shell/);
  assert.equal(
    (await Deno.readTextFile(join(w.user.home, "person.txt"))).trim(),
    mark,
    "the file the person's command wrote is on the server",
  );
  // reported once
  const again = await w.rsm.callJson("ssh_shell_read", { ...sh1, timeout_ms: 200 });
  assert.equal(again.person_typed, undefined);

  // an agent write while the person keeps typing fails with a clear message
  let typing = true;
  const typist = (async () => {
    await page.keyboard.type("# ");
    while (typing) {
      await page.keyboard.type("x");
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  const started = Date.now();
  const err = await w.rsm.callError("ssh_shell_write", { ...sh1, data: "echo agent\n" });
  assert.match(err, /a person is typing in this shell/);
  assert.ok(Date.now() - started < 15_000);
  const runErr = await w.rsm.callError("ssh_shell_run", { ...sh1, command: "echo agent" });
  assert.match(runErr, /a person is typing in this shell/);
  typing = false;
  await typist;
  await page.keyboard.press("Enter"); // the person ends their line (a comment)

  // right after the person stops, an agent write waits for them, then goes through
  const t0 = Date.now();
  const ok = await w.rsm.callJson("ssh_shell_run", { ...sh1, command: "echo agent-after" });
  assert.equal(ok.output, "agent-after\n");
  assert.ok(Date.now() - t0 >= 1000, `waited for the person (${Date.now() - t0} ms)`);
  assert.match(ok.person_typed, /a person typed/);

  // the audit log names the take-over but never the keys
  const audit = await Deno.readTextFile(join(w.rsm.tmp.rsmDir, "audit.log"));
  assert.match(audit, /"tool":"console_take_over","target":"box\/sh1"/);
  assert.ok(!audit.includes(mark), "typed keys are not in the audit log");
  // the overview counts the open view, and forgets it once the page is gone
  const web = await consoleSession(w.handle);
  const overview = async () => await (await web.fetch("/web/console")).text();
  assert.match(await overview(), /1 viewer/);
  await page.close();
  await waitFor(
    "the closed view to stop watching",
    async () => !/viewer/.test(await overview()),
    5000,
    200,
  );
}

/** Acceptance 2: a job's output grows on its page while it runs. */
async function jobLive(w: World) {
  const page = await consolePage(w); // logged in first: the job must still run when it opens
  const first = await w.rsm.callJson("ssh_exec", {
    session_id: "box",
    command: "for i in $(seq 30); do echo line-$i; sleep 0.5; done",
    wait_ms: 500,
  });
  assert.equal(first.state, "running");
  // the overview lists it; its link opens the job's page
  await page.waitForSelector(`#s-jobs a[href*="${first.job_id}"]`, { timeout: 5000 });
  await Promise.all([page.waitForNavigation(), page.click(`#s-jobs a[href*="${first.job_id}"]`)]);
  const output = () => page.$eval("#job-output", (e) => e.textContent ?? "");
  const lengths: number[] = [];
  await waitFor(
    "the job's output to grow three times on its page",
    async () => {
      const n = (await output()).length;
      if (n > (lengths.at(-1) ?? 0)) lengths.push(n);
      return lengths.length >= 3;
    },
    15_000,
    100,
  );
  await page.waitForFunction(
    'document.getElementById("job-state")?.textContent === "exited 0"',
    { timeout: 40_000 },
  );
  const all = Array.from({ length: 30 }, (_, i) => `line-${i + 1}\n`).join("");
  assert.equal(await output(), all);
  await page.close();
}

/** Acceptance 4: an approval and a password a person must give, from the console. */
async function approvals(w: World) {
  const dir = w.rsm.tmp.rsmDir;
  await Deno.writeTextFile(
    join(dir, "policy.toml.tmp"),
    '[[rule]]\ntargets = ["box"]\nconfirm = ["re:^echo approve-me"]\n',
  );
  await Deno.rename(join(dir, "policy.toml.tmp"), join(dir, "policy.toml"));
  const call = { session_id: "box", command: "echo approve-me" };
  const refused = await waitFor(
    "the policy to ask for approval",
    async () => {
      const r = await w.rsm.callRaw("ssh_exec", call);
      const text = (r.content as { text: string }[]).map((c) => c.text).join("");
      return r.isError && /\/web\/login\?code=/.test(text) ? text : null;
    },
    10_000,
    300,
  );
  assert.match(refused ?? "", /approv/i);
  // the person opens the console (not the link from the error) and decides there
  const page = await consolePage(w);
  await page.waitForSelector("#s-waiting a.approval", { timeout: 5000 });
  const waiting = await page.$eval("#s-waiting", (e) => e.textContent ?? "");
  assert.match(waiting, /echo approve-me/);
  await Promise.all([page.waitForNavigation(), page.click("#s-waiting a.approval")]);
  assert.match(await page.$eval("#command", (e) => e.textContent ?? ""), /^echo approve-me$/);
  await Promise.all([page.waitForNavigation(), page.click("#approve")]);
  assert.match(await page.$eval("#result", (e) => e.textContent ?? ""), /Approved/);
  const ran = await w.rsm.callJson("ssh_exec", call);
  assert.equal(ran.stdout, "approve-me\n");
  // back on the overview, nothing waits any more
  await page.goto(`${w.handle.url}/web/console`);
  assert.match(await page.$eval("#s-waiting", (e) => e.textContent ?? ""), /Nothing waits/);
  await Deno.remove(join(dir, "policy.toml"));

  // a password only a person knows: the request is listed on the console; typed there
  const spec = { user: w.user.name, addresses: [w.sshd.address], auth: { use_agent: false } };
  const asked = await w.rsm.callRaw("ssh_connect", { id: "pw", spec });
  assert.equal(asked.isError, true);
  await page.goto(`${w.handle.url}/web/console`);
  await page.waitForSelector("#s-waiting a.secret", { timeout: 5000 });
  assert.match(
    await page.$eval("#s-waiting", (e) => e.textContent ?? ""),
    new RegExp(`The password of ${w.user.name}@`),
  );
  await Promise.all([page.waitForNavigation(), page.click("#s-waiting a.secret")]);
  await page.focus("#secret");
  await page.keyboard.type(w.user.password);
  await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  assert.match(await page.$eval("#result", (e) => e.textContent ?? ""), /rsm has it/);
  const info = await w.rsm.callJson("ssh_connect", { id: "pw", spec });
  assert.equal(info.state, "connected");
  await w.rsm.call("ssh_disconnect", { id: "pw" });
  await page.close();
}

testIf(
  missing,
  "the web console: login, live overview, shell view, take-over, jobs and approvals",
  async (t) => {
    await using w = await world();
    const steps: [string, (w: World) => Promise<void>][] = [
      [
        "a one-time link logs in; no cookie, foreign Host or Origin, or no CSRF token is refused",
        loginAndRefusals,
      ],
      [
        "the overview shows the session, forward and shell, and byte counters move live",
        overviewLive,
      ],
      ["an agent's ssh_shell_run appears in the open shell view within a second", shellLive],
      [
        "a person takes over: keys reach the shell, agent writes wait or fail, reads say so",
        takeOver,
      ],
      ["a job's output grows on its page while it runs", jobLive],
      [
        "an approval the policy asks for is decided, and a password typed, from the console",
        approvals,
      ],
    ];
    let failed = 0;
    for (const [name, fn] of steps) if (!(await t.step(name, () => fn(w)))) failed++;
    assert.equal(failed, 0, `${failed} step(s) failed`);
  },
);
