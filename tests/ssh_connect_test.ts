/**
 * ssh_connect / auth variants and exec basics against a real OpenSSH sshd (SPEC §4.1, §4.2).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

testIf(missing, "ssh_connect with a key file connects and ssh_exec runs a command", async () => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmSession({ json: true });
  const info = await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  assert.equal(info.state, "connected");
  assert.equal(info.active_address, sshd.address);
  assert.equal(info.host_key_fingerprint, sshd.hostKeyFingerprint);
  const r = await rsm.callJson("ssh_exec", {
    session_id: "box",
    command: "id -un; echo err >&2; exit 3",
  });
  assert.equal(r.stdout, `${user.name}\n`);
  assert.equal(r.stderr, "err\n");
  assert.equal(r.exit_code, 3);
  assert.equal(r.timed_out, false);
  const rows = await rsm.callJson("ssh_list");
  assert.equal(rows.length, 1);
  assert.equal(await rsm.call("ssh_disconnect", { id: "box" }), "disconnected box");
  assert.deepEqual(await rsm.callJson("ssh_list"), []);
  const known = await Deno.readTextFile(join(rsm.tmp.rsmDir, "known_hosts"));
  assert.ok(known.includes(`[127.0.0.1]:${sshd.port} ssh-ed25519 `));
});
