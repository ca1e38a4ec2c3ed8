/**
 * policy.toml through `rsm stdio` against a real sshd: read-only mode (tools/list follows,
 * switching back needs no restart), deny rules over every part of a compound command, shells
 * and typed lines, fail-closed quoting, allow lists, per-target read_only, writable_paths,
 * non-loopback forwards, a broken file keeping the last good policy, and the audit log.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

/** Writes policy.toml into the daemon's config dir (the daemon re-reads it on change). */
async function writePolicy(dir: string, text: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(dir, `policy.toml.${crypto.randomUUID()}`);
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, join(dir, "policy.toml"));
}

testIf(missing, "policy.toml decides what the model may run", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  const dir = rsm.tmp.rsmDir;
  const policyFile = join(dir, "policy.toml");
  for (const id of ["prod-1", "ro-1"]) {
    await rsm.callJson("ssh_connect", {
      id,
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
  }
  const exec = (command: string, session_id = "prod-1") =>
    rsm.callRaw("ssh_exec", { session_id, command });
  const text = (r: { content: unknown }) =>
    (r.content as { text: string }[]).map((c) => c.text).join("");

  await t.step(
    "read-only mode lists and runs only read-only tools, and switches back",
    async () => {
      const all = (await rsm.client.listTools()).tools;
      let changed = 0;
      const { ToolListChangedNotificationSchema } = await import(
        "@modelcontextprotocol/sdk/types.js"
      );
      rsm.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        changed++;
      });
      await writePolicy(dir, 'mode = "read-only"\n');
      type Listed = { name: string; annotations?: { readOnlyHint?: boolean } };
      const listed: Listed[] = (await rsm.client.listTools()).tools;
      assert.ok(listed.length > 5 && listed.length < all.length, `${listed.length}/${all.length}`);
      assert.ok(listed.every((tool) => tool.annotations?.readOnlyHint === true));
      assert.ok(!listed.some((tool) => tool.name === "ssh_exec"));
      const err = await rsm.callError("ssh_exec", { session_id: "prod-1", command: "true" });
      assert.match(err, /mode = "read-only"/);
      assert.ok(err.includes(policyFile), err);
      assert.ok((await rsm.call("ssh_info", { id: "prod-1" })).includes("prod-1"));
      await writePolicy(dir, 'mode = "normal"\n');
      const r = await exec("echo back");
      assert.ok(!r.isError, text(r));
      assert.equal((await rsm.client.listTools()).tools.length, all.length);
      await waitFor("two tools/list_changed notifications", () => changed >= 2, 5000);
    },
  );

  await writePolicy(
    dir,
    `
[[rule]]
name = "prod safety"
targets = ["prod-*"]
deny = ["rm -rf", "re:\\\\bmkfs\\\\b"]

[[rule]]
targets = ["ro-*"]
read_only = true

[[rule]]
hosts = ["127.0.0.1"]
writable_paths = ["/tmp/rsm-policy-ok", "~/app"]
`,
  );

  await t.step("deny refuses every part of a compound command, naming rule and file", async () => {
    await Deno.mkdir("/tmp/rsm-policy-x", { recursive: true });
    try {
      for (
        const cmd of [
          "echo ok; rm -rf /tmp/rsm-policy-x",
          "echo $(rm -rf /tmp/rsm-policy-x)",
          "echo `rm -rf /tmp/rsm-policy-x`",
          "true && rm -rf /tmp/rsm-policy-x",
          "false || rm -rf /tmp/rsm-policy-x",
          "echo ok\nrm -rf /tmp/rsm-policy-x",
        ]
      ) {
        const r = await exec(cmd);
        assert.equal(r.isError, true, cmd);
        assert.match(text(r), /Refused by policy "prod safety" \(rule #1\)/, cmd);
        assert.ok(text(r).includes(policyFile), text(r));
        assert.match(text(r), /deny pattern "rm -rf"/);
      }
      assert.ok(Deno.statSync("/tmp/rsm-policy-x").isDirectory, "nothing ran");
    } finally {
      await Deno.remove("/tmp/rsm-policy-x", { recursive: true }).catch(() => {});
    }
    const ok = await exec("echo fine");
    assert.ok(!ok.isError && text(ok).includes("fine"));
  });

  await t.step(
    "quoted words that cannot be split with certainty fail closed, saying why",
    async () => {
      for (const cmd of ['echo "rm -rf /tmp/x"', 'r"m" -rf /tmp/x', "echo 'rm -rf /tmp"]) {
        const err = await rsm.callError("ssh_exec", { session_id: "prod-1", command: cmd });
        assert.match(err, /fail closed/, cmd);
        assert.match(err, /quot/, cmd);
      }
    },
  );

  await t.step("shell run and every typed line are checked", async () => {
    await rsm.callJson("ssh_shell_open", { session_id: "prod-1", shell_id: "sh" });
    const run = await rsm.callError("ssh_shell_run", {
      session_id: "prod-1",
      shell_id: "sh",
      command: "cd /tmp && rm -rf rsm-nothing",
    });
    assert.match(run, /"prod safety"/);
    const write = await rsm.callError("ssh_shell_write", {
      session_id: "prod-1",
      shell_id: "sh",
      data: "echo one\nrm -rf /tmp/rsm-nothing\n",
    });
    assert.match(write, /"prod safety"/);
    // a command split over two writes is still seen: the first half is typed, Enter is refused
    await rsm.callJson("ssh_shell_write", { session_id: "prod-1", shell_id: "sh", data: "rm -r" });
    const split = await rsm.callError("ssh_shell_write", {
      session_id: "prod-1",
      shell_id: "sh",
      data: "f /tmp/rsm-nothing\n",
    });
    assert.match(split, /"prod safety"/);
    await rsm.callJson("ssh_shell_write", { session_id: "prod-1", shell_id: "sh", data: "\u0003" });
    const fine = await rsm.callJson("ssh_shell_write", {
      session_id: "prod-1",
      shell_id: "sh",
      data: "echo typed-ok\n",
    });
    assert.equal(fine.bytes_written, 14);
  });

  await t.step("a read_only target refuses changes and allows reads", async () => {
    const err = await rsm.callError("ssh_exec", { session_id: "ro-1", command: "true" });
    assert.match(err, /read-only \(read_only = true\)/);
    const w = await rsm.callError("ssh_file_write", {
      session_id: "ro-1",
      path: "/tmp/rsm-policy-ok/x",
      data: "x",
    });
    assert.match(w, /rule #2/);
    const list = await rsm.callRaw("ssh_file_list", { session_id: "ro-1", path: "/" });
    assert.ok(!list.isError, text(list));
  });

  await t.step("writable_paths: writes and uploads outside are refused, inside work", async () => {
    await Deno.mkdir("/tmp/rsm-policy-ok", { recursive: true, mode: 0o777 });
    await Deno.chmod("/tmp/rsm-policy-ok", 0o777);
    try {
      const inside = await rsm.callJson("ssh_file_write", {
        session_id: "prod-1",
        path: "/tmp/rsm-policy-ok/a.txt",
        data: "inside\n",
      });
      assert.equal(inside.bytes_written, 7);
      assert.equal(await Deno.readTextFile("/tmp/rsm-policy-ok/a.txt"), "inside\n");
      const outside = await rsm.callError("ssh_file_write", {
        session_id: "prod-1",
        path: "/tmp/rsm-policy-ok/../rsm-policy-escape.txt",
        data: "no",
      });
      assert.match(outside, /outside writable_paths/);
      assert.match(outside, /rule #3/);
      await assert.rejects(Deno.stat("/tmp/rsm-policy-escape.txt"));
      const local = join(rsm.tmp.root, "up.txt");
      await Deno.writeTextFile(local, "up\n");
      const up = await rsm.callError("ssh_upload", {
        session_id: "prod-1",
        local_path: local,
        remote_path: "/tmp/rsm-policy-up.txt",
      });
      assert.match(up, /outside writable_paths/);
      const mk = await rsm.callRaw("ssh_file_mkdir", { session_id: "prod-1", path: "app" });
      assert.ok(!mk.isError, text(mk));
    } finally {
      await Deno.remove("/tmp/rsm-policy-ok", { recursive: true }).catch(() => {});
    }
  });

  await t.step("a forward on a non-loopback address is refused by the policy", async () => {
    const err = await rsm.callError("ssh_forward_local", {
      session_id: "prod-1",
      forward_id: "pub",
      bind_addr: "0.0.0.0",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 22,
      allow_remote_clients: true,
    });
    assert.match(err, /loopback/);
    assert.match(err, /public_forwards/);
    const ok = await rsm.callJson("ssh_forward_local", {
      session_id: "prod-1",
      forward_id: "lo",
      bind_port: 0,
      remote_host: "127.0.0.1",
      remote_port: 22,
    });
    assert.ok(ok.bind_port > 0);
  });

  await t.step("an allow list lets only its commands run", async () => {
    await writePolicy(
      dir,
      '[[rule]]\ntargets = ["prod-*"]\nallow = ["echo", "re:^uname( -a)?$"]\n',
    );
    assert.ok(!(await exec("echo a | echo b")).isError);
    assert.ok(!(await exec("uname -a")).isError);
    const err = await rsm.callError("ssh_exec", { session_id: "prod-1", command: "echo a; id" });
    assert.match(err, /"id" is not in the allow list/);
  });

  await t.step("a broken file keeps the last good policy and says why in status", async () => {
    await writePolicy(dir, "[[rule]\nbroken");
    const err = await rsm.callError("ssh_exec", { session_id: "prod-1", command: "id" });
    assert.match(err, /not in the allow list/, "the last good policy still holds");
    const status = await rsm.callJson("status");
    assert.match(status.policy.error, /not valid TOML/);
    assert.match(status.policy.error, /last good policy stays in force/);
    const log = await Deno.readTextFile(join(dir, "daemon.log"));
    assert.match(log, /policy file not loaded/);
    await Deno.remove(policyFile);
    assert.ok(!(await exec("id")).isError, "no file: no rules");
  });

  await t.step("refusals are in the audit log", async () => {
    const lines = (await Deno.readTextFile(join(dir, "audit.log"))).trim().split("\n")
      .map((l) => JSON.parse(l));
    const refused = lines.filter((l) => l.event === "policy_refused");
    assert.ok(refused.length >= 10, `${refused.length} refusals`);
    assert.ok(refused.some((l) => l.rule?.includes("prod safety") && l.target === "prod-1"));
  });
});

testIf(dockerdMissing, "deny rules read docker_exec and docker_run argv", async () => {
  await using docker = await startDockerd();
  await using rsm = await rsmWithEnv();
  await writePolicy(rsm.tmp.rsmDir, '[[rule]]\ntargets = ["prod-*"]\ndeny = ["rm -rf"]\n');
  await rsm.callJson("docker_connect", { id: "prod-d", spec: { host: docker.host } });
  await rsm.callJson("docker_run", {
    host_id: "prod-d",
    spec: { image: TEST_IMAGE, name: "c1", cmd: ["sleep", "60"] },
  });
  for (
    const cmd of [
      ["rm", "-rf", "/tmp/x"],
      ["sh", "-c", "echo ok; rm -rf /tmp/x"],
      ["/bin/sh", "-c", "echo $(rm -rf /tmp/x)"],
    ]
  ) {
    const err = await rsm.callError("docker_exec", { host_id: "prod-d", container: "c1", cmd });
    assert.match(err, /Refused by policy rule #1/, JSON.stringify(cmd));
  }
  const ok = await rsm.callJson("docker_exec", {
    host_id: "prod-d",
    container: "c1",
    cmd: ["echo", "fine"],
  });
  assert.equal(ok.stdout, "fine\n");
  const run = await rsm.callError("docker_run", {
    host_id: "prod-d",
    spec: { image: TEST_IMAGE, cmd: ["sh", "-c", "rm -rf /data"] },
  });
  assert.match(run, /deny pattern "rm -rf"/);
  await rsm.call("docker_container_remove", { host_id: "prod-d", container: "c1", force: true });
});
