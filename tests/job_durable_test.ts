/**
 * `ssh_exec` with `durable: true` against a real sshd: the command runs detached on the
 * server, survives `kill -9` of the daemon, is re-attached by the next daemon and finishes
 * with every line of its output, none repeated (what job_wait showed before the crash is not
 * shown again); forgetting it removes its files on the server.
 */
import assert from "node:assert/strict";
import { need, run, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { alive, readHandle, startRsm } from "./support/mcp.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "pgrep", "setsid"], true);

testIf(
  missing,
  "a durable ssh_exec survives kill -9 of the daemon and is re-attached",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        auth: { key_path: user.keyPath },
        persistent: true,
      },
    });
    const first = await rsm.callJson("ssh_exec", {
      session_id: "box",
      command: "for i in $(seq 20); do echo line$i; echo err$i >&2; sleep 1; done; exit 3",
      durable: true,
      wait_ms: 2000,
    });
    assert.equal(first.state, "running");
    assert.match(first.tail, /line1/);

    // read some of it before the crash: it must not come again after the restart
    const before = await rsm.callJson("job_wait", {
      job_id: first.job_id,
      wait_ms: 10_000,
      until: "^line4$",
    });
    assert.match(before.output, /line4\n/);
    const handle = await readHandle(rsm.tmp.env);
    assert.ok(handle, "daemon handle");
    await waitFor("state.json records the job and what was read", async () => {
      const state = JSON.parse(await Deno.readTextFile(`${rsm.tmp.rsmDir}/state.json`));
      return state.jobs?.jobs?.some((
        j: { id: string; cursor: number; durable?: { pid?: number } },
      ) => j.id === first.job_id && j.durable?.pid && j.cursor === before.output_bytes);
    });
    Deno.kill(handle.pid, "SIGKILL");
    await waitFor("daemon gone", () => !alive(handle.pid));
    await rsm.close();
    // the command goes on without any daemon
    const during = (await run("pgrep", ["-u", user.name, "-f", `rsm/jobs/${first.job_id}/cmd`]))
      .stdout.trim();
    assert.notEqual(during, "", "the durable command died with the daemon");

    await using second = await startRsm(rsm.tmp.env, { json: true });
    const call = async (name: string, args: Record<string, unknown> = {}) =>
      JSON.parse(await second.call(name, args));
    const rows = await call("job_list");
    const row = rows.find((r: { id: string }) => r.id === first.job_id);
    assert.ok(row, `job ${first.job_id} listed after the restart: ${JSON.stringify(rows)}`);
    assert.equal(row.kind, "ssh_exec");

    let last;
    const waited = [before.output];
    for (let i = 0; i < 10; i++) {
      last = await call("job_wait", { job_id: first.job_id, wait_ms: 10_000 });
      waited.push(last.output);
      if (last.state !== "running") break;
    }
    assert.equal(last.state, "exited");
    assert.equal(last.exit_code, 3);
    const lines = (n: number, p: string) =>
      Array.from({ length: n }, (_, i) => `${p}${i + 1}\n`).join("");
    // every line came once through job_wait, across the crash (stdout and stderr interleave)
    const seen = waited.join("").split("\n").filter(Boolean).sort();
    const want = (lines(20, "line") + lines(20, "err")).split("\n").filter(Boolean).sort();
    assert.deepEqual(seen, want, "job_wait repeated or missed lines across the restart");
    const out = await call("job_output", { job_id: first.job_id, stream: "stdout" });
    assert.equal(out.data, lines(20, "line"));
    const err = await call("job_output", { job_id: first.job_id, stream: "stderr" });
    assert.equal(err.data, lines(20, "err"));
    const all = await call("job_output", { job_id: first.job_id });
    assert.equal(all.total_bytes, lines(20, "line").length + lines(20, "err").length);

    // forgetting it removes its directory on the server
    const dir = `${user.home}/.cache/rsm/jobs/${first.job_id}`;
    assert.ok((await Deno.stat(dir)).isDirectory);
    await second.call("job_forget", { job_id: first.job_id });
    await waitFor("remote job directory removed", async () => {
      try {
        await Deno.stat(dir);
        return false;
      } catch {
        return true;
      }
    });
  },
);

testIf(missing, "a durable job stops on job_signal and at its timeout_ms", async () => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const j = await rsm.callJson("ssh_exec", {
    session_id: "box",
    command: "sleep 311",
    durable: true,
    wait_ms: 500,
  });
  assert.equal(j.state, "running");
  await waitFor(
    "sleep 311 running",
    async () => (await run("pgrep", ["-u", user.name, "-f", "sleep 311"])).stdout.trim() !== "",
  );
  const r = await rsm.callJson("job_signal", { job_id: j.job_id, signal: "KILL" });
  assert.equal(r.delivered, "stopped");
  const w = await rsm.callJson("job_wait", { job_id: j.job_id, wait_ms: 10_000 });
  assert.equal(w.state, "killed");
  assert.equal(w.signal, "SIGKILL");
  assert.equal((await run("pgrep", ["-u", user.name, "-f", "sleep 311"])).stdout.trim(), "");

  const t = await rsm.callJson("ssh_exec", {
    session_id: "box",
    command: "echo before; sleep 312",
    durable: true,
    wait_ms: 10_000,
    timeout_ms: 2000,
  });
  assert.equal(t.timed_out, true);
  assert.equal(t.stdout, "before\n");
  assert.equal((await run("pgrep", ["-u", user.name, "-f", "sleep 312"])).stdout.trim(), "");

  const bad = await rsm.callError("ssh_exec", {
    session_id: "box",
    command: "cat",
    durable: true,
    stdin: "x",
  });
  assert.match(bad, /Cannot run a durable command with stdin/);
});
