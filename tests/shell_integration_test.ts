/**
 * Shells as a person sees them, end to end (rsm stdio → daemon → OpenSSH sshd): no
 * bookkeeping of rsm's in screen, read or run output; exact exit codes; shell integration
 * (exit code and cwd of typed commands, waiting_for_input); write that waits for the output.
 */
import assert from "node:assert/strict";
import { need, testIf, waitFor } from "./support/env.ts";
import { type RsmClient, rsmSession } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";

const missing = await need(["sshd", "busybox", "python3"], true);

/** A user, an sshd, a daemon and session "box" connected as the user. */
async function world() {
  const user = await createUser();
  const sshd = await startSshd().catch(async (err) => {
    await user.remove();
    throw err;
  });
  const rsm = await rsmSession({ json: true }).catch(async (err) => {
    await sshd[Symbol.asyncDispose]();
    await user.remove();
    throw err;
  });
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  return {
    user,
    rsm,
    async [Symbol.asyncDispose]() {
      await rsm[Symbol.asyncDispose]();
      await sshd[Symbol.asyncDispose]();
      await user.remove();
    },
  };
}

const sh = (id: string) => ({ session_id: "box", shell_id: id });

/** What rsm itself would type or print if its bookkeeping leaked. */
// deno-lint-ignore no-control-regex
const JUNK = /__rsm|rsm=|stty|printf|eval|133;|6973|PROMPT_COMMAND|PS0|PS1|\x1b\](?:133|7|6973);/;

/** Commands with known output and exit codes (`@`: the run's number), cycled 50 times. */
const CASES: { command: string; output: RegExp; code: number }[] = [
  { command: "echo out-@", output: /^out-@\n$/, code: 0 },
  { command: "false", output: /^$/, code: 1 },
  { command: "sh -c 'echo err-@ >&2; exit 2'", output: /^err-@\n$/, code: 2 },
  { command: "sh -c 'kill -INT $$'", output: /^\n?$/, code: 130 },
  { command: "(exit 255)", output: /^$/, code: 255 },
  { command: "(exit 7)", output: /^$/, code: 7 },
  { command: "echo 'two @'\necho \"lines $((@+1))\"", output: /^two @\nlines \d+\n$/, code: 0 },
];

async function fiftyRuns(rsm: RsmClient, id: string): Promise<string[]> {
  const typed: string[] = [];
  for (let i = 0; i < 50; i++) {
    const c = CASES[i % CASES.length]!; // i % length is in range
    const command = c.command.replaceAll("@", String(i));
    const r = await rsm.callJson("ssh_shell_run", { ...sh(id), command });
    assert.doesNotMatch(r.output, JUNK, command);
    assert.match(r.output, new RegExp(c.output.source.replaceAll("@", String(i))), command);
    assert.equal(r.exit_code, c.code, `${command} in ${id}`);
    assert.equal(r.timed_out, false);
    typed.push(...command.split("\n"));
  }
  return typed;
}

testIf(
  missing,
  "50 ssh_shell_run calls in bash and busybox sh leave nothing untyped in run, read or screen",
  async () => {
    await using w = await world();
    const { rsm } = w;
    for (const [id, command] of [["bash", undefined], ["bb", "busybox sh"]] as const) {
      await rsm.callJson("ssh_shell_open", { ...sh(id), ...(command ? { command } : {}) });
      const typed = await fiftyRuns(rsm, id);
      const read = await rsm.callJson("ssh_shell_read", { ...sh(id), timeout_ms: 300 });
      assert.doesNotMatch(read.data, JUNK, `read after the runs: ${JSON.stringify(read.data)}`);
      const screen = await rsm.callJson("ssh_shell_screen", sh(id));
      const rows: string[] = screen.screen.split("\n");
      assert.doesNotMatch(rows.join("\n"), JUNK, "screen after the runs");
      // every row is a prompt, a prompt with a command the test ran, or what one printed
      const printed = /^(out-\d+|two \d+|lines \d+|err-\d+|)$/;
      for (const row of rows) {
        const afterPrompt = row.replace(/^.*?[$#] ?/, "");
        assert.ok(
          printed.test(row) || typed.includes(row) || typed.includes(afterPrompt) ||
            afterPrompt === "",
          `screen row ${JSON.stringify(row)} is neither typed nor printed:\n${rows.join("\n")}`,
        );
      }
      assert.match(rows.join("\n"), /[$#] \(exit 7\)$/m, "the screen shows the commands as typed");
      // a command typed by hand afterwards shows with its echo, and nothing else
      const wrote = await rsm.callJson("ssh_shell_write", {
        ...sh(id),
        data: "echo by-hand\n",
        wait_until: "^by-hand",
      });
      assert.doesNotMatch(wrote.data, JUNK);
      assert.match(wrote.data, /echo by-hand\r?\n[^]*\bby-hand\r?\n/);
    }
  },
);

testIf(
  missing,
  "shell integration: typed commands report exit code and cwd; prompts are waiting_for_input",
  async () => {
    await using w = await world();
    const { rsm } = w;
    const opened = await rsm.callJson("ssh_shell_open", sh("i"));
    assert.equal(opened.running, false);
    assert.equal(opened.waiting_for_input, false);
    await rsm.callJson("ssh_shell_write", { ...sh("i"), data: "cd /tmp; (exit 3)\n" });
    const row = await waitFor("the typed command to be reported", async () => {
      const [r] = await rsm.callJson("ssh_shell_list", { session_id: "box" });
      return r.last_exit_code === 3 ? r : null;
    });
    assert.equal(row.cwd, "/tmp");
    assert.equal(row.running, false);
    await rsm.callJson("ssh_shell_write", { ...sh("i"), data: "cd /; true\n" });
    await waitFor("cwd / and exit code 0", async () => {
      const [r] = await rsm.callJson("ssh_shell_list", { session_id: "box" });
      return r.cwd === "/" && r.last_exit_code === 0;
    });

    const asked = await rsm.callJson("ssh_shell_write", {
      ...sh("i"),
      data: "read -p 'password: ' pw; echo \"got ${#pw}\"\n",
      wait_until: "password: $",
    });
    assert.equal(asked.until_matched, true);
    assert.equal(asked.running, true);
    assert.equal(asked.waiting_for_input, true);
    const [listed] = await rsm.callJson("ssh_shell_list", { session_id: "box" });
    assert.equal(listed.waiting_for_input, true);
    const answered = await rsm.callJson("ssh_shell_write", {
      ...sh("i"),
      data: "hunter2\n",
      wait_ms: 5000,
    });
    assert.match(answered.data, /got 7/);
    assert.equal(answered.running, false);
    assert.equal(answered.waiting_for_input, false);
    assert.equal(answered.last_exit_code, 0);

    const repl = await rsm.callJson("ssh_shell_write", {
      ...sh("i"),
      data: "python3 -q\n",
      wait_until: ">>> $",
    });
    assert.equal(repl.until_matched, true);
    assert.equal(repl.running, true);
    assert.equal(repl.waiting_for_input, true);
    const refused = await rsm.callError("ssh_shell_run", { ...sh("i"), command: "ls" });
    assert.match(refused, /waiting for input \(">>>"\)/, "run is not typed into python");
    const t0 = Date.now();
    const pow = await rsm.callJson("ssh_shell_write", {
      ...sh("i"),
      data: "2**100\n",
      wait_until: ">>> $",
    });
    assert.match(pow.data, /^1267650600228229401496703205376\r?$/m, "the result in the same call");
    assert.equal(pow.waiting_for_input, true);
    assert.ok(Date.now() - t0 < 5000);
    const out = await rsm.callJson("ssh_shell_write", {
      ...sh("i"),
      data: "exit()\n",
      wait_ms: 5000,
    });
    assert.equal(out.running, false);
    assert.equal(out.last_exit_code, 0);
    assert.equal(out.waiting_for_input, false);

    // busybox sh (PS1 hook, no pre-exec hook) reports typed commands too
    await rsm.callJson("ssh_shell_open", { ...sh("b"), command: "busybox sh" });
    const typed = await rsm.callJson("ssh_shell_write", {
      ...sh("b"),
      data: "cd /usr; ls /nonexistent\n",
      wait_ms: 5000,
    });
    assert.match(typed.data, /nonexistent/);
    assert.doesNotMatch(typed.data, JUNK);
    assert.equal(typed.last_exit_code, 1);
    assert.equal(typed.cwd, "/usr");
    assert.equal(typed.running, false);
  },
);
