import assert from "node:assert/strict";
import { join } from "node:path";
import { e2eTest, tempEnv, waitFor } from "./support/env.ts";
import { alive, readHandle, rsmCli, rsmSession, startRsm, stopDaemon } from "./support/mcp.ts";
import { INITIALIZE, rawLauncher } from "./support/raw_stdio.ts";

/** Pids of daemons whose environment points at `xdg`. */
async function daemonsFor(xdg: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      if (!cmd.includes("main.ts\0daemon")) continue;
      const environ = await Deno.readTextFile(`/proc/${e.name}/environ`);
      if (environ.includes(`XDG_CONFIG_HOME=${xdg}\0`)) pids.push(Number(e.name));
    } catch { /* exited */ }
  }
  return pids;
}

e2eTest("rsm stdio auto-spawns a detached daemon that outlives the launcher", async () => {
  await using tmp = await tempEnv();
  try {
    const first = await startRsm(tmp.env, { json: true });
    const { tools } = await first.client.listTools();
    assert.ok(
      tools.some((t: { name: string }) => t.name === "status"),
      "tools/list includes status",
    );
    const status = await first.callJson("status");
    assert.equal(typeof status.pid, "number");
    assert.equal(status.sessions.length, 0);
    const handle = await readHandle(tmp.env);
    assert.equal(handle?.pid, status.pid);
    // own session: the daemon is not in the launcher's process group
    const stat = (await Deno.readTextFile(`/proc/${status.pid}/stat`)).split(") ")[1]?.split(" ") ??
      [];
    assert.equal(Number(stat[3]), status.pid, "daemon leads its own process group");
    await first.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(alive(status.pid), "daemon survives the launcher's exit");
    const second = await startRsm(tmp.env, { json: true });
    assert.equal((await second.callJson("status")).pid, status.pid, "second launcher sees it");
    await second.close();
  } finally {
    await stopDaemon(tmp.env);
  }
});

e2eTest("two launchers racing on a fresh config dir end with one daemon", async () => {
  await using tmp = await tempEnv();
  try {
    const [a, b] = await Promise.all([
      startRsm(tmp.env, { json: true }),
      startRsm(tmp.env, { json: true }),
    ]);
    const [sa, sb] = await Promise.all([a.callJson("status"), b.callJson("status")]);
    assert.equal(sa.pid, sb.pid);
    // the daemon that lost the lock exits on its own; only the winner stays
    await waitFor(
      "one daemon left",
      async () => JSON.stringify(await daemonsFor(tmp.xdg)) === JSON.stringify([sa.pid]),
      30_000,
    );
    await a.close();
    await b.close();
  } finally {
    await stopDaemon(tmp.env);
  }
});

e2eTest("kill -9 of the daemon: the next call succeeds through a new daemon", async () => {
  await using rsm = await rsmSession({ json: true });
  const before = await rsm.callJson("status");
  Deno.kill(before.pid, "SIGKILL");
  await waitFor("daemon gone", () => !alive(before.pid));
  const after = await rsm.callJson("status");
  assert.notEqual(after.pid, before.pid);
  assert.ok(alive(after.pid));
  // and the client keeps working on the same session
  const { tools } = await rsm.client.listTools();
  assert.ok(tools.length >= 2);
});

e2eTest(
  "a malformed line gets -32700, a blank line is ignored, the bridge carries on",
  async () => {
    await using tmp = await tempEnv();
    try {
      await using raw = rawLauncher(tmp.env);
      await raw.send(INITIALIZE);
      const init = await raw.until(0);
      assert.ok(init.result, "initialize answered");
      await raw.send({ jsonrpc: "2.0", method: "notifications/initialized" });
      await raw.write("\n   \n{not json\n");
      const err = await raw.next();
      assert.equal((err.error as { code: number }).code, -32700);
      assert.equal(err.id, null);
      await raw.send({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "status" } });
      const res = await raw.until(7);
      assert.ok(res.result, "the next valid request still works");
      assert.equal(await raw.closeStdin(), 0, "exits 0 on stdin EOF");
    } finally {
      await stopDaemon(tmp.env);
    }
  },
);

e2eTest("128 concurrent status calls through one launcher all succeed", async () => {
  await using rsm = await rsmSession({ json: true });
  const results = await Promise.all(
    Array.from({ length: 128 }, () => rsm.callJson("status")),
  );
  assert.equal(results.length, 128);
  assert.equal(new Set(results.map((r) => r.pid)).size, 1);
});

e2eTest("TOON is the default output; REMOTE_SHELL_MCP_FORMAT=json gives JSON", async () => {
  {
    await using rsm = await rsmSession();
    const text = await rsm.call("status");
    assert.match(text, /^version: /m);
    assert.match(text, /^sessions: \[\]$/m);
    assert.throws(() => JSON.parse(text));
  }
  {
    await using rsm = await rsmSession({ json: true });
    const parsed = JSON.parse(await rsm.call("status"));
    assert.deepEqual(parsed.sessions, []);
    assert.deepEqual(parsed.shells, []);
  }
});

e2eTest("an unknown field and an unknown tool are tool errors naming them", async () => {
  await using rsm = await rsmSession({ json: true });
  const err = await rsm.callError("status", { bogus: 1 });
  assert.match(err, /unknown field "bogus"/);
  const err2 = await rsm.callError("no_such_tool", {});
  assert.match(err2, /unknown tool "no_such_tool"/);
});

e2eTest("REMOTE_SHELL_MCP_TOOLS=meta serves only the meta tools", async () => {
  await using rsm = await rsmSession({ extraEnv: { REMOTE_SHELL_MCP_TOOLS: "meta" } });
  const { tools } = await rsm.client.listTools();
  // output_read is served in every profile: any tool may return an output_id
  assert.deepEqual(tools.map((t: { name: string }) => t.name).sort(), [
    "output_read",
    "snapshot",
    "status",
  ]);
});

e2eTest("rsm call, rsm status and rsm stop work from a shell; usage errors exit 2", async () => {
  await using tmp = await tempEnv();
  try {
    const noDaemon = await rsmCli(tmp.env, ["status"]);
    assert.equal(noDaemon.code, 1, "status exits 1 with no daemon");
    const call = await rsmCli(tmp.env, ["call", "status"]);
    assert.equal(call.code, 0, call.stderr);
    assert.match(call.stdout, /^version: /m);
    const status = await rsmCli(tmp.env, ["status"]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /pid \d+/);
    const json = await rsmCli(tmp.env, ["status", "--json"]);
    const report = JSON.parse(json.stdout);
    assert.equal(typeof report.pid, "number");
    const toolErr = await rsmCli(tmp.env, ["call", "status", "bogus=1"]);
    assert.equal(toolErr.code, 1);
    assert.match(toolErr.stderr, /unknown field "bogus"/);
    assert.equal((await rsmCli(tmp.env, ["call"])).code, 2);
    assert.equal((await rsmCli(tmp.env, ["call", "status", "not-a-pair"])).code, 2);
    assert.equal((await rsmCli(tmp.env, ["call", "status", "x:={bad"])).code, 2);
    assert.equal((await rsmCli(tmp.env, ["frobnicate"])).code, 2);
    const tools = await rsmCli(tmp.env, ["tools"]);
    assert.match(tools.stdout, /^status\s+Shows the daemon/m);
    const stop = await rsmCli(tmp.env, ["stop"]);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor("daemon gone", () => !alive(report.pid));
    assert.equal(await readHandle(tmp.env), null, "handle removed on stop");
    const version = await rsmCli(tmp.env, ["version"]);
    const deno = JSON.parse(await Deno.readTextFile(join(import.meta.dirname!, "..", "deno.json")));
    assert.equal(version.stdout.trim(), `rsm ${deno.version}`);
  } finally {
    await stopDaemon(tmp.env);
  }
});
