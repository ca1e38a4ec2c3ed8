/**
 * The session tools' shapes (README "SSH sessions and exec"): SessionInfo and SessionRow fields, plain-text
 * confirmations, clear errors for unknown ids and bad specs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

testIf(
  missing,
  "ssh_connect, ssh_info, ssh_list and ssh_disconnect return what the README says",
  async (t) => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using rsm = await rsmWithEnv();

    await t.step("ssh_connect returns SessionInfo", async () => {
      const info = await rsm.callJson("ssh_connect", {
        id: "box",
        spec: { user: user.name, addresses: sshd.address, auth: { key_path: user.keyPath } },
      });
      assert.deepEqual(Object.keys(info).sort(), [
        "active_address",
        "addresses",
        "auto_reconnect",
        "connected_at",
        "forwards",
        "host_key_fingerprint",
        "id",
        "last_error",
        "persistent",
        "shells",
        "state",
        "user",
      ]);
      assert.equal(info.id, "box");
      assert.equal(info.user, user.name);
      assert.deepEqual(info.addresses, [sshd.address]);
      assert.equal(info.active_address, sshd.address);
      assert.equal(info.state, "connected");
      assert.equal(info.last_error, "");
      assert.ok(Date.parse(info.connected_at) > Date.now() - 60_000);
      assert.deepEqual(info.forwards, []);
      assert.deepEqual(info.shells, []);
      assert.equal(info.persistent, false);
      assert.equal(info.auto_reconnect, false);
      assert.equal(info.host_key_fingerprint, sshd.hostKeyFingerprint);
    });

    await t.step("ssh_list returns flat SessionRows", async () => {
      const rows = await rsm.callJson("ssh_list");
      assert.deepEqual(rows, [{
        id: "box",
        user: user.name,
        address: sshd.address,
        state: "connected",
        last_error: "",
        persistent: false,
        auto_reconnect: false,
        forwards: 0,
        shells: 0,
      }]);
      const status = await rsm.callJson("status");
      assert.equal(status.sessions.length, 1);
    });

    await t.step("unknown ids and bad specs fail with clear messages", async () => {
      assert.match(
        await rsm.callError("ssh_info", { id: "nope" }),
        /Cannot find SSH session "nope".*see ssh_list/,
      );
      assert.match(
        await rsm.callError("ssh_exec", { session_id: "nope", command: "true" }),
        /see ssh_list/,
      );
      assert.match(
        await rsm.callError("ssh_connect", { id: "x", spec: { addresses: "h:notaport" } }),
        /Cannot parse address "h:notaport"/,
      );
      assert.match(
        await rsm.callError("ssh_connect", { id: "x", spec: { addresses: "h", timeout: "soon" } }),
        /timeout/,
      );
      assert.match(
        await rsm.callError("ssh_connect", { id: "x", spec: { addresses: "h", bogus: 1 } }),
        /bogus/,
      );
      assert.deepEqual((await rsm.callJson("ssh_list")).map((r: { id: string }) => r.id), ["box"]);
    });

    await t.step("ssh_disconnect answers in plain text and the id is free again", async () => {
      assert.equal(await rsm.call("ssh_disconnect", { id: "box" }), "disconnected box");
      assert.deepEqual(await rsm.callJson("ssh_list"), []);
      assert.match(await rsm.callError("ssh_disconnect", { id: "box" }), /see ssh_list/);
      const known = await Deno.readTextFile(join(rsm.tmp.rsmDir, "known_hosts"));
      assert.ok(known.includes(`[127.0.0.1]:${sshd.port} ssh-ed25519 `));
    });
  },
);
