/**
 * Where to connect (issue 3, acceptance 2 and 4): an ~/.ssh/config alias alone is enough;
 * several addresses are tried in order, a black-holing one costs only `timeout`; a server
 * that accepts TCP but never speaks SSH fails within `timeout` + 2 s.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { createNet } from "./support/netns.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip", "nft"], true);

testIf(missing, "ssh_connect finds the host through ssh_config and address lists", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using net = await createNet();
  const hole = await net.blackhole();
  await using rsm = await rsmWithEnv();

  await t.step("an ssh_config alias with HostName, Port, User, IdentityFile connects", async () => {
    await Deno.writeTextFile(
      join(rsm.tmp.home, ".ssh", "config"),
      [
        "Host myalias",
        `  HostName ${sshd.host}`,
        `  Port ${sshd.port}`,
        `  User ${user.name}`,
        `  IdentityFile ${user.keyPath}`,
        "",
      ].join("\n"),
    );
    const info = await rsm.callJson("ssh_connect", {
      id: "alias",
      spec: { addresses: ["myalias"] },
    });
    assert.equal(info.state, "connected");
    assert.equal(info.user, user.name);
    assert.equal(info.active_address, sshd.address);
    assert.deepEqual(info.addresses, ["myalias"]);
    const r = await rsm.callJson("ssh_exec", { session_id: "alias", command: "id -un" });
    assert.equal(r.stdout.trim(), user.name);
    await rsm.call("ssh_disconnect", { id: "alias" });
  });

  await t.step("an explicit spec field wins over ssh_config", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "alias2",
      spec: { addresses: "myalias", user: "nosuchuser-rsm" },
    });
    assert.match(err, /Cannot authenticate as nosuchuser-rsm/);
  });

  await t.step("disable_ssh_config ignores the alias", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "alias3",
      spec: { addresses: "myalias", disable_ssh_config: true, timeout: "3s" },
    });
    assert.match(err, /myalias/);
  });

  await t.step("a black-holing first address costs only its timeout", async () => {
    const started = Date.now();
    const info = await rsm.callJson("ssh_connect", {
      id: "multi",
      spec: {
        user: user.name,
        addresses: [`${hole}:22`, sshd.address],
        auth: { key_path: user.keyPath },
        timeout: "2s",
      },
    });
    const took = Date.now() - started;
    assert.ok(took < 10_000, `took ${took} ms`);
    assert.ok(took >= 1900, `took only ${took} ms: the black hole did not black-hole`);
    assert.equal(info.active_address, sshd.address);
    await rsm.call("ssh_disconnect", { id: "multi" });
  });

  await t.step(
    "a server that accepts TCP but never speaks SSH fails within timeout + 2 s",
    async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const c of listener) held.push(c);
      })().catch(() => {});
      try {
        const port = (listener.addr as Deno.NetAddr).port;
        const started = Date.now();
        const err = await rsm.callError("ssh_connect", {
          id: "mute",
          spec: {
            user: user.name,
            addresses: `127.0.0.1:${port}`,
            auth: { key_path: user.keyPath },
            timeout: "2s",
          },
        });
        const took = Date.now() - started;
        assert.ok(took < 4000, `took ${took} ms`);
        assert.match(err, /timed out after 2000 ms \(SSH handshake\)/);
      } finally {
        listener.close();
        for (const c of held) c.close();
        await accepting;
      }
    },
  );

  await t.step("an IPv6 address in [v6]:port form connects", async () => {
    await using sshd6 = await startSshd({ listen: "::1" });
    const info = await rsm.callJson("ssh_connect", {
      id: "v6",
      spec: { user: user.name, addresses: `[::1]:${sshd6.port}`, auth: { key_path: user.keyPath } },
    });
    assert.equal(info.active_address, `[::1]:${sshd6.port}`);
    await rsm.call("ssh_disconnect", { id: "v6" });
  });

  await t.step("every address failing lists each one", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "none",
      spec: {
        user: user.name,
        addresses: [`${hole}:22`, "127.0.0.1:1"],
        auth: { key_path: user.keyPath },
        timeout: "1s",
      },
    });
    assert.match(err, /every address failed/);
    assert.ok(err.includes(`${hole}:22: timed out`), err);
    assert.match(err, /127\.0\.0\.1:1: .*ECONNREFUSED|127\.0\.0\.1:1: .*refused/i);
  });
});
