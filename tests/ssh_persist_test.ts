/**
 * Persistence (issue 3, acceptance 7): persistent sessions come back after `kill -9` of the
 * daemon (the next call auto-spawns a new one); one whose host is down stays listed with
 * last_error and comes back when the host returns; secrets never reach the daemon's files.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf, waitFor } from "./support/env.ts";
import { alive, readHandle } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

// deno-lint-ignore no-explicit-any
type Row = any;

testIf(missing, "persistent sessions survive kill -9 of the daemon", async () => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using sshd2 = await startSshd();
  await using rsm = await rsmWithEnv({
    RSM_TEST_PW: user.password,
    RSM_TEST_PP: user.keyPassphrase,
  });
  const base = { user: user.name, addresses: [sshd.address], persistent: true };
  await rsm.callJson("ssh_connect", {
    id: "keyed",
    spec: { ...base, auth: { key_path: user.encKeyPath, key_passphrase_env: "RSM_TEST_PP" } },
  });
  await rsm.callJson("ssh_connect", {
    id: "pwenv",
    spec: { ...base, auth: { password_env: "RSM_TEST_PW" } },
  });
  await rsm.callJson("ssh_connect", {
    id: "inline",
    spec: { ...base, auth: { password: user.password } },
  });
  await rsm.callJson("ssh_connect", {
    id: "later",
    spec: {
      ...base,
      addresses: [sshd2.address],
      auto_reconnect: true,
      auth: { password_env: "RSM_TEST_PW" },
    },
  });
  await rsm.callJson("ssh_connect", {
    id: "volatile",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  for (const id of ["keyed", "pwenv", "inline", "later"]) {
    await rsm.callJson("ssh_exec", { session_id: id, command: "true" });
  }
  await rsm.callJson("snapshot");
  const state = await Deno.readTextFile(join(rsm.tmp.rsmDir, "state.json"));
  const saved = JSON.parse(state).ssh.sessions.map((s: Row) => s.id).sort();
  assert.deepEqual(saved, ["inline", "keyed", "later", "pwenv"]);
  assert.match(state, /"password_env": "RSM_TEST_PW"/);

  await sshd2.stop(); // "later"'s host goes down while no daemon runs
  const handle = await readHandle(rsm.env);
  assert.ok(handle);
  Deno.kill(handle.pid, "SIGKILL");
  await waitFor("the old daemon gone", () => !alive(handle.pid), 10_000);

  // the next call reaches a new, auto-spawned daemon
  const rows = await waitFor(
    "sessions listed by the new daemon",
    async () => {
      const r: Row[] = await rsm.callJson("ssh_list");
      return r.length === 4 ? r : null;
    },
    60_000,
    500,
  );
  const newHandle = await readHandle(rsm.env);
  assert.notEqual(newHandle?.pid, handle.pid);
  assert.ok(!rows!.some((r: Row) => r.id === "volatile"));

  const byId = async () =>
    Object.fromEntries((await rsm.callJson("ssh_list")).map((r: Row) => [r.id, r]));
  await waitFor(
    "keyed and pwenv connected",
    async () => {
      const m = await byId();
      return m.keyed.state === "connected" && m.pwenv.state === "connected";
    },
    30_000,
    250,
  );
  for (const id of ["keyed", "pwenv"]) {
    const r = await rsm.callJson("ssh_exec", { session_id: id, command: "id -un" });
    assert.equal(r.stdout.trim(), user.name);
  }
  // an inline password is not saved: that session comes back with an auth error, still listed
  const failed = await waitFor(
    "inline session failed",
    async () => {
      const m = await byId();
      return m.inline.last_error ? m.inline : null;
    },
    30_000,
    250,
  );
  assert.equal(failed.state, "disconnected");
  assert.match(failed.last_error, /Cannot authenticate/);

  const down = await waitFor(
    "later listed with last_error",
    async () => {
      const m = await byId();
      return m.later.last_error ? m.later : null;
    },
    30_000,
    250,
  );
  assert.notEqual(down.state, "connected");
  await sshd2.restart();
  await waitFor(
    "later connected once its host is back",
    async () => {
      const m = await byId();
      return m.later.state === "connected";
    },
    45_000,
    500,
  );
  const r = await rsm.callJson("ssh_exec", { session_id: "later", command: "echo back" });
  assert.equal(r.stdout, "back\n");

  await rsm.callJson("snapshot");
  for (const f of ["state.json", "daemon.log", "audit.log"]) {
    const text = await Deno.readTextFile(join(rsm.tmp.rsmDir, f)); // must exist
    assert.ok(!text.includes(user.password), `${f} contains the password`);
    assert.ok(!text.includes(user.keyPassphrase), `${f} contains the passphrase`);
  }
  const after = JSON.parse(await Deno.readTextFile(join(rsm.tmp.rsmDir, "state.json")));
  assert.deepEqual(after.ssh.sessions.map((s: Row) => s.id).sort(), [
    "inline",
    "keyed",
    "later",
    "pwenv",
  ]);
});
