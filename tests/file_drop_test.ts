/**
 * A connection that dies in the middle of ssh_upload / ssh_download (sshd killed with every
 * per-connection child) ends the call promptly with an error that says so, never hangs, and
 * leaves nothing under the final name; the session works again after ssh_reconnect.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "dd"], true);

testIf(missing, "a transfer cut by a dropped connection fails cleanly and fast", async (t) => {
  await using user = await createUser({ plainShell: true });
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const local = await Deno.makeTempDir({ prefix: "rsm-drop-" });
  try {
    const src = join(local, "src.bin");
    await run("dd", ["if=/dev/urandom", `of=${src}`, "bs=1M", "count=256"]);
    const cut = async (tool: string, args: Record<string, unknown>) => {
      let stopping: Promise<void> | undefined;
      const started = Date.now();
      const r = await rsm.callRaw(tool, { session_id: "box", ...args }, {
        onprogress: () => {
          stopping ??= sshd.stop();
        },
      });
      await stopping;
      const text = r.content.map((c: { type: string; text?: string }) => c.text ?? "").join("");
      return { r, text, ms: Date.now() - started };
    };

    await t.step("upload", async () => {
      const { r, text, ms } = await cut("ssh_upload", {
        local_path: src,
        remote_path: `${user.home}/dst.bin`,
      });
      assert.equal(r.isError, true, text);
      assert.match(text, /dst\.bin|src\.bin/);
      assert.match(text, /connection|No response/i);
      assert.ok(ms < 60_000, `took ${ms} ms`);
      await assert.rejects(Deno.lstat(`${user.home}/dst.bin`), "no file under the final name");
    });

    await t.step("download after a reconnect", async () => {
      await sshd.restart();
      await rsm.callJson("ssh_reconnect", { id: "box" });
      await Deno.copyFile(src, `${user.home}/remote.bin`);
      await Deno.chown(`${user.home}/remote.bin`, user.uid, user.uid);
      const dir = join(local, "down");
      await Deno.mkdir(dir);
      const { r, text, ms } = await cut("ssh_download", {
        remote_path: `${user.home}/remote.bin`,
        local_path: join(dir, "remote.bin"),
      });
      assert.equal(r.isError, true, text);
      assert.match(text, /remote\.bin/);
      assert.ok(ms < 60_000, `took ${ms} ms`);
      assert.deepEqual([...Deno.readDirSync(dir)], [], "no final file and no temp file");
    });
  } finally {
    await Deno.remove(local, { recursive: true });
  }
});
