/**
 * Disk full (issue 10, acceptance 4): the config dir on a small tmpfs, filled up. State writes
 * fail with a logged error (and `snapshot` says so), the previous `state.json` stays intact and
 * parseable, no temp file is left behind, tools keep answering; once space is back the next
 * write records everything.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, tempEnv, testIf, waitFor } from "./support/env.ts";
import { startRsm, stopDaemon } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "mount", "umount"], true);

// deno-lint-ignore no-explicit-any
type Row = any;

/** Writes zeros to `path` until the filesystem refuses (ENOSPC). */
async function fillUp(path: string): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (;;) await f.write(chunk);
  } catch {
    /* full */
  } finally {
    f.close();
  }
}

testIf(
  missing,
  "a full disk: state writes fail with a logged error, state.json stays intact, tools answer",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using tmp = await tempEnv();
    await Deno.mkdir(tmp.rsmDir, { recursive: true, mode: 0o700 });
    const m = await run("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", tmp.rsmDir]);
    assert.equal(m.code, 0, m.stderr);
    const rsm = await startRsm(tmp.env, { json: true });
    const statePath = join(tmp.rsmDir, "state.json");
    const filler = join(tmp.rsmDir, "filler");
    try {
      const spec = {
        user: user.name,
        addresses: [sshd.address],
        persistent: true,
        auth: { key_path: user.keyPath },
      };
      await rsm.callJson("ssh_connect", { id: "before", spec });
      await rsm.callJson("snapshot");
      const good = await Deno.readTextFile(statePath);
      assert.deepEqual(JSON.parse(good).ssh.sessions.map((s: Row) => s.id), ["before"]);

      await fillUp(filler);
      await rsm.callJson("ssh_connect", { id: "during", spec });
      const err = await rsm.callError("snapshot");
      assert.match(err, /Cannot write state .*state\.json: .*(No space|ENOSPC|space)/i);
      // Tools keep answering, sessions keep working.
      const r = await rsm.callJson("ssh_exec", { session_id: "during", command: "echo alive" });
      assert.equal(r.stdout.trim(), "alive");
      const status = await rsm.callJson("status");
      assert.equal(status.sessions.length, 2);
      // The previous state.json is intact and parseable; no temp file is left.
      const now = await Deno.readTextFile(statePath);
      assert.equal(now, good);
      JSON.parse(now);
      const temps = [...Deno.readDirSync(tmp.rsmDir)].filter((e) => e.name.endsWith(".tmp"));
      assert.deepEqual(temps, []);
      const log = await Deno.readTextFile(join(tmp.rsmDir, "daemon.log"));
      assert.match(log, /error cannot write state; previous state\.json kept/);

      // Space is back: the next write records both sessions.
      await Deno.remove(filler);
      await rsm.callJson("ssh_disconnect", { id: "before" }).catch(() => {});
      await rsm.callJson("ssh_connect", { id: "after", spec });
      await rsm.callJson("snapshot");
      const ids = await waitFor("state with the new sessions", async () => {
        const s = JSON.parse(await Deno.readTextFile(statePath));
        return s.ssh.sessions.map((x: Row) => x.id).sort().join(",");
      });
      assert.equal(ids, "after,during");
    } finally {
      await rsm.close();
      await stopDaemon(tmp.env);
      await run("umount", ["-l", tmp.rsmDir]);
    }
  },
);
