/**
 * Jump hosts (issue 3, acceptance 2 and 3) through netns bastions: the target is reachable
 * only from a bastion (the test process cannot reach it); `jump_hosts` with one and two
 * bastions; `ProxyJump` in ~/.ssh/config, as a list and nested.
 *
 * Topology: root ─l1─ b1 ─l2─ b2 ─l3─ tgt, and b1 ─l4─ tgt.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { createNet } from "./support/netns.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "ip"], true);

testIf(missing, "jump hosts reach a target only bastions can reach", async (t) => {
  await using user = await createUser();
  await using net = await createNet();
  const b1 = await net.host("b1");
  const b2 = await net.host("b2");
  const tgt = await net.host("tgt");
  const l1 = await net.link("root", b1);
  const l2 = await net.link(b1, b2);
  const l3 = await net.link(b2, tgt);
  const l4 = await net.link(b1, tgt);
  await using _s1 = await startSshd({ netns: b1.ns, listen: l1.addrB, port: 22 });
  await using _s2 = await startSshd({ netns: b2.ns, listen: l2.addrB, port: 22 });
  await using _st = await startSshd({ netns: tgt.ns, listen: "0.0.0.0", port: 22 });
  await using rsm = await rsmWithEnv();
  const auth = { key_path: user.keyPath };
  const whereAmI = async (id: string) =>
    (await rsm.callJson("ssh_exec", { session_id: id, command: "ip -4 -o addr show" })).stdout;

  await t.step("the test process cannot reach the target directly", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "direct",
      spec: { user: user.name, addresses: [l4.addrB], auth, timeout: "2s" },
    });
    assert.match(err, /Cannot connect/);
  });

  await t.step("one bastion in jump_hosts", async () => {
    const info = await rsm.callJson("ssh_connect", {
      id: "one",
      spec: {
        user: user.name,
        addresses: [l4.addrB],
        auth,
        jump_hosts: [{ user: user.name, addresses: [l1.addrB], auth }],
      },
    });
    assert.equal(info.state, "connected");
    assert.match(await whereAmI("one"), new RegExp(`inet ${l4.addrB.replaceAll(".", "\\.")}/`));
    await rsm.call("ssh_disconnect", { id: "one" });
  });

  await t.step("a chain of two bastions", async () => {
    const info = await rsm.callJson("ssh_connect", {
      id: "two",
      spec: {
        user: user.name,
        addresses: [l3.addrB],
        auth,
        jump_hosts: [
          { user: user.name, addresses: [l1.addrB], auth },
          { user: user.name, addresses: [l2.addrB], auth },
        ],
      },
    });
    assert.equal(info.active_address, `${l3.addrB}:22`);
    assert.match(await whereAmI("two"), new RegExp(`inet ${l3.addrB.replaceAll(".", "\\.")}/`));
    await rsm.call("ssh_disconnect", { id: "two" });
  });

  await t.step("a failing bastion says which hop failed", async () => {
    const err = await rsm.callError("ssh_connect", {
      id: "badjump",
      spec: {
        user: user.name,
        addresses: [l4.addrB],
        auth,
        jump_hosts: [{
          user: user.name,
          addresses: [l1.addrB],
          auth: { password: "wrong-password", use_agent: false },
        }],
      },
    });
    assert.match(err, /jump host 1 of 1/);
    assert.match(err, /Cannot authenticate/);
  });

  const config = join(rsm.tmp.home, ".ssh", "config");
  const hostBlock = (name: string, addr: string, extra: string[] = []) => [
    `Host ${name}`,
    `  HostName ${addr}`,
    `  User ${user.name}`,
    `  IdentityFile ${user.keyPath}`,
    ...extra,
  ];

  await t.step("ProxyJump in ssh_config is followed through two bastions", async () => {
    await Deno.writeTextFile(
      config,
      [
        ...hostBlock("bastion1", l1.addrB),
        ...hostBlock("bastion2", l2.addrB),
        ...hostBlock("target", l3.addrB, ["  ProxyJump bastion1,bastion2"]),
        "",
      ].join("\n"),
    );
    const info = await rsm.callJson("ssh_connect", { id: "cfg", spec: { addresses: ["target"] } });
    assert.equal(info.state, "connected");
    assert.match(await whereAmI("cfg"), new RegExp(`inet ${l3.addrB.replaceAll(".", "\\.")}/`));
    await rsm.call("ssh_disconnect", { id: "cfg" });
  });

  await t.step("a nested ProxyJump (a bastion with its own ProxyJump) is followed", async () => {
    await Deno.writeTextFile(
      config,
      [
        ...hostBlock("bastion1", l1.addrB),
        ...hostBlock("bastion2", l2.addrB, ["  ProxyJump bastion1"]),
        ...hostBlock("target", l3.addrB, ["  ProxyJump bastion2"]),
        "",
      ].join("\n"),
    );
    const info = await rsm.callJson("ssh_connect", { id: "nested", spec: { addresses: "target" } });
    assert.equal(info.state, "connected");
    await rsm.call("ssh_disconnect", { id: "nested" });
  });

  await t.step("explicit jump_hosts replace the configured ProxyJump", async () => {
    const info = await rsm.callJson("ssh_connect", {
      id: "override",
      spec: {
        addresses: [`${l4.addrB}`],
        user: user.name,
        auth,
        jump_hosts: [{ addresses: ["bastion1"] }],
      },
    });
    assert.equal(info.state, "connected");
    assert.match(
      await whereAmI("override"),
      new RegExp(`inet ${l4.addrB.replaceAll(".", "\\.")}/`),
    );
  });
});
