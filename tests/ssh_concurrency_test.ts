/**
 * Concurrency (issue 3, acceptance 9): parallel sessions, overlapping connect/disconnect
 * (also during the dial) leaving no sessions and no sockets, simultaneous ssh_reconnect
 * calls ending with one live connection, ssh_clone independent of its source.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf, waitFor } from "./support/env.ts";
import { readHandle } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ss"], true);

/** Established TCP connections of `pid` to local port `port`. */
async function socketsTo(pid: number, port: number): Promise<number> {
  const r = await run("ss", ["-Htnp", "state", "established", `( dport = :${port} )`]);
  return r.stdout.split("\n").filter((l) => l.includes(`pid=${pid},`)).length;
}

testIf(missing, "sessions connect, exec, reconnect and disconnect concurrently", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  const pid = (await readHandle(rsm.env))!.pid;
  const spec = { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } };

  await t.step("10 sessions connect, exec and disconnect in parallel", async () => {
    await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const id = `p${i}`;
      const info = await rsm.callJson("ssh_connect", { id, spec });
      assert.equal(info.state, "connected");
      const r = await rsm.callJson("ssh_exec", { session_id: id, command: `echo ${i}` });
      assert.equal(r.stdout, `${i}\n`);
      assert.equal(await rsm.call("ssh_disconnect", { id }), `disconnected ${id}`);
    }));
    assert.deepEqual(await rsm.callJson("ssh_list"), []);
    await waitFor("no sockets left", async () => (await socketsTo(pid, sshd.port)) === 0, 5000);
    const known = await Deno.readTextFile(join(rsm.tmp.rsmDir, "known_hosts"));
    assert.equal(known.trim().split("\n").length, 1, "parallel first connects record one key");
  });

  await t.step(
    "12 overlapping connect/disconnect pairs leave no sessions and no sockets",
    async () => {
      await Promise.all(Array.from({ length: 12 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 15));
        const id = `o${i}`;
        await rsm.callJson("ssh_connect", { id, spec });
        await rsm.call("ssh_disconnect", { id });
      }));
      assert.deepEqual(await rsm.callJson("ssh_list"), []);
      await waitFor("no sockets left", async () => (await socketsTo(pid, sshd.port)) === 0, 5000);
    },
  );

  await t.step("ssh_disconnect during the dial aborts it and leaves nothing behind", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of listener) held.push(c);
    })().catch(() => {});
    const port = (listener.addr as Deno.NetAddr).port;
    try {
      const connects = Array.from({ length: 4 }, (_, i) =>
        rsm.callRaw("ssh_connect", {
          id: `mute${i}`,
          spec: { ...spec, addresses: `127.0.0.1:${port}`, timeout: "20s" },
        }));
      await waitFor(
        "4 sessions connecting",
        async () => {
          const rows = await rsm.callJson("ssh_list");
          return rows.length === 4 &&
            rows.every((r: { state: string }) => r.state === "connecting");
        },
        10_000,
        100,
      );
      const started = Date.now();
      for (let i = 0; i < 4; i++) await rsm.call("ssh_disconnect", { id: `mute${i}` });
      for (const c of connects) {
        const r = await c;
        assert.equal(r.isError, true);
        assert.match(JSON.stringify(r.content), /disconnected while connecting/);
      }
      assert.ok(Date.now() - started < 5000);
      assert.deepEqual(await rsm.callJson("ssh_list"), []);
      await waitFor("no sockets left", async () => (await socketsTo(pid, port)) === 0, 5000);
    } finally {
      listener.close();
      for (const c of held) c.close();
      await accepting;
    }
  });

  await t.step(
    "6 simultaneous ssh_reconnect calls end connected with one live connection",
    async () => {
      await rsm.callJson("ssh_connect", { id: "r", spec });
      const results = await Promise.all(
        Array.from({ length: 6 }, () => rsm.callJson("ssh_reconnect", { id: "r" })),
      );
      for (const info of results) assert.equal(info.state, "connected");
      await waitFor("one socket", async () => (await socketsTo(pid, sshd.port)) === 1, 5000);
      const r = await rsm.callJson("ssh_exec", { session_id: "r", command: "echo still" });
      assert.equal(r.stdout, "still\n");
      await rsm.call("ssh_disconnect", { id: "r" });
    },
  );

  await t.step("ssh_clone keeps working after the source is disconnected", async () => {
    await rsm.callJson("ssh_connect", { id: "src", spec });
    const info = await rsm.callJson("ssh_clone", { source_id: "src", new_id: "copy" });
    assert.equal(info.state, "connected");
    assert.deepEqual(info.addresses, [sshd.address]);
    assert.equal(await socketsTo(pid, sshd.port), 2);
    await rsm.call("ssh_disconnect", { id: "src" });
    const r = await rsm.callJson("ssh_exec", { session_id: "copy", command: "echo clone" });
    assert.equal(r.stdout, "clone\n");
    const err = await rsm.callError("ssh_clone", { source_id: "src", new_id: "x" });
    assert.match(err, /see ssh_list/);
    await rsm.call("ssh_disconnect", { id: "copy" });
  });

  await t.step("a duplicate id is refused and the first session is untouched", async () => {
    await rsm.callJson("ssh_connect", { id: "dup", spec });
    const err = await rsm.callError("ssh_connect", { id: "dup", spec });
    assert.match(err, /exists/);
    const r = await rsm.callJson("ssh_exec", { session_id: "dup", command: "echo one" });
    assert.equal(r.stdout, "one\n");
  });
});
