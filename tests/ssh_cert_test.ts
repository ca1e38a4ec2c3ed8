/**
 * OpenSSH certificates (issue 15, acceptance 5) against real sshd:
 * - user certificates: an sshd that trusts only a user CA (`TrustedUserCAKeys`,
 *   `AuthorizedKeysFile none`) accepts ed25519, ecdsa and rsa certificates beside the key
 *   (`KEY-cert.pub`), a certificate held by ssh-agent, and refuses an expired one with an
 *   error that says it expired;
 * - host certificates: an sshd with `HostCertificate` is accepted under host_key_policy
 *   strict through a `@cert-authority` line alone, and refused when the CA is `@revoked` or
 *   the line names another CA.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf } from "./support/env.ts";
import { createUser, genKey, startSshd } from "./support/sshd.ts";
import { rsmWithEnv, startAgent } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "ssh-agent", "ssh-add", "useradd"], true);

async function sign(ca: string, pub: string, args: string[]): Promise<void> {
  const r = await run("ssh-keygen", ["-q", "-s", ca, "-I", "rsm-test", ...args, pub]);
  if (r.code !== 0) throw new Error(`ssh-keygen -s failed: ${r.stderr}`);
}

testIf(missing, "user certificates: ed25519, ecdsa, rsa, agent; expired refused", async (t) => {
  await using user = await createUser();
  const dir = await Deno.makeTempDir({ prefix: "rsm-cert-" });
  try {
    const ca = join(dir, "user_ca");
    await genKey(ca, { comment: "user-ca" });
    await using sshd = await startSshd({
      passwordAuth: false,
      extraConfig: [
        `TrustedUserCAKeys ${ca}.pub`,
        "AuthorizedKeysFile none",
        "MaxAuthTries 10",
      ].join("\n"),
    });
    await using agent = await startAgent();
    await using rsm = await rsmWithEnv({ SSH_AUTH_SOCK: agent.socket });
    let n = 0;
    const connect = async (auth: Record<string, unknown>) => {
      const id = `c${++n}`;
      await rsm.callJson("ssh_connect", {
        id,
        spec: { user: user.name, addresses: sshd.address, auth },
      });
      const r = await rsm.callJson("ssh_exec", { session_id: id, command: "id -un" });
      assert.equal(r.stdout.trim(), user.name);
      await rsm.call("ssh_disconnect", { id });
    };

    await t.step("a plain key is refused by this server (only certificates count)", async () => {
      const err = await rsm.callError("ssh_connect", {
        id: "plain",
        spec: { user: user.name, addresses: sshd.address, auth: { key_path: user.keyPath } },
      });
      assert.match(err, /Cannot authenticate/);
    });

    for (const type of ["ed25519", "ecdsa", "rsa"] as const) {
      await t.step(`an ${type} certificate beside the key`, async () => {
        const key = join(dir, `id_${type}`);
        await genKey(key, { type });
        await sign(ca, `${key}.pub`, ["-n", user.name, "-V", "-5m:+1h"]);
        await connect({ key_path: key, use_agent: false });
      });
    }

    await t.step("a certificate held by ssh-agent", async () => {
      const key = join(dir, "agent_key");
      await genKey(key);
      await sign(ca, `${key}.pub`, ["-n", user.name, "-V", "-5m:+1h"]);
      await agent.add(key); // ssh-add loads KEY-cert.pub with it
      const listed = await run("ssh-add", ["-l"], {
        env: { ...Deno.env.toObject(), SSH_AUTH_SOCK: agent.socket },
      });
      assert.match(listed.stdout, /CERT/);
      await connect({ use_agent: true });
    });

    await t.step("an expired certificate is refused, saying it expired", async () => {
      const key = join(dir, "old_key");
      await genKey(key);
      await sign(ca, `${key}.pub`, ["-n", user.name, "-V", "-2h:-1h"]);
      const err = await rsm.callError("ssh_connect", {
        id: "old",
        spec: {
          user: user.name,
          addresses: sshd.address,
          auth: { key_path: key, use_agent: false },
        },
      });
      assert.match(err, /certificate .*old_key-cert\.pub \(expired at \d{4}-/);
    });

    await t.step("a certificate for another principal is not offered", async () => {
      const key = join(dir, "other_key");
      await genKey(key);
      await sign(ca, `${key}.pub`, ["-n", "someone-else", "-V", "-5m:+1h"]);
      const err = await rsm.callError("ssh_connect", {
        id: "other",
        spec: {
          user: user.name,
          addresses: sshd.address,
          auth: { key_path: key, use_agent: false },
        },
      });
      assert.match(err, /valid for someone-else, not /);
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

testIf(
  missing,
  "host certificates: @cert-authority accepts, @revoked and other CAs refuse",
  async (t) => {
    await using user = await createUser();
    const dir = await Deno.makeTempDir({ prefix: "rsm-hostcert-" });
    try {
      const ca = join(dir, "host_ca");
      const other = join(dir, "other_ca");
      await genKey(ca, { comment: "host-ca" });
      await genKey(other, { comment: "other-ca" });
      await using sshd = await startSshd();
      await sign(ca, `${sshd.hostKeyPath}.pub`, ["-h", "-n", sshd.host, "-V", "-5m:+1h"]);
      await Deno.writeTextFile(
        sshd.configPath,
        `HostCertificate ${sshd.hostKeyPath}-cert.pub\n`,
        { append: true },
      );
      await sshd.restart();
      await using rsm = await rsmWithEnv();
      const knownHosts = join(rsm.tmp.home, ".ssh", "known_hosts");
      const caPub = (await Deno.readTextFile(`${ca}.pub`)).trim();
      const otherPub = (await Deno.readTextFile(`${other}.pub`)).trim();
      const name = `[${sshd.host}]:${sshd.port}`;
      const spec = {
        user: user.name,
        addresses: sshd.address,
        auth: { key_path: user.keyPath },
        host_key_policy: "strict",
      };

      await t.step("without a @cert-authority line, strict refuses the unknown host", async () => {
        await Deno.writeTextFile(knownHosts, "");
        const err = await rsm.callError("ssh_connect", { id: "none", spec });
        assert.match(err, /not in any known_hosts file/);
      });

      await t.step("a @cert-authority line alone is enough (no host key entry)", async () => {
        await Deno.writeTextFile(knownHosts, `@cert-authority ${name} ${caPub}\n`);
        const info = await rsm.callJson("ssh_connect", { id: "ok", spec });
        assert.equal(info.state, "connected");
        assert.equal(info.host_key_fingerprint, sshd.hostKeyFingerprint); // of the key, not the certificate
        await rsm.call("ssh_disconnect", { id: "ok" });
      });

      await t.step("a @cert-authority line with a host pattern works too", async () => {
        await Deno.writeTextFile(knownHosts, `@cert-authority [127.0.0.*]:*,otherhost ${caPub}\n`);
        const info = await rsm.callJson("ssh_connect", { id: "pattern", spec });
        assert.equal(info.state, "connected");
        await rsm.call("ssh_disconnect", { id: "pattern" });
      });

      await t.step("a @revoked CA is refused", async () => {
        await Deno.writeTextFile(
          knownHosts,
          `@cert-authority ${name} ${caPub}\n@revoked * ${caPub}\n`,
        );
        const err = await rsm.callError("ssh_connect", { id: "revoked", spec });
        assert.match(err, /@revoked/);
      });

      await t.step("a @cert-authority line naming another CA is refused", async () => {
        await Deno.writeTextFile(knownHosts, `@cert-authority ${name} ${otherPub}\n`);
        const err = await rsm.callError("ssh_connect", {
          id: "otherca",
          spec: { ...spec, host_key_policy: "accept-new" },
        });
        assert.match(err, /signed by CA SHA256:\S+, which no @cert-authority line .* trusts/);
        assert.equal((await rsm.callJson("ssh_list")).length, 0);
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
