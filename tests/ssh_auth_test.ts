/**
 * Every way in (issue 3, acceptance 1): key file, passphrase-protected key (inline and env),
 * a real ssh-agent (use_agent and agent_socket), password, password_env, password_file,
 * keyboard-interactive-only sshd, default identity in HOME, and a wrong password that lists
 * the methods tried. One daemon per test, one session per step.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv, startAgent } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "ssh-agent", "ssh-add", "useradd"], true);

testIf(missing, "ssh_connect authenticates every way the spec lists", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using agent = await startAgent();
  await agent.add(user.keyPath);
  await using rsm = await rsmWithEnv({
    SSH_AUTH_SOCK: agent.socket,
    RSM_TEST_PW: user.password,
    RSM_TEST_PP: user.keyPassphrase,
  });
  const pwFile = join(rsm.tmp.root, "pw.txt");
  await Deno.writeTextFile(pwFile, `${user.password}\n`, { mode: 0o600 });

  let n = 0;
  const connectAs = async (auth: Record<string, unknown>) => {
    const id = `s${++n}`;
    const info = await rsm.callJson("ssh_connect", {
      id,
      spec: { user: user.name, addresses: [sshd.address], auth },
    });
    assert.equal(info.state, "connected");
    const r = await rsm.callJson("ssh_exec", { session_id: id, command: "id -un" });
    assert.equal(r.stdout.trim(), user.name);
    await rsm.call("ssh_disconnect", { id });
  };

  await t.step("a key file", () => connectAs({ key_path: user.keyPath, use_agent: false }));
  await t.step("a passphrase-protected key with key_passphrase", () =>
    connectAs({
      key_path: user.encKeyPath,
      key_passphrase: user.keyPassphrase,
      use_agent: false,
    }));
  await t.step(
    "a passphrase-protected key with key_passphrase_env",
    () =>
      connectAs({ key_path: user.encKeyPath, key_passphrase_env: "RSM_TEST_PP", use_agent: false }),
  );
  await t.step(
    "ssh-agent through use_agent (SSH_AUTH_SOCK of the daemon)",
    () => connectAs({ use_agent: true }),
  );
  await t.step("ssh-agent through agent_socket", () => connectAs({ agent_socket: agent.socket }));
  await t.step("forward_agent makes the agent's keys usable on the server", async () => {
    await rsm.callJson("ssh_connect", {
      id: "fwd",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        auth: { agent_socket: agent.socket },
        forward_agent: true,
      },
    });
    const r = await rsm.callJson("ssh_exec", { session_id: "fwd", command: "ssh-add -L" });
    assert.equal(r.exit_code, 0, r.stderr);
    assert.ok(r.stdout.includes(user.publicKey.split(" ")[1]), r.stdout);
    await rsm.call("ssh_disconnect", { id: "fwd" });
  });
  await t.step("a password", () => connectAs({ password: user.password, use_agent: false }));
  await t.step("password_env", () => connectAs({ password_env: "RSM_TEST_PW", use_agent: false }));
  await t.step("password_file", () => connectAs({ password_file: pwFile, use_agent: false }));
  await t.step("no auth at all but ~/.ssh/id_ed25519 in HOME", async () => {
    const target = join(rsm.tmp.home, ".ssh", "id_ed25519");
    await Deno.copyFile(user.keyPath, target);
    await Deno.chmod(target, 0o600);
    try {
      // SSH_AUTH_SOCK holds the same key; use_agent:false proves the default identity works
      await connectAs({ use_agent: false });
    } finally {
      await Deno.remove(target);
    }
  });
  await t.step("a wrong password fails and lists the methods tried", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "bad",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        auth: { password: "definitely-wrong-pw", use_agent: false },
      },
    });
    assert.match(err, /Cannot authenticate/);
    assert.match(err, /Tried: password/);
    assert.match(err, /keyboard-interactive/);
    assert.doesNotMatch(err, /definitely-wrong-pw/);
    assert.deepEqual(await rsm.callJson("ssh_list"), []);
  });
  await t.step("an encrypted key without a passphrase says so", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "enc",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        auth: { key_path: user.encKeyPath, use_agent: false },
      },
    });
    assert.match(err, /encrypted; give key_passphrase/);
  });

  // secrets never reach the daemon's files
  await rsm.callJson("snapshot");
  for (const f of ["state.json", "daemon.log", "audit.log"]) {
    const text = await Deno.readTextFile(join(rsm.tmp.rsmDir, f)); // must exist
    assert.ok(!text.includes(user.password), `${f} contains the password`);
    assert.ok(!text.includes(user.keyPassphrase), `${f} contains the passphrase`);
  }
});

testIf(missing, "a keyboard-interactive-only sshd accepts the password as the answer", async () => {
  await using user = await createUser();
  await using sshd = await startSshd({ kbdInteractiveOnly: true });
  await using rsm = await rsmWithEnv();
  const info = await rsm.callJson("ssh_connect", {
    id: "kbd",
    spec: { user: user.name, addresses: sshd.address, auth: { password: user.password } },
  });
  assert.equal(info.state, "connected");
  const r = await rsm.callJson("ssh_exec", { session_id: "kbd", command: "echo ok" });
  assert.equal(r.stdout, "ok\n");
  const err = await rsm.callError("ssh_connect", {
    id: "kbd2",
    spec: { user: user.name, addresses: sshd.address, auth: { password: "wrong-wrong" } },
  });
  assert.match(err, /Tried: keyboard-interactive/);
  assert.match(err, /password \(server does not accept password\)/);
});
