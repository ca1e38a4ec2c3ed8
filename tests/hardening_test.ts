/**
 * Hardening: what rsm claims, made exactly true and shown to fail when broken.
 * - 500 connections that never send a full request are closed by the daemon while a real
 *   client's tool calls succeed (the front door in lib/http/front.ts);
 * - `arguments` that are not an object get -32602 with a plain message;
 * - each launcher's REMOTE_SHELL_MCP_TOOLS / _FORMAT reaches its own MCP session;
 * - a failed audit-log write is in daemon.log and in `status`;
 * - directory modes an SFTP server refuses to set are reported in the upload's result.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, tempEnv, testIf, waitFor } from "./support/env.ts";
import { readHandle, startRsm, stopDaemon } from "./support/mcp.ts";
import { rsmSession } from "./support/mcp.ts";
import { lineClient, scanForSecrets } from "./support/secrets_scan.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";
import { z } from "zod";
import { applyAliases } from "../lib/mcp/aliases.ts";
import { allTools } from "../lib/mcp/mod.ts";
import { builtinBackends } from "./support/backends.ts";

/**
 * Disposed last: the SDK's StdioClientTransport.close() leaves a 2 s timer running after the
 * launcher exits; wait it out so the next test's sanitizer does not see it.
 */
const settle = () => ({
  [Symbol.asyncDispose]: () => new Promise<void>((r) => setTimeout(r, 2100)),
});

const fdCount = (pid: number) => [...Deno.readDirSync(`/proc/${pid}/fd`)].length;

Deno.test("500 connections that never send a full request are closed; real calls go on", async () => {
  await using _settle = settle();
  await using rsm = await rsmSession({ json: true });
  await rsm.callJson("status");
  const h = (await readHandle(rsm.tmp.env))!;
  const port = Number(new URL(h.url).port);
  const fdsBefore = fdCount(h.pid);
  const conns: Deno.TcpConn[] = [];
  const enc = new TextEncoder();
  try {
    for (let i = 0; i < 500; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(c);
      // half send nothing at all, half an unfinished head (a "slowloris")
      if (i % 2) await c.write(enc.encode(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `));
    }
    const opened = Date.now();
    // a real client keeps working meanwhile
    for (let i = 0; i < 20; i++) {
      const s = await rsm.callJson("status");
      assert.equal(s.pid, h.pid);
    }
    // every slow connection is closed by the daemon (EOF or reset), within the head timeout
    const closedAt = await Promise.all(conns.map(async (c) => {
      const buf = new Uint8Array(256);
      const timer = setTimeout(() => c.close(), 30_000);
      try {
        while ((await c.read(buf)) !== null) { /* a 408 answer may come first */ }
        return Date.now() - opened;
      } catch {
        return Date.now() - opened;
      } finally {
        clearTimeout(timer);
      }
    }));
    const late = closedAt.filter((ms) => ms >= 25_000).length;
    assert.equal(late, 0, `${late} of 500 slow connections were still open after 25 s`);
    // and the daemon does not keep their file descriptors
    await waitFor(
      "the daemon's fds back to baseline",
      () => fdCount(h.pid) <= fdsBefore + 10,
      5000,
    );
    assert.equal((await rsm.callJson("status")).pid, h.pid);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
});

Deno.test("tools/call arguments that are not an object get -32602 with a plain message", async () => {
  await using tmp = await tempEnv();
  const c = lineClient({ ...tmp.env, REMOTE_SHELL_MCP_FORMAT: "json" });
  try {
    await c.initialize();
    for (const args of [[1, 2], "status", 7, null]) {
      const r = await c.request("tools/call", { name: "status", arguments: args });
      assert.equal(r.error?.code, -32602, JSON.stringify(r));
      assert.match(r.error.message, /arguments of status must be a JSON object/);
      assert.ok(r.error.message.length < 300, "no validation dump");
    }
    const r = await c.request("tools/call", "status");
    assert.equal(r.error?.code, -32602, JSON.stringify(r));
    assert.match(r.error.message, /params must be an object/);
    // the daemon keeps serving
    const ok = await c.request("tools/call", { name: "status", arguments: {} });
    assert.ok(ok.result && !ok.result.isError, JSON.stringify(ok));
  } finally {
    await c.close();
    await stopDaemon(tmp.env);
  }
});

Deno.test("each client's tool profile and format reach its own session on one daemon", async () => {
  await using _settle = settle();
  await using tmp = await tempEnv();
  // the first client starts the daemon with the ssh profile
  const a = await startRsm({ ...tmp.env, REMOTE_SHELL_MCP_TOOLS: "ssh,meta" });
  const b = await startRsm(tmp.env, { json: true });
  const c = await startRsm({ ...tmp.env, REMOTE_SHELL_MCP_TOOLS: "docker" }, { json: true });
  try {
    const pid = (await readHandle(tmp.env))!.pid;
    type T = { name: string };
    const listA: T[] = (await a.client.listTools()).tools;
    const listB: T[] = (await b.client.listTools()).tools;
    const listC: T[] = (await c.client.listTools()).tools;
    assert.ok(listA.some((t) => t.name === "ssh_connect"));
    assert.ok(listA.some((t) => t.name === "status"));
    assert.ok(!listA.some((t) => /^(docker_|ssh_shell_|ssh_forward|ssh_file_)/.test(t.name)));
    assert.ok(
      new TextEncoder().encode(JSON.stringify({ tools: listA })).length <= 12 * 1024,
      "the ssh profile stays within 12 KB",
    );
    assert.ok(
      listB.some((t) => t.name === "docker_run") && listB.some((t) => t.name === "ssh_exec"),
    );
    assert.ok(listB.length > listA.length + 20, `full profile: ${listB.length} tools`);
    assert.ok(listC.some((t) => t.name === "docker_run"));
    assert.ok(!listC.some((t) => t.name.startsWith("ssh_")), listC.map((t) => t.name).join());
    // a tool outside the profile is refused, naming the profile
    const refused = await a.callRaw("docker_list_hosts", {});
    assert.equal(refused.isError, true);
    // formats: a asked for none (TOON, the default), b for JSON
    const textA = await a.call("status");
    assert.throws(() => JSON.parse(textA));
    assert.match(textA, /^version: /m);
    const status = await b.callJson("status");
    assert.equal(status.format, "json");
    // the daemon dropped the permission to start deno or rsm (it never starts itself)
    assert.deepEqual(status.may_run, []);
    assert.equal((await readHandle(tmp.env))!.pid, pid, "one daemon served all three");
  } finally {
    await a.close();
    await b.close();
    await c.close();
    await stopDaemon(tmp.env);
  }
});

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

testIf(
  missing,
  "a failed audit write is logged and shown; refused dir modes are reported",
  async (t) => {
    await using user = await createUser();
    // an SFTP server that refuses to set modes by path (OpenSSH's `-P setstat`)
    await using sshd = await startSshd({ sftpArgs: "-P setstat" });
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    const config = rsm.tmp.env.XDG_CONFIG_HOME;
    assert.ok(config, "the test environment sets XDG_CONFIG_HOME");
    const dir = join(config, "remote-shell-mcp");

    await t.step(
      "audit.log cannot be written: the call works, daemon.log and status say so",
      async () => {
        const audit = join(dir, "audit.log");
        await Deno.remove(audit).catch(() => {});
        await Deno.mkdir(audit); // writing a directory fails, even as root
        const r = await rsm.callJson("ssh_exec", { session_id: "box", command: "echo audited" });
        assert.equal(r.stdout, "audited\n");
        const s = await rsm.callJson("status");
        assert.ok(s.audit_log_errors, `status: ${JSON.stringify(s)}`);
        assert.ok(s.audit_log_errors.failed_writes >= 1);
        assert.match(s.audit_log_errors.last_error, /directory|EISDIR/i);
        const log = await Deno.readTextFile(join(dir, "daemon.log"));
        assert.match(log, /audit log write failed.*ssh_exec/);
        await Deno.remove(audit);
        await rsm.callJson("ssh_exec", { session_id: "box", command: "true" });
        assert.match(await Deno.readTextFile(audit), /"tool":"ssh_exec"/);
      },
    );

    await t.step("old argument forms work end to end", async () => {
      const r = await rsm.callJson("ssh_exec", {
        session_id: "box",
        command: "echo z",
        timeout_ms: 0,
      });
      assert.equal(r.stdout, "z\n");
      const path = `${user.home}/m.txt`;
      await rsm.call("ssh_file_write", { session_id: "box", path, data: "m", mode: 600 });
      assert.equal((Deno.statSync(path).mode! & 0o777).toString(8), "600");
      // this server refuses setstat (see above): past validation, the server's answer comes back
      const denied = await rsm.callError("ssh_file_chmod", { session_id: "box", path, mode: 640 });
      assert.match(denied, /Cannot chmod .*permission denied/);
      const bad = await rsm.callError("ssh_file_chmod", { session_id: "box", path, mode: 493 });
      assert.match(bad, /mode 493 is not octal digits.*"0755"/);
      // a jump host with its own timeout (the old per-hop field), through the same sshd
      await rsm.callJson("ssh_connect", {
        id: "hop",
        spec: {
          user: user.name,
          addresses: [sshd.address],
          auth: { key_path: user.keyPath },
          jump_hosts: [{
            user: user.name,
            addresses: [sshd.address],
            auth: { key_path: user.keyPath },
            timeout: "20s",
          }],
        },
      });
      const hop = await rsm.callJson("ssh_exec", { session_id: "hop", command: "echo via" });
      assert.equal(hop.stdout, "via\n");
    });

    await t.step("directory modes the server refuses are listed in mode_errors", async () => {
      const src = await Deno.makeTempDir({ prefix: "rsm-upl-" });
      try {
        await Deno.mkdir(join(src, "sub"));
        await Deno.writeTextFile(join(src, "sub", "f.txt"), "x");
        await Deno.chmod(join(src, "sub"), 0o750);
        await Deno.chmod(src, 0o755);
        const r = await rsm.callJson("ssh_upload", {
          session_id: "box",
          local_path: src,
          remote_path: `${user.home}/tree`,
        });
        assert.equal(r.files, 1);
        assert.ok(Array.isArray(r.mode_errors), `result: ${JSON.stringify(r)}`);
        assert.equal(r.mode_errors.length, 2);
        assert.match(r.mode_errors.join("\n"), /tree\/sub: mode 0750 not set/);
        assert.match(r.mode_errors.join("\n"), /tree: mode 0755 not set/);
      } finally {
        await Deno.remove(src, { recursive: true });
      }
    });
  },
);

Deno.test("old argument forms are rewritten where clear and refused precisely where not", () => {
  const schema = (tool: string) =>
    z.strictObject(allTools(builtinBackends()).find((t) => t.name === tool)!.input);
  const ok = (tool: string, args: Record<string, unknown>) => {
    const out = applyAliases(tool, args);
    const parsed = schema(tool).safeParse(out);
    assert.ok(parsed.success, `${tool}: ${JSON.stringify(out)} ${parsed.error?.message ?? ""}`);
    return out as Record<string, unknown>;
  };
  const refused = (tool: string, args: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => applyAliases(tool, args), re);

  // docker_connect: flat SSH fields, in spec or beside id
  assert.deepEqual(
    ok("docker_connect", {
      id: "d",
      spec: { host: "ssh://me@h", key_path: "/k", ssh_insecure: true, ssh_user: "me" },
    }),
    {
      id: "d",
      spec: {
        host: "ssh://me@h",
        host_key_policy: "insecure",
        user: "me",
        auth: { key_path: "/k" },
      },
    },
  );
  assert.deepEqual(ok("docker_connect", { id: "d", host: "unix:///s", ssh_password: "pw" }), {
    id: "d",
    spec: { host: "unix:///s", auth: { password: "pw" } },
  });
  refused(
    "docker_connect",
    { id: "d", spec: { key_path: "/a", auth: { key_path: "/b" } } },
    /spec.key_path and spec.auth.key_path differ/,
  );
  refused(
    "docker_connect",
    { id: "d", spec: { ssh_insecure: true, host_key_policy: "strict" } },
    /contradicts host_key_policy "strict"/,
  );
  refused("docker_connect", { id: "d", spec: { ssh_insecure: "yes" } }, /must be true or false/);
  // jump_hosts[].timeout
  const hop = { addresses: "b", timeout: "40s" };
  assert.equal(
    (ok("ssh_connect", { id: "s", spec: { addresses: "a", jump_hosts: [hop] } })
      .spec as Record<string, unknown>).timeout,
    40_000,
  );
  refused(
    "ssh_connect",
    { id: "s", spec: { addresses: "a", jump_hosts: [{ addresses: "b", timeout: "soon" }] } },
    /jump_hosts\[0\].timeout must be a duration/,
  );
  // docker_run.detach
  const spec = (o: Record<string, unknown>) => o.spec as Record<string, unknown>;
  assert.equal(
    spec(ok("docker_run", { host_id: "h", spec: { image: "x", detach: false } })).wait,
    true,
  );
  assert.equal(
    spec(ok("docker_run", { host_id: "h", spec: { image: "x", detach: true } })).wait,
    undefined,
  );
  assert.equal(
    spec(ok("docker_run", { host_id: "h", detach: false, spec: { image: "x" } })).wait,
    true,
  );
  refused(
    "docker_run",
    { host_id: "h", spec: { image: "x", detach: true, wait: true } },
    /contradicts spec.wait/,
  );
  // numeric chmod modes, tail as a string, timeout_ms: 0
  assert.equal(ok("ssh_file_chmod", { session_id: "s", path: "/p", mode: 755 }).mode, "755");
  assert.equal(ok("ssh_file_chmod", { session_id: "s", path: "/p", mode: 4755 }).mode, "4755");
  refused("ssh_file_chmod", { session_id: "s", path: "/p", mode: 493 }, /not octal digits/);
  assert.equal(
    ok("docker_container_logs", { host_id: "h", container: "c", tail: "100" }).tail,
    100,
  );
  assert.equal(
    ok("docker_container_logs", { host_id: "h", container: "c", tail: "all" }).tail,
    "all",
  );
  refused(
    "docker_container_logs",
    { host_id: "h", container: "c", tail: "lots" },
    /"lots" is neither/,
  );
  for (const tool of ["ssh_exec", "docker_exec", "ssh_shell_run", "docker_shell_run"]) {
    const base = tool.startsWith("docker_exec")
      ? { host_id: "h", container: "c", cmd: ["true"] }
      : tool === "ssh_exec"
      ? { session_id: "s", command: "true" }
      : tool === "ssh_shell_run"
      ? { session_id: "s", shell_id: "x", command: "true" }
      : { host_id: "h", shell_id: "x", command: "true" };
    assert.equal(ok(tool, { ...base, timeout_ms: 0 }).timeout_ms, 3_600_000, tool);
  }
});

Deno.test("the secrets scan of a directory that does not exist fails instead of finding nothing", async () => {
  const missingDir = `/tmp/rsm-no-such-dir-${crypto.randomUUID()}`;
  await assert.rejects(scanForSecrets(missingDir, ["secret"]), Deno.errors.NotFound);
  await using tmp = await tempEnv();
  await Deno.mkdir(join(tmp.root, "d"));
  await Deno.writeTextFile(join(tmp.root, "d", "f"), "a secret here");
  assert.deepEqual(await scanForSecrets(join(tmp.root, "d"), ["secret"]), [
    `${join(tmp.root, "d", "f")}: secret #0`,
  ]);
});
