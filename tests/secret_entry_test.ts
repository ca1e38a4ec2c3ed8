/**
 * Secrets typed by a person through `rsm stdio`: a client with URL-mode elicitation is sent a
 * link to the daemon's page; a real headless Chromium types the password, a one-time code
 * (an sshd whose PAM stack asks a second OATH question) or the sudo password there; the call
 * then succeeds, and the secret is in no tool result, log, audit line, state.json or process
 * list. A client without elicitation gets the page's URL in the error; the next call uses it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser } from "puppeteer-core";
import type { ElicitRequest, ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { need, run, tempEnv, testIf } from "./support/env.ts";
import { startRsm, stopDaemon } from "./support/mcp.ts";
import { createUser, randomHex, startSshd } from "./support/sshd.ts";
import { psSampler, scanForSecrets } from "./support/secrets_scan.ts";

const missing = await need(
  ["sshd", "ssh-keygen", "useradd", "sudo", "oathtool", "/usr/bin/chromium"],
  true,
) ?? (await Deno.stat("/lib/x86_64-linux-gnu/security/pam_oath.so").then(() =>
  null, () =>
  "needs libpam-oath"));

async function launch(): Promise<Browser> {
  const { default: puppeteer } = await import("puppeteer-core");
  return await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    headless: true,
  });
}

/** Opens `url` (a one-time link), types `secret` with the keyboard and sends it. */
async function typeOnPage(browser: Browser, url: string, secret: string): Promise<string> {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    const shown = await page.$eval("main", (el) => el.textContent ?? "");
    await page.focus("#secret");
    await page.keyboard.type(secret);
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    const result = await page.$eval("#result", (el) => el.textContent ?? "");
    assert.match(result, /rsm has it/);
    return shown;
  } finally {
    await page.close();
  }
}

testIf(
  missing,
  "a person types passwords, one-time codes and sudo passwords on the page",
  async (t) => {
    await using user = await createUser({ sudo: true });
    await using sshd = await startSshd();
    // a second sshd: a key, then a one-time code asked by its own PAM stack (pam_oath)
    const service = `rsmotp${randomHex(6)}`;
    const oathKey = randomHex(40);
    const usersFile = `/etc/rsm-${service}.oath`;
    await Deno.writeTextFile(usersFile, `HOTP/T30 ${user.name} - ${oathKey}\n`, { mode: 0o600 });
    await Deno.writeTextFile(
      `/etc/pam.d/${service}`,
      `auth required pam_oath.so usersfile=${usersFile} window=4 digits=6\n` +
        "account required pam_permit.so\nsession required pam_permit.so\n",
    );
    await using otpd = await startSshd({
      programName: service,
      extraConfig: "UsePAM yes\nKbdInteractiveAuthentication yes\n" +
        "AuthenticationMethods publickey,keyboard-interactive",
    });
    await using tmp = await tempEnv();
    const ps = psSampler(500);
    let browser: Browser | undefined;
    const results: string[] = [];
    const asked: ElicitRequest["params"][] = [];
    // what the browser types when the client is sent to a page
    let typeNext: (() => Promise<string>) | undefined;
    const shownPages: string[] = [];
    const eli = await startRsm(tmp.env, {
      json: true,
      elicitation: { form: {}, url: {} },
      onElicit: async (p): Promise<ElicitResult> => {
        asked.push(p);
        if (p.mode !== "url" || !typeNext) return { action: "decline" };
        const secret = await typeNext();
        shownPages.push(await typeOnPage(browser!, (p as { url: string }).url, secret));
        return { action: "accept" };
      },
    });
    const plain = await startRsm(tmp.env, { json: true });
    const otps: string[] = [];
    try {
      browser = await launch();
      const call = async (c: typeof eli, name: string, args: Record<string, unknown>) => {
        const r = await c.callRaw(name, args);
        const text = (r.content as { text: string }[]).map((x) => x.text).join("");
        results.push(text);
        if (r.isError) throw new Error(`${name}: ${text}`);
        return JSON.parse(text);
      };

      await t.step("a password-only account: the password is typed on the page", async () => {
        typeNext = () => Promise.resolve(user.password);
        const info = await call(eli, "ssh_connect", {
          id: "pw",
          spec: { user: user.name, addresses: [sshd.address], auth: { use_agent: false } },
        });
        assert.equal(info.state, "connected");
        const url = asked.find((a) => a.mode === "url") as { url: string; message: string };
        assert.match(url.url, /^http:\/\/127\.0\.0\.1:\d+\/web\/login\?code=/);
        assert.ok(shownPages[0]?.includes(`The password of ${user.name}@`), shownPages[0]);
        const r = await call(eli, "ssh_exec", { session_id: "pw", command: "whoami" });
        assert.equal(r.stdout, `${user.name}\n`);
      });

      await t.step("a one-time code asked after the key is typed on the page", async () => {
        typeNext = async () => {
          const code = (await run("oathtool", ["--totp", oathKey])).stdout.trim();
          otps.push(code);
          return code;
        };
        const before = asked.length;
        const info = await call(eli, "ssh_connect", {
          id: "otp",
          spec: {
            user: user.name,
            addresses: [otpd.address],
            auth: { key_path: user.keyPath, use_agent: false },
          },
        });
        assert.equal(info.state, "connected");
        assert.equal(asked.length, before + 1, "one question: the code");
        assert.match(shownPages.at(-1)!, /One-time password \(OATH\)/);
      });

      await t.step("sudo without a password source asks for the sudo password", async () => {
        typeNext = () => Promise.resolve(user.password);
        const before = asked.length;
        const r = await call(eli, "ssh_exec", { session_id: "pw", command: "id -un", sudo: true });
        assert.equal(r.stdout.trim(), "root");
        assert.equal(asked.length, before + 1);
        assert.match(shownPages.at(-1)!, /sudo password/);
      });

      await t.step(
        "without elicitation: the error has the page's URL; the next call uses it",
        async () => {
          const other = await createUser();
          try {
            const spec = {
              user: other.name,
              addresses: [sshd.address],
              auth: { use_agent: false },
            };
            const first = await plain.callRaw("ssh_connect", { id: "later", spec });
            const text = (first.content as { text: string }[])[0]?.text ?? "";
            results.push(text);
            assert.equal(first.isError, true);
            assert.match(text, /Cannot authenticate/);
            const link = /(http:\/\/127\.0\.0\.1:\d+\/web\/login\?code=[0-9a-f]+)/.exec(text);
            assert.ok(link?.[1], text);
            await typeOnPage(browser!, link[1], other.password);
            const info = await call(plain, "ssh_connect", { id: "later", spec });
            assert.equal(info.state, "connected");
            await plain.call("ssh_disconnect", { id: "later" });
          } finally {
            await other.remove();
          }
        },
      );

      await t.step("the secrets are nowhere the model or the disk could see them", async () => {
        await call(eli, "snapshot", {});
        ps.stop();
        const secrets = [user.password, ...otps];
        for (const r of results) {
          for (const s of secrets) assert.ok(!r.includes(s), `a tool result holds a secret: ${r}`);
        }
        const found = await scanForSecrets(tmp.rsmDir, secrets, [ps.text()]);
        assert.deepEqual(found, []);
        const audit = (await Deno.readTextFile(join(tmp.rsmDir, "audit.log"))).trim().split("\n")
          .map((l) => JSON.parse(l)).filter((l) => l.event === "secret_entered");
        assert.deepEqual(audit.map((l) => l.kind).sort(), [
          "answer",
          "password",
          "password",
          "sudo",
        ]);
      });
    } finally {
      ps.stop();
      await browser?.close().catch(() => {});
      await eli.close();
      await plain.close();
      await stopDaemon(tmp.env);
      await Deno.remove(`/etc/pam.d/${service}`).catch(() => {});
      await Deno.remove(usersFile).catch(() => {});
    }
  },
);
