/**
 * Jobs through `rsm stdio` against a real sshd: a long ssh_exec becomes a job, job_wait
 * returns only new output, job_output has all of it, job_signal stops the remote process
 * group, a job outlives its client, and waits send progress at least every 15 s.
 */
import assert from "node:assert/strict";
import { need, run, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { startRsm } from "./support/mcp.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "pgrep"], true);

async function remoteProcs(user: string, pattern: string): Promise<string> {
  return (await run("pgrep", ["-u", user, "-f", pattern])).stdout.trim();
}

/** Milliseconds between consecutive progress notifications, from the call's start to its end. */
function gaps(start: number, times: number[], end: number): number[] {
  const all = [start, ...times, end];
  return all.slice(1).map((t, i) => t - all[i]!); // all[i] precedes t in the same list
}

testIf(
  missing,
  "a long ssh_exec becomes a job that can be waited on, read and stopped",
  async (t) => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });

    await t.step(
      "40 lines over 40 s: a job after wait_ms, new lines per job_wait, all kept",
      async () => {
        const started = Date.now();
        const first = await rsm.callJson("ssh_exec", {
          session_id: "box",
          command: "for i in $(seq 40); do echo $i; sleep 1; done",
          wait_ms: 3000,
        });
        assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
        assert.equal(first.state, "running");
        assert.match(first.job_id, /^j[0-9a-f]+$/);
        assert.match(first.tail, /^1\n2/);
        assert.ok(first.elapsed_ms >= 3000);

        const rows = await rsm.callJson("job_list");
        const row = rows.find((r: { id: string }) => r.id === first.job_id);
        assert.equal(row.state, "running");
        assert.equal(row.kind, "ssh_exec");
        assert.equal(row.target, "box");
        assert.match(row.summary, /seq 40/);

        const parts: string[] = [];
        let last;
        for (let i = 0; i < 30; i++) {
          last = await rsm.callJson("job_wait", { job_id: first.job_id, wait_ms: 4000 });
          parts.push(last.output);
          if (last.state !== "running") break;
          assert.ok(!("exit_code" in last), "exit_code while running");
        }
        assert.equal(last.state, "exited");
        assert.equal(last.exit_code, 0);
        assert.ok(parts.length >= 5, `only ${parts.length} waits`);
        const expected = Array.from({ length: 40 }, (_, i) => `${i + 1}\n`).join("");
        assert.equal(parts.join(""), expected, "job_wait outputs overlap or miss lines");

        const out = await rsm.callJson("job_output", { job_id: first.job_id });
        assert.equal(out.data, expected);
        assert.equal(out.total_bytes, expected.length);
        assert.equal(out.eof, true);
        const grep = await rsm.callJson("job_output", { job_id: first.job_id, grep: "^3[0-9]$" });
        assert.equal(grep.matches, 10);
        assert.match(grep.output, /^30: 30\n31: 31/);

        const done = (await rsm.callJson("job_list")).find((r: { id: string }) =>
          r.id === first.job_id
        );
        assert.equal(done.state, "exited");
        assert.equal(done.exit_code, 0);
        assert.equal(done.output_bytes, expected.length);

        await rsm.call("job_forget", { job_id: first.job_id });
        assert.match(
          await rsm.callError("job_wait", { job_id: first.job_id }),
          /Cannot find job .*job_list/,
        );
      },
    );

    await t.step("job_signal TERM stops the whole remote process group", async () => {
      const j = await rsm.callJson("ssh_exec", {
        session_id: "box",
        command: "sleep 301 & sleep 302 | cat; wait",
        wait_ms: 500,
      });
      assert.equal(j.state, "running");
      await waitFor(
        "sleep 301 running",
        async () => (await remoteProcs(user.name, "sleep 30[12]")) !== "",
      );
      const r = await rsm.callJson("job_signal", { job_id: j.job_id });
      assert.equal(r.state, "killed");
      assert.equal(r.signal, "SIGTERM");
      await waitFor(
        "sleep 301/302 gone",
        async () => (await remoteProcs(user.name, "sleep 30[12]")) === "",
        5000,
      );
    });

    await t.step("job_signal KILL stops a group that ignores TERM, verified", async () => {
      const j = await rsm.callJson("ssh_exec", {
        session_id: "box",
        command: "trap '' TERM; echo armed; sleep 303",
        wait_ms: 1000,
      });
      assert.equal(j.state, "running");
      assert.equal(j.tail, "armed");
      const term = await rsm.callJson("job_signal", { job_id: j.job_id, signal: "TERM" });
      assert.equal(term.state, "running", "TERM was ignored, the job runs on");
      assert.notEqual(await remoteProcs(user.name, "sleep 303"), "");
      const kill = await rsm.callJson("job_signal", { job_id: j.job_id, signal: "KILL" });
      assert.equal(kill.delivered, "stopped");
      assert.equal(kill.state, "killed");
      assert.equal(kill.signal, "SIGKILL");
      assert.equal(await remoteProcs(user.name, "sleep 303"), "");
      const row = (await rsm.callJson("job_list")).find((r: { id: string }) => r.id === j.job_id);
      assert.equal(row.state, "killed");
    });

    await t.step("ssh_shell_run becomes a job too; job_signal interrupts it", async () => {
      await rsm.callJson("ssh_shell_open", { session_id: "box", shell_id: "sh1" });
      const run1 = await rsm.callJson("ssh_shell_run", {
        session_id: "box",
        shell_id: "sh1",
        command: "echo started; sleep 3; echo shell-done",
        wait_ms: 1500,
      });
      assert.equal(run1.state, "running");
      assert.equal(run1.tail, "started");
      const w = await rsm.callJson("job_wait", { job_id: run1.job_id, wait_ms: 20_000 });
      assert.equal(w.state, "exited");
      assert.equal(w.exit_code, 0);
      assert.equal(w.output, "started\nshell-done\n");
      const run2 = await rsm.callJson("ssh_shell_run", {
        session_id: "box",
        shell_id: "sh1",
        command: "sleep 304",
        wait_ms: 300,
      });
      assert.equal(run2.state, "running");
      const k = await rsm.callJson("job_signal", { job_id: run2.job_id });
      assert.equal(k.state, "killed");
      assert.equal(k.signal, "SIGTERM");
      const after = await rsm.callJson("ssh_shell_run", {
        session_id: "box",
        shell_id: "sh1",
        command: "echo still-usable",
      });
      assert.equal(after.output.trim(), "still-usable");
      assert.equal(await remoteProcs(user.name, "sleep 304"), "");
    });

    await t.step("a job outlives the client that started it", async () => {
      const j = await rsm.callJson("ssh_exec", {
        session_id: "box",
        command: "for i in 1 2 3 4 5 6; do echo tick$i; sleep 1; done",
        wait_ms: 1000,
      });
      assert.equal(j.state, "running");
      await rsm.close();
      await using second = await startRsm(rsm.tmp.env, { json: true });
      const w = JSON.parse(
        await second.call("job_wait", { job_id: j.job_id, wait_ms: 20_000 }),
      );
      assert.equal(w.state, "exited");
      assert.equal(w.exit_code, 0);
      const all = JSON.parse(await second.call("job_output", { job_id: j.job_id }));
      assert.equal(all.data, "tick1\ntick2\ntick3\ntick4\ntick5\ntick6\n");
    });
  },
);

testIf(missing, "waiting on a quiet job sends progress at least every 15 s", async () => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const times: number[] = [];
  const messages: string[] = [];
  const onprogress = (p: { message?: string }) => {
    times.push(Date.now());
    messages.push(p.message ?? "");
  };
  let start = Date.now();
  const j = await rsm.callJson("ssh_exec", {
    session_id: "box",
    command: "sleep 30; echo finally-output; sleep 10",
    wait_ms: 20_000,
  }, { onprogress });
  let end = Date.now();
  assert.equal(j.state, "running");
  const firstGaps = gaps(start, times, end);
  assert.ok(firstGaps.every((g) => g <= 15_000), `gaps ${firstGaps}`);
  assert.ok(times.length >= 2, `only ${times.length} notifications in 20 s`);

  times.length = 0;
  start = Date.now();
  const w = await rsm.callJson("job_wait", { job_id: j.job_id, wait_ms: 60_000 }, {
    onprogress,
  });
  end = Date.now();
  assert.equal(w.state, "exited");
  assert.equal(w.output, "finally-output\n");
  const secondGaps = gaps(start, times, end);
  assert.ok(secondGaps.every((g) => g <= 15_000), `gaps ${secondGaps}`);
  assert.ok(messages.includes("finally-output"), JSON.stringify(messages));
});
