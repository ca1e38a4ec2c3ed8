/**
 * Approvals of `confirm` matches through `rsm stdio`: a client with elicitation gets a form
 * with no required fields (Accept runs, Decline/Cancel refuse, each call asks anew); a client
 * without it gets an approval URL that a real headless Chromium opens, approves, and the same
 * call then runs once; the link expires; forged posts are refused; all of it is audited.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser } from "puppeteer-core";
import type { ElicitRequest, ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { need, tempEnv, testIf } from "./support/env.ts";
import { startRsm, stopDaemon } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "/usr/bin/chromium"], true);

async function launch(): Promise<Browser> {
  const { default: puppeteer } = await import("puppeteer-core");
  return await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    headless: true,
  });
}

async function writePolicy(dir: string, text: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(dir, `policy.toml.${crypto.randomUUID()}`);
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, join(dir, "policy.toml"));
}

const POLICY = `
approval_ttl = "%TTL%"
[[rule]]
name = "ask first"
targets = ["prod-*"]
confirm = ["re:^echo CONFIRM"]
`;

testIf(missing, "confirm rules ask a person, by elicitation or on the approval page", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using tmp = await tempEnv();
  await writePolicy(tmp.rsmDir, POLICY.replace("%TTL%", "10m"));
  const asked: ElicitRequest["params"][] = [];
  const answers: ElicitResult["action"][] = [];
  const eli = await startRsm(tmp.env, {
    json: true,
    elicitation: { form: {}, url: {} },
    onElicit: (p) => {
      asked.push(p);
      return { action: answers.shift() ?? "cancel", content: {} };
    },
  });
  const plain = await startRsm(tmp.env, { json: true });
  let browser: Browser | undefined;
  try {
    await eli.callJson("ssh_connect", {
      id: "prod-1",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    const text = (r: { content: unknown }) =>
      (r.content as { text: string }[]).map((c) => c.text).join("");

    await t.step("with elicitation: a form without required fields; Accept runs", async () => {
      answers.push("accept");
      const r = await eli.callJson("ssh_exec", {
        session_id: "prod-1",
        command: "echo CONFIRM one",
        cwd: "/tmp",
      });
      assert.equal(r.stdout, "CONFIRM one\n");
      assert.equal(asked.length, 1);
      const form = asked[0] as ElicitRequest["params"] & {
        requestedSchema: { required?: string[] };
      };
      assert.equal(form.mode ?? "form", "form");
      assert.deepEqual(form.requestedSchema.required ?? [], []);
      assert.match(form.message, /target: prod-1/);
      assert.ok(form.message.includes(`user: ${user.name}`), form.message);
      assert.match(form.message, /cwd: \/tmp/);
      assert.match(form.message, /command: echo CONFIRM one/);
      assert.match(form.message, /"ask first"/);
      const none = await eli.callJson("ssh_exec", { session_id: "prod-1", command: "echo free" });
      assert.equal(none.stdout, "free\n");
      assert.equal(asked.length, 1, "commands no rule matches are not asked about");
    });

    await t.step("Decline and Cancel refuse; every call asks anew", async () => {
      answers.push("decline");
      const d = await eli.callRaw("ssh_exec", { session_id: "prod-1", command: "echo CONFIRM 2" });
      assert.equal(d.isError, true);
      assert.match(text(d), /declined/);
      answers.push("cancel");
      const c = await eli.callRaw("ssh_exec", { session_id: "prod-1", command: "echo CONFIRM 2" });
      assert.equal(c.isError, true);
      assert.match(text(c), /cancelled/);
      answers.push("accept", "accept");
      await eli.callJson("ssh_exec", { session_id: "prod-1", command: "echo CONFIRM 3" });
      await eli.callJson("ssh_exec", { session_id: "prod-1", command: "echo CONFIRM 3" });
      assert.equal(asked.length, 5, "an approval is used once");
    });

    let url = "";
    await t.step("without elicitation: the error carries an approval URL", async () => {
      const err = await plain.callError("ssh_exec", {
        session_id: "prod-1",
        command: "echo CONFIRM page",
      });
      const m = /(http:\/\/127\.0\.0\.1:\d+\/web\/login\?code=[0-9a-f]+)/.exec(err);
      assert.ok(m?.[1], err);
      url = m[1];
      assert.match(err, /same arguments/);
    });

    await t.step(
      "a forged request without the cookie or from a foreign origin is refused",
      async () => {
        const base = new URL(url).origin;
        // the one-time link in a script: it works once (and sets the cookie)
        const other = await plain.callError("ssh_exec", {
          session_id: "prod-1",
          command: "echo CONFIRM page",
        });
        const link = /(http:\/\/\S+code=[0-9a-f]+)/.exec(other)?.[1];
        assert.ok(link, other);
        const login = await fetch(link, { redirect: "manual" });
        await login.body?.cancel();
        assert.equal(login.status, 303);
        const cookie = login.headers.get("set-cookie")!;
        const sessionCookie = cookie.split(";")[0]!; // split returns at least one part
        assert.match(cookie, /HttpOnly/);
        assert.match(cookie, /SameSite=Strict/);
        const page = login.headers.get("location")!;
        const again = await fetch(link, { redirect: "manual" });
        await again.body?.cancel();
        assert.equal(again.status, 403, "a login link works once");
        const get = await fetch(base + page, { headers: { cookie: sessionCookie } });
        assert.equal(get.status, 200);
        assert.match(get.headers.get("content-security-policy")!, /default-src 'none'/);
        assert.equal(get.headers.get("cache-control"), "no-store");
        const html = await get.text();
        const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(html)![1];
        const post = (headers: Record<string, string>, body: string) =>
          fetch(base + page, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
            body,
            redirect: "manual",
          }).then(async (r) => (await r.body?.cancel(), r.status));
        assert.equal(await post({}, `csrf=${csrf}&decision=approve`), 401, "no cookie");
        assert.equal(
          await post({ cookie: sessionCookie }, "decision=approve"),
          403,
          "no CSRF token",
        );
        assert.equal(
          await post(
            { cookie: sessionCookie, origin: "http://evil.example" },
            `csrf=${csrf}&decision=approve`,
          ),
          403,
          "foreign origin",
        );
        const still = await plain.callError("ssh_exec", {
          session_id: "prod-1",
          command: "echo CONFIRM page",
        });
        assert.match(still, /Needs a person's approval/, "nothing forged got through");
      },
    );

    await t.step("a person approves in a real browser; the same call then runs once", async () => {
      browser = await launch();
      const page = await browser.newPage();
      await page.goto(url);
      assert.ok(page.url().includes("/web/approvals/"), page.url());
      const shown = await page.$eval("#command", (el) => el.textContent);
      assert.equal(shown, "echo CONFIRM page");
      const body = await page.$eval("main", (el) => el.textContent ?? "");
      assert.ok(body.includes("prod-1") && body.includes(user.name), body);
      await page.focus("#approve");
      await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
      const after = await page.$eval("main", (el) => el.textContent ?? "");
      assert.match(after, /Approved/, after);
      const changed = await plain.callError("ssh_exec", {
        session_id: "prod-1",
        command: "echo CONFIRM page!",
      });
      assert.match(changed, /Needs a person's approval/, "another argument needs its own");
      const r = await plain.callJson("ssh_exec", {
        session_id: "prod-1",
        command: "echo CONFIRM page",
      });
      assert.equal(r.stdout, "CONFIRM page\n");
      const once = await plain.callError("ssh_exec", {
        session_id: "prod-1",
        command: "echo CONFIRM page",
      });
      assert.match(once, /Needs a person's approval/, "used once");
      await page.close();
    });

    await t.step("the approval link expires (a shorter approval_ttl)", async () => {
      await writePolicy(tmp.rsmDir, POLICY.replace("%TTL%", "2s"));
      const err = await plain.callError("ssh_exec", {
        session_id: "prod-1",
        command: "echo CONFIRM late",
      });
      const link = /(http:\/\/\S+code=[0-9a-f]+)/.exec(err)?.[1];
      assert.ok(link, err);
      await new Promise((r) => setTimeout(r, 3000));
      const page = await browser!.newPage();
      await page.goto(link);
      const body = await page.$eval("main", (el) => el.textContent ?? "");
      assert.match(body, /expired/);
      await page.close();
    });

    await t.step("the audit log has every approval, refusal and expiry", async () => {
      await new Promise((r) => setTimeout(r, 1500));
      const lines = (await Deno.readTextFile(join(tmp.rsmDir, "audit.log"))).trim().split("\n")
        .map((l) => JSON.parse(l));
      const ev = (e: string, via?: string) =>
        lines.filter((l) => l.event === e && (!via || l.via === via)).length;
      assert.equal(ev("approval_approved", "elicitation"), 3);
      assert.equal(ev("approval_denied", "elicitation"), 1);
      assert.equal(ev("approval_cancelled", "elicitation"), 1);
      assert.equal(ev("approval_approved", "page"), 1);
      assert.ok(ev("approval_expired") >= 1);
      const approved = lines.find((l) => l.event === "approval_approved" && l.via === "page");
      assert.equal(approved.command, "echo CONFIRM page");
      assert.match(approved.rule, /ask first/);
    });
  } finally {
    await browser?.close().catch(() => {});
    await eli.close();
    await plain.close();
    await stopDaemon(tmp.env);
  }
});
