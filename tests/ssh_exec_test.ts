/**
 * ssh_exec semantics (issue 3, acceptance 8) against a real sshd: output, exit codes,
 * signals, env/cwd/stdin, timeout and cancel that really stop the remote command, pty, sudo
 * with the password on stdin only, bounded output, progress notifications.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "sudo", "pgrep"], true);

async function remoteSleeps(user: string, pattern: string): Promise<string> {
  return (await run("pgrep", ["-u", user, "-f", pattern])).stdout.trim();
}

testIf(missing, "ssh_exec returns what the command did and stops it for real", async (t) => {
  await using user = await createUser({ sudo: true });
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv({ RSM_SUDO_PW: user.password });
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const exec = (args: Record<string, unknown>) =>
    rsm.callJson("ssh_exec", { session_id: "box", ...args });

  await t.step("stdout, stderr and a non-zero exit code are a result", async () => {
    const r = await exec({ command: "echo out; echo err >&2; exit 7" });
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    assert.equal(r.exit_code, 7);
    assert.equal(r.timed_out, false);
    assert.equal(r.truncated, false);
    assert.equal(typeof r.duration_ms, "number");
  });

  await t.step("a command killed by a signal reports the signal", async () => {
    const r = await exec({ command: "kill -TERM $$" });
    assert.equal(r.signal, "SIGTERM");
    assert.equal(r.exit_code, null);
  });

  await t.step("env, cwd and stdin reach the command", async () => {
    const r = await exec({
      command: 'printf "%s|%s|" "$GREETING" "$(pwd)"; cat',
      env: { GREETING: 'it\'s "quoted" $HOME' },
      cwd: "/tmp",
      stdin: "from stdin",
    });
    assert.equal(r.stdout, `it's "quoted" $HOME|/tmp|from stdin`);
  });

  await t.step("a missing cwd fails the command, not the daemon", async () => {
    const r = await exec({ command: "pwd", cwd: "/nonexistent-dir-rsm" });
    assert.equal(r.exit_code, 126);
    assert.match(r.stderr, /nonexistent-dir-rsm/);
  });

  await t.step(
    "timeout_ms stops the command and its children and keeps partial output",
    async () => {
      const started = Date.now();
      const r = await exec({ command: "echo start; sleep 30", timeout_ms: 1000 });
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      assert.equal(r.timed_out, true);
      assert.match(r.stdout, /start/);
      assert.equal(await remoteSleeps(user.name, "sleep 30"), "");
    },
  );

  await t.step("children in a pipeline and in the background are stopped too", async () => {
    const r = await exec({
      command: "sleep 31 & sleep 32 | cat; wait",
      timeout_ms: 1000,
    });
    assert.equal(r.timed_out, true);
    assert.equal(await remoteSleeps(user.name, "sleep 3[12]"), "");
  });

  await t.step("a command that ignores SIGTERM is killed with SIGKILL", async () => {
    const started = Date.now();
    const r = await exec({ command: "trap '' TERM; echo armed; sleep 34", timeout_ms: 1000 });
    assert.equal(r.timed_out, true);
    assert.match(r.stdout, /armed/);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(await remoteSleeps(user.name, "sleep 34"), "");
  });

  await t.step("cancelling the MCP request stops the remote command", async () => {
    const ac = new AbortController();
    const call = rsm.callRaw("ssh_exec", {
      session_id: "box",
      command: "echo start; sleep 33",
      timeout_ms: 60_000,
    }, { signal: ac.signal }).catch((e) => e);
    await waitFor(
      "sleep 33 running",
      async () => (await remoteSleeps(user.name, "sleep 33")) !== "",
    );
    ac.abort("test cancels");
    await call;
    await waitFor(
      "sleep 33 gone",
      async () => (await remoteSleeps(user.name, "sleep 33")) === "",
      5000,
    );
  });

  await t.step("pty: true gives the command a terminal", async () => {
    const r = await exec({ command: "tty", pty: true });
    assert.equal(r.exit_code, 0);
    assert.match(r.stdout, /\/dev\/pts\//);
    const noPty = await exec({ command: "tty" });
    assert.notEqual(noPty.exit_code, 0);
  });

  await t.step("sudo gets the password on stdin only", async () => {
    let psDuring = "";
    const call = exec({
      command: "sudo -k; sleep 2; id -u",
      sudo: true,
      sudo_password_env: "RSM_SUDO_PW",
    });
    await waitFor(
      "the sudo command running",
      async () => {
        psDuring = (await run("ps", ["auxww"])).stdout;
        return psDuring.includes("sleep 2") && psDuring.includes("sudo");
      },
      10_000,
      50,
    );
    const r = await call;
    assert.equal(r.stdout.trim(), "0");
    assert.equal(r.exit_code, 0);
    assert.ok(!psDuring.includes(user.password), "the password is visible in ps");
  });

  await t.step("sudo leaves the caller's stdin to the command", async () => {
    const r = await exec({
      command: "id -u; cat",
      stdin: "line one\nline two\n",
      sudo: true,
      sudo_password_env: "RSM_SUDO_PW",
    });
    assert.equal(r.stdout, "0\nline one\nline two\n");
  });

  await t.step("a wrong sudo password is a failed command, not a hang", async () => {
    const file = join(rsm.tmp.root, "wrong-sudo-pw");
    await Deno.writeTextFile(file, "wrong-sudo-password\n");
    const r = await exec({
      command: "id -u",
      sudo: true,
      sudo_password_file: file,
      timeout_ms: 20_000,
    });
    assert.notEqual(r.exit_code, 0);
    assert.equal(r.timed_out, false);
    assert.ok(!r.stdout.includes("wrong-sudo-password"));
  });

  await t.step(
    "sudo without a password asks a person (a link here) instead of prompting",
    async () => {
      // this client cannot elicit: the error carries the loopback page where a person types it
      const err = await rsm.callError("ssh_exec", {
        session_id: "box",
        command: "id -u",
        sudo: true,
        timeout_ms: 10_000,
      });
      assert.match(err, /sudo needs a password/);
      assert.match(err, /http:\/\/127\.0\.0\.1:\d+\/web\/login\?code=/);
    },
  );

  await t.step("5 MiB of output comes back bounded with the omitted-bytes marker", async () => {
    const r = await exec({ command: "head -c 5242880 /dev/zero | tr '\\0' x; echo; echo END" });
    assert.equal(r.truncated, true);
    assert.match(r.stdout, /\[… \d+ bytes omitted; output_read output_id=o-\w+ …\]/);
    assert.match(r.stdout, /END\n$/);
    assert.ok(r.stdout.length < 64 * 1024);
  });

  await t.step("a long command sends progress with its latest output line", async () => {
    const seen: { progress: number; message?: string }[] = [];
    const r = await rsm.callJson("ssh_exec", {
      session_id: "box",
      command: "for i in 1 2 3; do echo line$i; sleep 1; done",
    }, { onprogress: (p) => seen.push(p) });
    assert.equal(r.stdout, "line1\nline2\nline3\n");
    assert.ok(seen.length >= 1, "no progress notification");
    assert.ok(seen.some((p) => /line\d/.test(p.message ?? "")), JSON.stringify(seen));
  });

  await t.step("every exec is in the audit log, secrets redacted", async () => {
    const audit = await Deno.readTextFile(join(rsm.tmp.rsmDir, "audit.log"));
    assert.match(
      audit,
      /"tool":"ssh_exec","target":"box","command":"echo out; echo err >&2; exit 7","exit_code":7/,
    );
    assert.ok(!audit.includes(user.password));
  });
});
