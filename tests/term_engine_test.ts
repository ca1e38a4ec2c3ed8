/**
 * The shell engine on a real local PTY (util-linux `script`), no SSH: run, read waits,
 * serialised writes, Ctrl-C, exit, screen. The same engine serves SSH and Docker shells.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { localPty } from "./support/local_pty.ts";
import { Shell } from "../lib/term/shell.ts";
import { loadScreenEngine } from "../lib/term/screen.ts";

await loadScreenEngine();

const missing = await need(["script", "busybox", "bash"]);
const SHELLS = [["bash", "bash --norc --noprofile"], ["busybox sh", "busybox sh"]] as const;

async function open(command: string): Promise<Shell> {
  const shell = new Shell(localPty(command), { id: "t", rows: 24, cols: 80 });
  await shell.read({ idleMs: 300, timeoutMs: 3000 }); // the first prompt
  return shell;
}

for (const [label, command] of SHELLS) {
  testIf(missing, `run gives exact output and exit codes in ${label}`, async () => {
    const shell = await open(command);
    try {
      assert.deepEqual(await shell.run("echo one\necho two\nprintf 'three\\n'"), {
        output: "one\ntwo\nthree\n",
        exit_code: 0,
        timed_out: false,
      });
      assert.deepEqual(await shell.run("false"), { output: "", exit_code: 1, timed_out: false });
      assert.deepEqual(await shell.run("(exit 3)"), { output: "", exit_code: 3, timed_out: false });
      assert.deepEqual(await shell.run("printf 'no newline'"), {
        output: "no newline",
        exit_code: 0,
        timed_out: false,
      });
      const tricky = "echo '__rsm0000:e:0'; echo '__rsm:s'; echo \"it's\" \\\\ é €";
      assert.deepEqual(await shell.run(tricky), {
        output: "__rsm0000:e:0\n__rsm:s\nit's \\ é €\n",
        exit_code: 0,
        timed_out: false,
      });
      const long = "x".repeat(5000);
      const r = await shell.run(`echo ${long} | wc -c`);
      assert.equal(r.output.trim(), "5001");
    } finally {
      shell.close();
    }
  });

  testIf(
    missing,
    `cd, export and functions persist across runs and writes in ${label}`,
    async () => {
      const shell = await open(command);
      try {
        await shell.run("cd /tmp");
        await shell.run("export X=1");
        await shell.run('greet() { echo "hi $1"; }');
        assert.equal((await shell.run("echo $X; pwd; greet you")).output, "1\n/tmp\nhi you\n");
        await shell.write('echo "X=$X in $(pwd)"; greet there\n');
        const r = await shell.read({ until: /hi there\r?\n/, timeoutMs: 5000 });
        assert.match(r.data, /X=1 in \/tmp/);
      } finally {
        shell.close();
      }
    },
  );

  testIf(missing, `run leaves no markers or typed junk in later reads in ${label}`, async () => {
    const shell = await open(command);
    try {
      await shell.run("echo hello");
      await shell.run("false");
      await shell.write("echo visible\n");
      const r = await shell.read({ until: /^visible\n[^]*\S/m, timeoutMs: 5000, stripAnsi: true });
      assert.doesNotMatch(r.data, /__rsm|stty|printf|eval/);
      assert.match(r.data, /echo visible\n/, "echo is back on after run");
      assert.match(r.data, /\nvisible\n/);
    } finally {
      shell.close();
    }
  });

  testIf(
    missing,
    `a run that times out sends Ctrl-C and the shell stays usable in ${label}`,
    async () => {
      const shell = await open(command);
      try {
        const t0 = Date.now();
        const r = await shell.run("echo started; sleep 30", { timeoutMs: 1500 });
        assert.equal(r.timed_out, true);
        assert.equal(r.exit_code, null);
        assert.equal(r.output, "started\n");
        assert.ok(Date.now() - t0 < 10_000);
        assert.deepEqual(await shell.run("echo again"), {
          output: "again\n",
          exit_code: 0,
          timed_out: false,
        });
        await shell.write("echo echoed\n");
        const after = await shell.read({ until: /echoed\r?\n[^]*echoed/, timeoutMs: 5000 });
        assert.equal(after.until_matched, true, "typed input is echoed again");
      } finally {
        shell.close();
      }
    },
  );
}

testIf(
  missing,
  "read returns buffered output at once, waits, and honours until/idle_ms/strip_ansi",
  async () => {
    const shell = await open("bash --norc --noprofile");
    try {
      await shell.write("echo buffered\n");
      // wait (without reading) until the output and the next prompt are buffered
      for (let i = 0; i < 200 && !/^buffered\r\n[^]*# $/m.test(shell.ring.peekText()); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      let t0 = Date.now();
      let r = await shell.read({ timeoutMs: 5000 });
      assert.match(r.data, /buffered/);
      assert.ok(Date.now() - t0 < 500, "buffered data comes back at once");

      t0 = Date.now();
      r = await shell.read({ timeoutMs: 700 });
      const waited = Date.now() - t0;
      assert.equal(r.data, "");
      assert.ok(waited >= 650 && waited < 3000, `waited ${waited} ms`);

      await shell.write("sleep 1; echo READY; sleep 20\n");
      t0 = Date.now();
      r = await shell.read({ until: /^READY/m, timeoutMs: 15_000 });
      assert.equal(r.until_matched, true);
      assert.match(r.data, /READY/);
      assert.ok(Date.now() - t0 < 5000, "until returns well before the timeout");
      await shell.write("\x03");
      await shell.read({ idleMs: 300 });

      await shell.write("for i in 1 2 3; do echo tick$i; sleep 0.3; done\n");
      t0 = Date.now();
      r = await shell.read({ idleMs: 1000, timeoutMs: 20_000 });
      assert.match(r.data, /^tick3/m);
      const took = Date.now() - t0;
      assert.ok(took >= 1500 && took < 10_000, `idle read took ${took} ms`);

      await shell.write("printf '\\033[31mred\\033[0m \\033[1mbold\\033[0m\\n'\n");
      r = await shell.read({ until: /^red bold/m, stripAnsi: true, timeoutMs: 5000 });
      assert.match(r.data, /^red bold$/m);
      assert.ok(!r.data.includes("\x1b") && !r.data.includes("\r"));
    } finally {
      shell.close();
    }
  },
);

testIf(missing, "eight parallel writes each arrive as an intact line", async () => {
  const shell = await open("bash --norc --noprofile");
  try {
    await shell.run("stty -echo");
    const lines = Array.from({ length: 8 }, (_, i) => `echo LINE${i}-${String(i).repeat(200)}`);
    await Promise.all(lines.map((l) => shell.write(l + "\n")));
    let data = "";
    const deadline = Date.now() + 20_000;
    while ((data.match(/^LINE\d-/gm) ?? []).length < 8 && Date.now() < deadline) {
      data += (await shell.read({ timeoutMs: 1000, stripAnsi: true })).data;
    }
    for (let i = 0; i < 8; i++) {
      assert.match(data, new RegExp(`^LINE${i}-${String(i).repeat(200)}$`, "m"));
    }
  } finally {
    shell.close();
  }
});

testIf(missing, "Ctrl-C interrupts a running sleep", async () => {
  const shell = await open("bash --norc --noprofile");
  try {
    await shell.write("sleep 100; echo after-sleep $?\n");
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await shell.write("\u0003");
    await shell.write("echo alive\n");
    const r = await shell.read({ until: /alive\r?\n/, timeoutMs: 10_000, stripAnsi: true });
    assert.equal(r.until_matched, true);
    assert.doesNotMatch(r.data, /after-sleep \d/);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    shell.close();
  }
});

testIf(missing, "a shell whose process exited keeps its last output and exit code", async () => {
  const shell = new Shell(localPty("sh -c 'echo last words; exit 7'"), {
    id: "x",
    rows: 24,
    cols: 80,
  });
  try {
    for (let i = 0; i < 100 && !shell.closed; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(shell.closed, true);
    assert.equal(shell.exitCode, 7);
    const r = await shell.read({ timeoutMs: 100 });
    assert.match(r.data, /last words/);
    assert.equal(r.eof, true);
    await assert.rejects(() => shell.write("x"), /exited/);
  } finally {
    shell.close();
  }
});

testIf(missing, "screen shows less displaying a known file, with the cursor", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "known.txt");
  await Deno.writeTextFile(
    file,
    Array.from({ length: 50 }, (_, i) => `known line ${i + 1}`).join("\n"),
  );
  const shell = await open("bash --norc --noprofile");
  try {
    await shell.write(`busybox less ${file}\n`);
    await shell.read({ until: /known line 20/, timeoutMs: 10_000 });
    await shell.read({ idleMs: 300 });
    const s = await shell.snapshot();
    assert.equal(s.rows.length, 24);
    assert.equal(s.cols, 80);
    assert.equal(s.rows[0], "known line 1");
    assert.equal(s.rows[22], "known line 23");
    assert.equal(s.cursor_row, 23);
    await shell.write("q");
  } finally {
    shell.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A shell with rsm's integration installed, as the manager opens one. */
async function openIntegrated(command: string): Promise<Shell> {
  const shell = new Shell(localPty(command), { id: "i", rows: 24, cols: 80, integrate: true });
  await shell.integrate();
  return shell;
}

const INTEGRATED = [...SHELLS, ["dash", "dash"], ["zsh", "zsh -f"]] as const;
const missingDash = await need(["script", "busybox", "bash", "dash", "zsh"]);

for (const [label, command] of INTEGRATED) {
  testIf(
    missingDash,
    `integration in ${label}: hooks installed unseen, typed commands report exit code and cwd`,
    async () => {
      const shell = await openIntegrated(command);
      try {
        assert.ok(shell.hookToken, "hooks installed");
        const first = await shell.read({ idleMs: 200, timeoutMs: 3000 });
        assert.doesNotMatch(first.data, /rsm|printf|PROMPT|PS1|6973/, "setup never shows");
        assert.equal(first.running, false);
        const screen = await shell.snapshot();
        assert.doesNotMatch(screen.rows.join("\n"), /rsm|printf|PS1/);
        await shell.write("cd /tmp; (exit 4)\n");
        const r = await shell.read({ until: /\$ $/, timeoutMs: 5000, stripAnsi: true });
        assert.ok(!r.data.includes("\x1b]") && !/133;|rsm/.test(r.data), "no marks in read");
        assert.equal(r.last_exit_code, 4);
        assert.equal(r.cwd, "/tmp");
        assert.equal(r.running, false);
        for (
          const [cmd, code] of [["true", 0], ["false", 1], ["(exit 2)", 2], ["(exit 130)", 130], [
            "(exit 255)",
            255,
          ]] as const
        ) {
          const x = await shell.run(cmd);
          assert.deepEqual(x, { output: "", exit_code: code, timed_out: false });
          assert.equal(shell.lastExitCode, code);
        }
        assert.deepEqual(await shell.run("echo one\necho 'two'\nfor i in 3 4; do echo $i; done"), {
          output: "one\ntwo\n3\n4\n",
          exit_code: 0,
          timed_out: false,
        });
        assert.deepEqual(await shell.run("printf 'a\\tb\\n'; printf 'tab:\t.\\n'"), {
          output: "a\tb\ntab:\t.\n",
          exit_code: 0,
          timed_out: false,
        });
        const long = "x".repeat(5000);
        assert.equal((await shell.run(`echo ${long} | wc -c`)).output.trim(), "5001");
        const t = await shell.run("echo started; sleep 30", { timeoutMs: 1000 });
        assert.equal(t.timed_out, true);
        assert.equal(t.output, "started\n");
        assert.deepEqual(await shell.run("echo again"), {
          output: "again\n",
          exit_code: 0,
          timed_out: false,
        });
        const later = await shell.read({ idleMs: 200, timeoutMs: 3000 });
        assert.doesNotMatch(later.data, /rsm|printf|eval|133/);
        const s = (await shell.snapshot()).rows.join("\n");
        assert.doesNotMatch(s, /rsm|printf|eval/);
        assert.match(
          s,
          /^\S* ?[$#] echo again\nagain\n/m,
          `the screen shows the command as typed:\n${s}`,
        );
      } finally {
        shell.close();
      }
    },
  );
}
