/**
 * Host key policies (issue 3, acceptance 5): accept-new records an unknown key in the
 * daemon's known_hosts; a changed key is refused naming both SHA256 fingerprints; strict
 * refuses an unknown host; insecure connects; hashed entries in ~/.ssh/known_hosts count.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

testIf(missing, "host keys are checked by policy and a changed key is refused", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  const daemonKnownHosts = join(rsm.tmp.rsmDir, "known_hosts");
  const spec = (extra: Record<string, unknown> = {}) => ({
    user: user.name,
    addresses: [sshd.address],
    auth: { key_path: user.keyPath },
    ...extra,
  });

  await t.step("strict refuses a host that is in no known_hosts file", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "strict",
      spec: spec({ host_key_policy: "strict" }),
    });
    assert.match(err, /not in any known_hosts file/);
    assert.ok(err.includes(sshd.hostKeyFingerprint), err);
    assert.deepEqual(await rsm.callJson("ssh_list"), []);
  });

  await t.step("accept-new (the default) records the key in the daemon's known_hosts", async () => {
    const info = await rsm.callJson("ssh_connect", { id: "a", spec: spec() });
    assert.equal(info.host_key_fingerprint, sshd.hostKeyFingerprint);
    const known = await Deno.readTextFile(daemonKnownHosts);
    assert.ok(known.includes(`[127.0.0.1]:${sshd.port} ssh-ed25519 `), known);
    await rsm.call("ssh_disconnect", { id: "a" });
    // now known: strict connects
    await rsm.callJson("ssh_connect", { id: "s2", spec: spec({ host_key_policy: "strict" }) });
    await rsm.call("ssh_disconnect", { id: "s2" });
  });

  const oldFingerprint = sshd.hostKeyFingerprint;
  await sshd.replaceHostKey();

  await t.step("a changed host key is refused with both fingerprints", async () => {
    assert.notEqual(sshd.hostKeyFingerprint, oldFingerprint);
    const err = await rsm.callError("ssh_connect", { id: "b", spec: spec() });
    assert.match(err, /CHANGED/);
    assert.ok(err.includes(oldFingerprint), err);
    assert.ok(err.includes(sshd.hostKeyFingerprint), err);
    assert.match(err, /ssh-keygen -R/);
    const strict = await rsm.callError("ssh_connect", {
      id: "b",
      spec: spec({ host_key_policy: "strict" }),
    });
    assert.match(strict, /CHANGED/);
  });

  await t.step("insecure connects anyway", async () => {
    const info = await rsm.callJson("ssh_connect", { id: "c", spec: spec({ insecure: true }) });
    assert.equal(info.state, "connected");
    await rsm.call("ssh_disconnect", { id: "c" });
    const info2 = await rsm.callJson("ssh_connect", {
      id: "c2",
      spec: spec({ host_key_policy: "insecure" }),
    });
    assert.equal(info2.host_key_fingerprint, sshd.hostKeyFingerprint);
    await rsm.call("ssh_disconnect", { id: "c2" });
  });

  await t.step("hashed entries in the user's known_hosts are honoured", async () => {
    await Deno.remove(daemonKnownHosts);
    const userKnown = join(rsm.tmp.home, ".ssh", "known_hosts");
    await Deno.writeTextFile(userKnown, sshd.knownHostsLine + "\n");
    const r = await run("ssh-keygen", ["-H", "-f", userKnown]);
    assert.equal(r.code, 0, r.stderr);
    const hashed = await Deno.readTextFile(userKnown);
    assert.match(hashed, /^\|1\|/);
    assert.ok(!hashed.includes("127.0.0.1"));
    const info = await rsm.callJson("ssh_connect", {
      id: "h",
      spec: spec({ host_key_policy: "strict" }),
    });
    assert.equal(info.state, "connected");
    await rsm.call("ssh_disconnect", { id: "h" });
    // a hashed entry with another key of the same type is a change
    await sshd.replaceHostKey();
    const err = await rsm.callError("ssh_connect", { id: "h2", spec: spec() });
    assert.match(err, /CHANGED/);
  });

  await t.step("known_hosts_path replaces ~/.ssh/known_hosts", async () => {
    const file = join(rsm.tmp.root, "custom_known_hosts");
    await Deno.writeTextFile(file, sshd.knownHostsLine + "\n");
    const info = await rsm.callJson("ssh_connect", {
      id: "k",
      spec: spec({ host_key_policy: "strict", known_hosts_path: file }),
    });
    assert.equal(info.state, "connected");
  });
});
