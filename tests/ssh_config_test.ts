/**
 * ssh_config as people write it (issue 15, acceptance 4 and 6): each directive is shown by a
 * connection that only works when it is honoured — `Include` (relative, globbed, nested),
 * `Match host`/`originalhost`, `Match user`, `CertificateFile`, `IdentitiesOnly` (an agent full
 * of wrong keys against `MaxAuthTries 2`), `UserKnownHostsFile` (with host_key_policy strict);
 * `Match exec` is refused with a clear error; `ProxyCommand` through nc and socat works when
 * REMOTE_SHELL_MCP_PROXY_COMMAND=1 and otherwise fails naming how to turn it on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf } from "./support/env.ts";
import { createUser, genKey, startSshd } from "./support/sshd.ts";
import { rsmWithEnv, startAgent } from "./support/ssh_test_helpers.ts";
import { expandProxyCommand } from "../lib/ssh/proxy_command.ts";

const missing = await need(
  ["sshd", "ssh-keygen", "ssh-agent", "ssh-add", "useradd", "nc", "socat"],
  true,
);

Deno.test("ProxyCommand tokens: %h %p %r %n and %%", () => {
  assert.equal(
    expandProxyCommand("x %h:%p %r %n 100%% %z", {
      host: "10.0.0.5",
      port: 2222,
      user: "ops",
      originalHost: "db",
    }),
    "x 10.0.0.5:2222 ops db 100% %z",
  );
});

async function writeFiles(home: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    const path = join(home, rel);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeTextFile(path, text);
  }
}

testIf(missing, "ssh_config directives change what rsm does", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  const dir = await Deno.makeTempDir({ prefix: "rsm-cfg-" });
  await using agent = await startAgent();
  for (let i = 0; i < 3; i++) {
    await genKey(join(dir, `wrong${i}`));
    await agent.add(join(dir, `wrong${i}`));
  }
  await using strictSshd = await startSshd({ extraConfig: "MaxAuthTries 2" });
  const ca = join(dir, "ca");
  await genKey(ca);
  await using certSshd = await startSshd({
    passwordAuth: false,
    extraConfig: `TrustedUserCAKeys ${ca}.pub\nAuthorizedKeysFile none`,
  });
  await using rsm = await rsmWithEnv({ SSH_AUTH_SOCK: agent.socket });
  const home = rsm.tmp.home;
  const U = user.name;
  const K = user.keyPath;
  const exec = async (id: string) => {
    const r = await rsm.callJson("ssh_exec", { session_id: id, command: "id -un" });
    assert.equal(r.stdout.trim(), U);
    await rsm.call("ssh_disconnect", { id });
  };
  try {
    await t.step("Include config.d/* with a nested Include", async () => {
      await writeFiles(home, {
        ".ssh/config": "Include config.d/*\n",
        ".ssh/config.d/10-base": "Include ~/.ssh/nested/*.conf\n",
        ".ssh/nested/box.conf":
          `Host box\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${U}\n  IdentityFile ${K}\n`,
      });
      await rsm.callJson("ssh_connect", { id: "inc", spec: { addresses: "box" } });
      await exec("inc");
    });

    await t.step("ssh_connect_many finds hosts by a Host pattern, through Includes", async () => {
      const r = await rsm.callJson("ssh_connect_many", { spec: {}, host_pattern: "bo*" });
      assert.deepEqual(r.connected.map((c: { id: string }) => c.id), ["box"]);
      assert.deepEqual(r.failed, []);
      await exec("box");
      const err = await rsm.callError("ssh_connect_many", { spec: {}, host_pattern: "zz*" });
      assert.match(err, /no Host alias .* matches it/);
    });

    await t.step("Match host / originalhost set the port and key", async () => {
      await writeFiles(home, {
        ".ssh/config": [
          "Host mh",
          "  HostName 127.0.0.1",
          `  User ${U}`,
          "Match originalhost mh host 127.0.0.1",
          `  Port ${sshd.port}`,
          `  IdentityFile ${K}`,
          "",
        ].join("\n"),
      });
      await rsm.callJson("ssh_connect", { id: "mh", spec: { addresses: "mh" } });
      await exec("mh");
    });

    await t.step("Match user gives the key for that user only", async () => {
      await writeFiles(home, {
        ".ssh/config": `Match user ${U}\n  IdentityFile ${K}\n`,
      });
      const spec = { user: U, addresses: sshd.address, auth: { use_agent: false } };
      await rsm.callJson("ssh_connect", { id: "mu", spec });
      await exec("mu");
      const err = await rsm.callError("ssh_connect", {
        id: "mu2",
        spec: { ...spec, user: "root" },
      });
      assert.match(err, /Cannot authenticate as root/);
    });

    await t.step("Match exec is refused, saying why", async () => {
      await writeFiles(home, {
        ".ssh/config": `Host ex\n  HostName 127.0.0.1\nMatch exec "test -e /"\n  Port 1\n`,
      });
      const err = await rsm.callError("ssh_connect", { id: "ex", spec: { addresses: "ex" } });
      assert.match(err, /Match exec.*never runs programs/);
    });

    await t.step("CertificateFile names a certificate kept elsewhere", async () => {
      const key = join(dir, "certkey");
      await genKey(key);
      const r = await run("ssh-keygen", ["-q", "-s", ca, "-I", "t", "-n", U, `${key}.pub`]);
      assert.equal(r.code, 0, r.stderr);
      await Deno.mkdir(join(home, "certs"));
      await Deno.rename(`${key}-cert.pub`, join(home, "certs", "mine.cert"));
      const block = [
        "Host certbox",
        "  HostName 127.0.0.1",
        `  Port ${certSshd.port}`,
        `  User ${U}`,
        `  IdentityFile ${key}`,
      ];
      await writeFiles(home, { ".ssh/config": block.join("\n") + "\n" });
      const err = await rsm.callError("ssh_connect", { id: "nc", spec: { addresses: "certbox" } });
      assert.match(err, /Cannot authenticate/);
      await writeFiles(home, {
        ".ssh/config": [...block, "  CertificateFile ~/certs/mine.cert", ""].join("\n"),
      });
      await rsm.callJson("ssh_connect", { id: "cf", spec: { addresses: "certbox" } });
      await exec("cf");
    });

    await t.step(
      "IdentitiesOnly keeps the agent's wrong keys from using up MaxAuthTries",
      async () => {
        const block = [
          "Host io",
          "  HostName 127.0.0.1",
          `  Port ${strictSshd.port}`,
          `  User ${U}`,
          `  IdentityFile ${K}`,
        ];
        await writeFiles(home, { ".ssh/config": block.join("\n") + "\n" });
        await rsm.callError("ssh_connect", { id: "io1", spec: { addresses: "io" } });
        await writeFiles(home, {
          ".ssh/config": [...block, "  IdentitiesOnly yes", ""].join("\n"),
        });
        await rsm.callJson("ssh_connect", { id: "io", spec: { addresses: "io" } });
        await exec("io");
      },
    );

    await t.step("UserKnownHostsFile is where strict looks for the host key", async () => {
      // a server this daemon has never seen (so its own known_hosts does not know it either)
      await using fresh = await startSshd();
      await writeFiles(home, { "kh/custom": `${fresh.knownHostsLine}\n` });
      const block = [
        "Host kh",
        "  HostName 127.0.0.1",
        `  Port ${fresh.port}`,
        `  User ${U}`,
        `  IdentityFile ${K}`,
      ];
      const spec = { addresses: "kh", host_key_policy: "strict" };
      await writeFiles(home, { ".ssh/config": block.join("\n") + "\n" });
      const err = await rsm.callError("ssh_connect", { id: "kh1", spec });
      assert.match(err, /not in any known_hosts file/);
      await writeFiles(home, {
        ".ssh/config": [...block, "  UserKnownHostsFile ~/kh/custom", ""].join("\n"),
      });
      await rsm.callJson("ssh_connect", { id: "kh", spec });
      await exec("kh");
    });

    const proxyConfig = [
      "Host viaNc",
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${U}`,
      `  IdentityFile ${K}`,
      "  ProxyCommand nc -w 41 %h %p",
      "Host viaSocat",
      "  HostName 127.0.0.1",
      `  Port ${sshd.port}`,
      `  User ${U}`,
      `  IdentityFile ${K}`,
      "  ProxyCommand socat - TCP:%h:%p,connect-timeout=41",
      "",
    ].join("\n");

    await t.step(
      "ProxyCommand is off by default and the error says how to turn it on",
      async () => {
        await writeFiles(home, { ".ssh/config": proxyConfig });
        const err = await rsm.callError("ssh_connect", { id: "p0", spec: { addresses: "viaNc" } });
        assert.match(err, /ProxyCommand "nc -w 41 %h %p".*REMOTE_SHELL_MCP_PROXY_COMMAND=1/);
        const ids = (await rsm.callJson("ssh_list")).map((s: { id: string }) => s.id);
        assert.ok(!ids.includes("p0"));
      },
    );

    await t.step("ProxyCommand through nc and socat works when turned on", async () => {
      await using on = await rsmWithEnv({ REMOTE_SHELL_MCP_PROXY_COMMAND: "1" });
      await writeFiles(on.tmp.home, { ".ssh/config": proxyConfig });
      for (const alias of ["viaNc", "viaSocat"]) {
        await on.callJson("ssh_connect", { id: alias, spec: { addresses: alias } });
        const r = await on.callJson("ssh_exec", { session_id: alias, command: "id -un" });
        assert.equal(r.stdout.trim(), U);
        // the program really carries the connection, and goes away with it
        const pattern = alias === "viaNc" ? "^nc -w 41 127" : "^socat - TCP:127.*timeout=41";
        assert.equal((await run("pgrep", ["-f", pattern])).code, 0, `${alias}: proxy running`);
        await on.call("ssh_disconnect", { id: alias });
        const deadline = Date.now() + 10_000;
        while ((await run("pgrep", ["-f", pattern])).code === 0) {
          assert.ok(Date.now() < deadline, `${alias}: the proxy program outlived the session`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
