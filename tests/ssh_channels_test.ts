/**
 * More concurrent ssh_exec calls than the server's MaxSessions: the extra calls wait for a
 * channel to close instead of failing with "open failed".
 */
import assert from "node:assert/strict";
import { need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmSession } from "./support/mcp.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

testIf(missing, "ssh_exec calls beyond sshd's MaxSessions queue instead of failing", async () => {
  await using user = await createUser();
  await using sshd = await startSshd({ extraConfig: "MaxSessions 3\n" });
  await using rsm = await rsmSession({ json: true });
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const results = await Promise.all(
    Array.from(
      { length: 12 },
      (_, i) => rsm.callJson("ssh_exec", { session_id: "box", command: `sleep 0.5; echo ok${i}` }),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.exit_code, 0, JSON.stringify(r));
    assert.equal(r.stdout, `ok${i}\n`);
  });
  // commands that time out on a full connection are still stopped (the kill helper gets a
  // channel), and a call queued behind them runs once they are gone
  const [slowA, slowB, queued] = await Promise.all([
    rsm.callJson("ssh_exec", { session_id: "box", command: "sleep 30", timeout_ms: 1500 }),
    rsm.callJson("ssh_exec", { session_id: "box", command: "sleep 31", timeout_ms: 1500 }),
    new Promise((r) => setTimeout(r, 300)).then(() =>
      rsm.callJson("ssh_exec", { session_id: "box", command: "echo queued", timeout_ms: 20000 })
    ),
  ]);
  assert.equal(slowA.timed_out, true);
  assert.equal(slowB.timed_out, true);
  assert.equal(queued.stdout, "queued\n");
  assert.equal(queued.exit_code, 0);
});

testIf(missing, "ssh_exec uses every session sshd allows (MaxSessions 10)", async () => {
  await using user = await createUser();
  await using sshd = await startSshd({ extraConfig: "MaxSessions 10\n" });
  await using rsm = await rsmSession({ json: true });
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  // 24 one-second commands: each prints when it started, on the server's clock
  const results = await Promise.all(
    Array.from(
      { length: 24 },
      () => rsm.callJson("ssh_exec", { session_id: "box", command: "date +%s.%N; sleep 1" }),
    ),
  );
  const starts = results.map((r) => {
    assert.equal(r.exit_code, 0, JSON.stringify(r));
    return Number(r.stdout);
  });
  // the most commands running at one moment: 9 (10 less the kill helper's reserve) or 10
  const peak = Math.max(...starts.map((s) => starts.filter((o) => o <= s && o + 1 > s).length));
  assert.ok(peak >= 9, `at most ${peak} commands ran at once`);
});

testIf(
  missing,
  "a burst of quick ssh_exec calls beyond MaxSessions all succeed and leave the cap intact",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd({ extraConfig: "MaxSessions 30\n" });
    await using rsm = await rsmSession({ json: true });
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    // quick commands have closed here while their close is still on its way to sshd: the cap
    // learned from the channels held here once fell to 2, and calls failed with "open failed"
    // when none was held here at the refusal
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(
        Array.from(
          { length: 96 },
          (_, i) => rsm.callJson("ssh_exec", { session_id: "box", command: `echo q${i}` }),
        ),
      );
      results.forEach((r, i) => assert.equal(r.stdout, `q${i}\n`, JSON.stringify(r)));
    }
    const results = await Promise.all(
      Array.from(
        { length: 60 },
        () => rsm.callJson("ssh_exec", { session_id: "box", command: "date +%s.%N; sleep 1" }),
      ),
    );
    const starts = results.map((r) => Number(r.stdout));
    const peak = Math.max(...starts.map((s) => starts.filter((o) => o <= s && o + 1 > s).length));
    // not a handful (30 less the kill helper's slot, less what a loaded machine blurs)
    assert.ok(peak >= 20, `after the bursts at most ${peak} commands ran at once`);
  },
);
