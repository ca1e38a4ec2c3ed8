/**
 * Crash mid-load (issue 10, acceptance 2): `kill -9` of the daemon while 50 calls are in
 * flight through two launchers. Every call is answered — a result or -32001 — within 30 s,
 * both clients keep working without a restart, and the persistent session is back.
 */
import assert from "node:assert/strict";
import { need, tempEnv, testIf, waitFor } from "./support/env.ts";
import { alive, readHandle, startRsm, stopDaemon } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { psSampler, scanForSecrets } from "./support/secrets_scan.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

// deno-lint-ignore no-explicit-any
type Row = any;

testIf(
  missing,
  "kill -9 with 50 calls in flight through two launchers: all answered, both clients carry on",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using tmp = await tempEnv({ RSM_CRASH_PW: user.password });
    const ps = psSampler();
    const a = await startRsm(tmp.env, { json: true });
    const b = await startRsm(tmp.env, { json: true });
    try {
      await a.callJson("ssh_connect", {
        id: "keep",
        spec: {
          user: user.name,
          addresses: [sshd.address],
          persistent: true,
          auth: { password_env: "RSM_CRASH_PW" },
        },
      });
      await b.callJson("ssh_exec", { session_id: "keep", command: "true" });
      const before = await readHandle(tmp.env);
      assert.ok(before);

      const outcomes: { ok: boolean; code?: number | undefined; ms: number; what: string }[] = [];
      const started = Date.now();
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 50; i++) {
        const c = i % 2 ? a : b;
        const [tool, args] = i % 5 === 0
          ? ["status", {}]
          : i % 5 === 1
          ? ["ssh_list", {}]
          : ["ssh_exec", { session_id: "keep", command: `sleep ${1 + (i % 4)}; echo ${i}` }];
        calls.push(
          c.client.callTool({ name: tool as string, arguments: args }, undefined, {
            timeout: 60_000,
          }).then(
            (r: Row) =>
              void outcomes.push({
                ok: !r.isError,
                ms: Date.now() - started,
                what: tool as string,
              }),
            (err: Error & { code?: number }) =>
              void outcomes.push({
                ok: false,
                code: err.code,
                ms: Date.now() - started,
                what: `${tool}: ${err.message}`,
              }),
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 700));
      Deno.kill(before.pid, "SIGKILL");
      await Promise.all(calls);
      assert.equal(outcomes.length, 50);
      const bad = outcomes.filter((o) => !o.ok && o.code !== -32001);
      assert.deepEqual(bad, [], "every call is a result or -32001");
      // Every ssh_exec sleeps at least 1 s and the kill comes at 0.7 s: each one was in flight
      // in the killed daemon, so each must be -32001 ("may or may not have run"), never sent
      // again to the new daemon (it could run twice) nor reported as a result.
      const execs = outcomes.filter((o) => o.what.startsWith("ssh_exec"));
      const notCut = execs.filter((o) => o.code !== -32001);
      assert.equal(execs.length, 30);
      assert.deepEqual(notCut, [], "every ssh_exec in flight at the kill is answered -32001");
      const slow = outcomes.filter((o) => o.ms > 30_000);
      assert.deepEqual(slow, [], "every call answered within 30 s");
      console.log(
        `${outcomes.filter((o) => o.ok).length} results, ` +
          `${outcomes.filter((o) => o.code === -32001).length} × -32001, ` +
          `last answer after ${Math.max(...outcomes.map((o) => o.ms))} ms`,
      );
      await waitFor("the old daemon gone", () => !alive(before.pid), 10_000);

      // Both clients keep working, on one new daemon, and the persistent session is back.
      const sa = await a.callJson("status");
      const sb = await b.callJson("status");
      assert.notEqual(sa.pid, before.pid);
      assert.equal(sa.pid, sb.pid, "both launchers reach the same new daemon");
      const row = await waitFor(
        "the persistent session back",
        async () => {
          const rows: Row[] = await b.callJson("ssh_list");
          return rows.find((r) => r.id === "keep" && r.state === "connected");
        },
        60_000,
        300,
      );
      assert.ok(row);
      const r = await a.callJson("ssh_exec", { session_id: "keep", command: "echo back" });
      assert.equal(r.stdout.trim(), "back");
      ps.stop();
      assert.deepEqual(await scanForSecrets(tmp.rsmDir, [user.password], [ps.text()]), []);
    } finally {
      ps.stop();
      await a.close();
      await b.close();
      await stopDaemon(tmp.env);
    }
  },
);
