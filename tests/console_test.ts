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

/** A page logged in to the console (through `rsm console --print`'s one-time link). */
async function consolePage(w: World): Promise<Page> {
  const page = await w.browser.newPage();
  await page.setViewport({ width: 1100, height: 700 });
  await page.setExtraHTTPHeaders({ authorization: `Bearer ${w.handle.token}` });
  await page.goto(`${w.handle.url}/web/console`, { waitUntil: "load" });
  return page;
}

const sh1 = { session_id: "box", shell_id: "sh1" };
const shellUrl = (w: World) => `${w.handle.url}/web/console/shell?kind=ssh&owner=box&id=sh1`;

testIf(missing, "the console shows and live-updates sessions, forwards and shells", async () => {
  await using w = await world();
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
});

testIf(missing, "the shell view shows an agent's run within a second", async () => {
  await using w = await world();
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
  await page.close();
});

testIf(missing, "a person takes over a shell from the console", async () => {
  await using w = await world();
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
  await page.close();
});

// keep the imported helper in use until the login link lands
void rsmCli;
