/**
 * ssh_shell_* end to end: rsm stdio → daemon → real OpenSSH sshd → bash / busybox sh / tmux.
 */
import assert from "node:assert/strict";
import { need, run, testIf, waitFor } from "./support/env.ts";
import { type RsmClient, rsmSession } from "./support/mcp.ts";
import { createUser, type Sshd, startSshd, type TestUser } from "./support/sshd.ts";

const missing = await need(["sshd", "busybox", "tmux"], true);

/** A user, an sshd, a daemon and session "box" connected as the user. */
async function world(options: { persistent?: boolean } = {}) {
  const user = await createUser();
  let sshd: Sshd | undefined;
  let rsm: Awaited<ReturnType<typeof rsmSession>> | undefined;
  try {
    sshd = await startSshd();
    rsm = await rsmSession({ json: true });
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: {
        user: user.name,
        addresses: [sshd.address],
        auth: { key_path: user.keyPath },
        ...(options.persistent ? { persistent: true, auto_reconnect: true } : {}),
      },
    });
  } catch (err) {
    await rsm?.[Symbol.asyncDispose]();
    await sshd?.[Symbol.asyncDispose]();
    await user.remove();
    throw err;
  }
  return {
    user: user as TestUser,
    sshd: sshd!,
    rsm: rsm!,
    async [Symbol.asyncDispose]() {
      await rsm![Symbol.asyncDispose]();
      await sshd![Symbol.asyncDispose]();
      await user.remove();
    },
  };
}

type Shell = { session_id: "box"; shell_id: string };
const sh = (id: string): Shell => ({ session_id: "box", shell_id: id });

/** Reads until `re` matches the accumulated (ANSI-stripped) text. */
async function readUntil(rsm: RsmClient, id: string, re: RegExp, ms = 15_000): Promise<string> {
  const r = await rsm.callJson("ssh_shell_read", {
    ...sh(id),
    until: re.source,
    timeout_ms: ms,
    strip_ansi: true,
  });
  assert.match(r.data, re);
  return r.data;
}

testIf(
  missing,
  "ssh_shell_run returns exact output and exit codes in bash and busybox sh",
  async () => {
    await using w = await world();
    const { rsm } = w;
    await rsm.callJson("ssh_shell_open", sh("bash"));
    await rsm.callJson("ssh_shell_open", { ...sh("bb"), command: "busybox sh" });
    for (const id of ["bash", "bb"]) {
      const runIt = (command: string, extra = {}) =>
        rsm.callJson("ssh_shell_run", { ...sh(id), command, ...extra });
      assert.deepEqual(await runIt("echo one\necho two\nfor i in 3 4; do echo $i; done"), {
        output: "one\ntwo\n3\n4\n",
        exit_code: 0,
        timed_out: false,
      });
      assert.deepEqual(await runIt("false"), { output: "", exit_code: 1, timed_out: false });
      assert.deepEqual(await runIt("(exit 3)"), { output: "", exit_code: 3, timed_out: false });
      assert.deepEqual(await runIt("printf 'no newline'"), {
        output: "no newline",
        exit_code: 0,
        timed_out: false,
      });
      const lookalike = await runIt("echo '__rsm0123456789abcdef:e:0'; echo ':s __rsm' 'x:e:1'");
      assert.deepEqual(lookalike, {
        output: "__rsm0123456789abcdef:e:0\n:s __rsm x:e:1\n",
        exit_code: 0,
        timed_out: false,
      });
      // state persists across runs and writes
      await runIt('cd /tmp && export X=1 && greet() { echo "hi $1"; }');
      assert.equal((await runIt("echo $X; pwd; greet run")).output, "1\n/tmp\nhi run\n");
      await rsm.callJson("ssh_shell_write", {
        ...sh(id),
        data: 'echo "w:$X:$(pwd)"; greet write\n',
      });
      const written = await readUntil(rsm, id, /^hi write$/m);
      assert.match(written, /^w:1:\/tmp$/m);
      assert.doesNotMatch(written, /__rsm|stty|eval/, "no junk from the runs");
      // timeout: Ctrl-C is sent, the shell stays usable
      const t0 = Date.now();
      const slow = await runIt("echo begun; sleep 60", { timeout_ms: 1500 });
      assert.equal(slow.timed_out, true);
      assert.equal(slow.output, "begun\n");
      assert.ok(Date.now() - t0 < 15_000);
      assert.deepEqual(await runIt("echo still here"), {
        output: "still here\n",
        exit_code: 0,
        timed_out: false,
      });
      const pgrep = await run("pgrep", ["-u", w.user.name, "-f", "sleep 60"]);
      assert.equal(pgrep.stdout.trim(), "", "the timed-out sleep was interrupted");
    }
    // runs and writes are audited
    const audit = (await Deno.readTextFile(`${rsm.tmp.rsmDir}/audit.log`)).trim().split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(
      audit.some((e) => e.tool === "ssh_shell_run" && e.command === "false" && e.exit_code === 1),
    );
    assert.ok(audit.some((e) => e.tool === "ssh_shell_write" && e.target === "box/bash"));
  },
);

testIf(missing, "eight parallel ssh_shell_write calls each arrive as an intact line", async () => {
  await using w = await world();
  const { rsm } = w;
  await rsm.callJson("ssh_shell_open", { ...sh("p"), command: "stty -echo; exec cat" });
  const lines = Array.from({ length: 8 }, (_, i) => `MARK${i}:${String(i).repeat(300)}`);
  await Promise.all(
    lines.map((l) => rsm.callJson("ssh_shell_write", { ...sh("p"), data: l + "\n" })),
  );
  let data = "";
  await waitFor("eight lines", async () => {
    data += (await rsm.callJson("ssh_shell_read", { ...sh("p"), timeout_ms: 500 })).data;
    return (data.match(/^MARK\d/gm) ?? []).length >= 8;
  });
  for (const l of lines) assert.match(data, new RegExp(`^${l}\\r?$`, "m"));
});

testIf(
  missing,
  "ssh_shell_read returns at once, waits, and honours until, idle_ms and strip_ansi",
  async () => {
    await using w = await world();
    const { rsm } = w;
    await rsm.callJson("ssh_shell_open", { ...sh("r"), command: "busybox sh" });
    await rsm.callJson("ssh_shell_read", { ...sh("r"), idle_ms: 500, timeout_ms: 5000 });
    await rsm.callJson("ssh_shell_write", { ...sh("r"), data: "echo buffered\n" });
    // wait (without reading) until the output has landed and stopped growing
    let last = -1;
    await waitFor(
      "output to settle",
      async () => {
        const n = (await rsm.callJson("ssh_shell_list", { session_id: "box" }))[0].buffered_bytes;
        const settled = n > 0 && n === last;
        last = n;
        return settled;
      },
      20_000,
      500,
    );
    let t0 = Date.now();
    let r = await rsm.callJson("ssh_shell_read", { ...sh("r"), timeout_ms: 10_000 });
    assert.match(r.data, /^buffered\r?$/m);
    assert.ok(Date.now() - t0 < 2000, "buffered output comes back at once");
    t0 = Date.now();
    r = await rsm.callJson("ssh_shell_read", { ...sh("r"), timeout_ms: 1500 });
    assert.equal(r.data, "");
    assert.ok(Date.now() - t0 >= 1400, "with nothing buffered it waits timeout_ms");
    await rsm.callJson("ssh_shell_write", { ...sh("r"), data: "sleep 1; echo READY; sleep 30\n" });
    t0 = Date.now();
    r = await rsm.callJson("ssh_shell_read", { ...sh("r"), until: "^READY", timeout_ms: 60_000 });
    assert.match(r.data, /^READY/m);
    assert.ok(Date.now() - t0 < 10_000, "until returns as soon as READY appears");
    await rsm.callJson("ssh_shell_write", { ...sh("r"), data: "\u0003" });
    await rsm.callJson("ssh_shell_read", { ...sh("r"), idle_ms: 500 });
    await rsm.callJson("ssh_shell_write", {
      ...sh("r"),
      data: "for i in 1 2 3 4; do echo tick$i; sleep 0.4; done\n",
    });
    t0 = Date.now();
    r = await rsm.callJson("ssh_shell_read", { ...sh("r"), idle_ms: 1500, timeout_ms: 60_000 });
    assert.match(r.data, /^tick4/m);
    const took = Date.now() - t0;
    assert.ok(took >= 2500 && took < 20_000, `idle_ms returned after ${took} ms`);
    await rsm.callJson("ssh_shell_write", {
      ...sh("r"),
      data: "printf '\\033[1;31mred\\033[0m \\033[2J\\033[Hplain\\n'\n",
    });
    r = await rsm.callJson("ssh_shell_read", {
      ...sh("r"),
      until: "^red plain",
      strip_ansi: true,
      timeout_ms: 10_000,
    });
    assert.match(r.data, /^red plain$/m);
    assert.ok(!r.data.includes("\x1b") && !r.data.includes("\r"));
  },
);

testIf(
  missing,
  "a 5 MiB burst keeps the newest 1 MiB with dropped_bytes, and UTF-8 stays whole",
  async () => {
    await using w = await world();
    const { rsm } = w;
    await rsm.callJson("ssh_shell_open", { ...sh("b"), command: "busybox sh" });
    await rsm.callJson("ssh_shell_run", { ...sh("b"), command: "stty -echo" });
    await rsm.callJson("ssh_shell_read", { ...sh("b"), idle_ms: 300 });
    // 5 MiB of 1 KiB lines of multi-byte characters, then an end line
    await rsm.callJson("ssh_shell_write", {
      ...sh("b"),
      data:
        "busybox yes 'é€😀abcdefghijklmnopqrstuvwxyz' | busybox head -c 5242880; echo; echo BURST-END\n",
    });
    // the PTY turns each \n into \r\n, so more than 5 MiB arrives: wait until the count stops
    // growing (reading while the tail still arrives would read more than the ring holds)
    let lastDropped = -1;
    const list = await waitFor(
      "burst to arrive",
      async () => {
        const l = (await rsm.callJson("ssh_shell_list", { session_id: "box" }))[0];
        const settled = l.dropped_bytes >= 4 * 1024 * 1024 && l.dropped_bytes === lastDropped;
        lastDropped = l.dropped_bytes;
        return settled ? l : null;
      },
      60_000,
      400,
    );
    assert.ok(list.buffered_bytes <= 1024 * 1024);
    let all = "";
    let dropped = 0;
    let reads = 0;
    for (let i = 0; i < 400; i++) {
      reads++;
      const r = await rsm.callJson("ssh_shell_read", { ...sh("b"), timeout_ms: 2000 });
      dropped += r.dropped_bytes;
      assert.ok(!r.data.includes("\ufffd"), "no character is split across reads");
      all += r.data;
      if (all.includes("BURST-END")) break;
    }
    assert.ok(dropped >= 4 * 1024 * 1024 - 100_000, `dropped ${dropped}`);
    const bytes = new TextEncoder().encode(all).length;
    assert.ok(
      all.length > 500_000 && bytes <= 1024 * 1024 + 1000,
      `read ${all.length} chars, ${bytes} bytes, in ${reads} reads; dropped ${dropped}`,
    );
    assert.match(all, /é€😀abcdefghijklmnopqrstuvwxyz\r?\n/);
  },
);

testIf(
  missing,
  "ssh_shell_screen shows vi editing a known file and resize changes stty size",
  async () => {
    await using w = await world();
    const { rsm } = w;
    const file = `${w.user.home}/known.txt`;
    await Deno.writeTextFile(
      file,
      Array.from({ length: 60 }, (_, i) => `known line ${i + 1}`).join("\n"),
    );
    await rsm.callJson("ssh_shell_open", { ...sh("s"), env: { GREETING: "hi there 'q'" } });
    const env = await rsm.callJson("ssh_shell_run", { ...sh("s"), command: 'echo "$GREETING"' });
    assert.equal(env.output, "hi there 'q'\n");
    await rsm.callJson("ssh_shell_run", { ...sh("s"), command: "true" });
    await rsm.callJson("ssh_shell_write", { ...sh("s"), data: `busybox vi ${file}\n` });
    await readUntil(rsm, "s", /known line 20/);
    const screen = await waitFor("vi to draw", async () => {
      const s = await rsm.callJson("ssh_shell_screen", sh("s"));
      return s.screen.split("\n")[22] === "known line 23" ? s : null;
    });
    const lines = screen.screen.split("\n");
    assert.equal(screen.rows, 24);
    assert.equal(screen.cols, 80);
    assert.equal(lines[0], "known line 1");
    assert.match(lines[23], /known\.txt/, "vi's status line names the file");
    assert.equal(screen.cursor_row, 0);
    assert.equal(screen.cursor_col, 0);
    await rsm.callJson("ssh_shell_write", { ...sh("s"), data: "jjlll" }); // move: row 2, col 3
    const moved = await waitFor("the cursor to move", async () => {
      const s = await rsm.callJson("ssh_shell_screen", sh("s"));
      return s.cursor_row === 2 && s.cursor_col === 3 ? s : null;
    });
    assert.equal(moved.screen.split("\n")[2], "known line 3");
    const busy = await rsm.callError("ssh_shell_run", { ...sh("s"), command: "echo no" });
    assert.match(busy, /full-screen program/);
    await rsm.callJson("ssh_shell_write", { ...sh("s"), data: ":q!\r" });
    await rsm.callJson("ssh_shell_read", { ...sh("s"), idle_ms: 500 });
    assert.equal(await rsm.call("ssh_shell_resize", { ...sh("s"), rows: 40, cols: 120 }), "ok");
    assert.equal(
      (await rsm.callJson("ssh_shell_run", { ...sh("s"), command: "stty size" })).output,
      "40 120\n",
    );
    const s2 = await rsm.callJson("ssh_shell_screen", sh("s"));
    assert.equal(s2.rows, 40);
    assert.equal(s2.cols, 120);
    const bad = await rsm.callError("ssh_shell_resize", { ...sh("s"), rows: 0, cols: 1001 });
    assert.match(bad, /rows/);
  },
);

testIf(
  missing,
  "Ctrl-C interrupts sleep; an exited command shell stays listed and readable; close ends the process",
  async () => {
    await using w = await world();
    const { rsm } = w;
    await rsm.callJson("ssh_shell_open", sh("c"));
    await rsm.callJson("ssh_shell_run", { ...sh("c"), command: "true" });
    await rsm.callJson("ssh_shell_write", { ...sh("c"), data: "sleep 100; echo slept $?\n" });
    await waitFor(
      "sleep to start",
      async () => (await run("pgrep", ["-u", w.user.name, "-x", "sleep"])).stdout.trim(),
    );
    await rsm.callJson("ssh_shell_write", { ...sh("c"), data: "\u0003" });
    await waitFor(
      "sleep to be gone",
      async () => !(await run("pgrep", ["-u", w.user.name, "-x", "sleep"])).stdout.trim(),
      10_000,
    );
    const after = await rsm.callJson("ssh_shell_run", { ...sh("c"), command: "echo ok" });
    assert.equal(after.output, "ok\n");

    await rsm.callJson("ssh_shell_open", { ...sh("e"), command: "echo last words; exit 7" });
    const row = await waitFor("the command to exit", async () => {
      const rows = await rsm.callJson("ssh_shell_list", { session_id: "box" });
      return rows.find((r: { id: string; closed: boolean }) => r.id === "e" && r.closed);
    });
    assert.equal(row.exit_code, 7);
    const r = await rsm.callJson("ssh_shell_read", sh("e"));
    assert.match(r.data, /last words/);
    assert.equal(r.eof, true);
    const rows = await rsm.callJson("ssh_shell_list", {});
    assert.ok(
      !rows.some((x: { id: string }) => x.id === "e"),
      "read to the end, then gone",
    );
    assert.match(await rsm.callError("ssh_shell_read", sh("e")), /no such shell/);

    await rsm.callJson("ssh_shell_open", { ...sh("k"), command: "sleep 4321" });
    await waitFor(
      "sleep 4321",
      async () => (await run("pgrep", ["-u", w.user.name, "-f", "sleep 4321"])).stdout.trim(),
    );
    assert.equal(await rsm.call("ssh_shell_close", sh("k")), "closed k");
    await waitFor(
      "sleep 4321 to end",
      async () => !(await run("pgrep", ["-u", w.user.name, "-f", "sleep 4321"])).stdout.trim(),
      10_000,
    );
  },
);

testIf(
  missing,
  "after ssh_reconnect a plain shell is reported lost with its output still readable",
  async () => {
    await using w = await world();
    const { rsm } = w;
    await rsm.callJson("ssh_shell_open", sh("l"));
    await rsm.callJson("ssh_shell_open", { ...sh("dl"), durable: true });
    await rsm.callJson("ssh_shell_run", { ...sh("dl"), command: "Y=kept" });
    await rsm.callJson("ssh_shell_write", { ...sh("l"), data: "echo before-reconnect\n" });
    await new Promise((r) => setTimeout(r, 1000));
    await rsm.callJson("ssh_reconnect", { id: "box" });
    const row = await waitFor("the shell to be lost", async () => {
      const rows = await rsm.callJson("ssh_shell_list", { session_id: "box" });
      return rows.find((r: { id: string; lost: boolean }) => r.id === "l" && r.lost);
    });
    assert.equal(row.closed, true);
    const r = await rsm.callJson("ssh_shell_read", sh("l"));
    assert.match(r.data, /before-reconnect/);
    const info = await rsm.callJson("ssh_info", { id: "box" });
    assert.ok(info.shells.some((s: { id: string; lost: boolean }) => s.id === "l" && s.lost));
    assert.match(await rsm.callError("ssh_shell_write", { ...sh("l"), data: "x" }), /lost/);
    assert.equal(await rsm.call("ssh_shell_close", sh("l")), "closed l");
    // a durable shell re-attaches instead
    const d = await rsm.callJson("ssh_shell_run", { ...sh("dl"), command: "echo $Y" });
    assert.deepEqual(d, { output: "kept\n", exit_code: 0, timed_out: false });
    assert.equal(await rsm.call("ssh_shell_close", sh("dl")), "closed dl");
    // ssh_disconnect closes the session's shells and ends their processes
    await rsm.callJson("ssh_shell_open", { ...sh("gone"), command: "sleep 5678" });
    await waitFor(
      "sleep 5678",
      async () => (await run("pgrep", ["-u", w.user.name, "-f", "sleep 5678"])).stdout.trim(),
    );
    await rsm.call("ssh_disconnect", { id: "box" });
    assert.deepEqual(await rsm.callJson("ssh_shell_list", {}), []);
    await waitFor(
      "sleep 5678 to end",
      async () => !(await run("pgrep", ["-u", w.user.name, "-f", "sleep 5678"])).stdout.trim(),
      10_000,
    );
  },
);

testIf(
  missing,
  "a durable shell keeps its variables and cwd across kill -9 of the daemon",
  async () => {
    await using w = await world({ persistent: true });
    const { rsm } = w;
    const info = await rsm.callJson("ssh_shell_open", { ...sh("d"), durable: true });
    assert.equal(info.durable, true);
    try {
      const r1 = await rsm.callJson("ssh_shell_run", {
        ...sh("d"),
        command: "export X=durable-42; cd /tmp; echo set",
      });
      assert.deepEqual(r1, { output: "set\n", exit_code: 0, timed_out: false });
      const tmux = await run("pgrep", ["-u", w.user.name, "-x", "tmux: server"]);
      assert.ok(
        tmux.stdout.trim() || (await run("pgrep", ["-u", w.user.name, "tmux"])).stdout.trim(),
      );
      await rsm.callJson("snapshot");
      const { readHandle } = await import("./support/mcp.ts");
      const h = await readHandle(rsm.env);
      assert.ok(h);
      Deno.kill(h.pid, "SIGKILL");
      await waitFor("the daemon to die", () => {
        try {
          Deno.kill(h.pid, "SIGCONT");
          return false;
        } catch {
          return true;
        }
      });
      // the next call spawns a new daemon, which restores the session and re-attaches
      const r2 = await rsm.callJson("ssh_shell_run", { ...sh("d"), command: "echo $X; pwd" });
      assert.deepEqual(r2, { output: "durable-42\n/tmp\n", exit_code: 0, timed_out: false });
      const h2 = await readHandle(rsm.env);
      assert.notEqual(h2?.pid, h.pid);
      const rows = await rsm.callJson("ssh_shell_list", { session_id: "box" });
      assert.deepEqual(
        rows.map((r: { id: string; durable: boolean; lost: boolean }) => [r.id, r.durable, r.lost]),
        [["d", true, false]],
      );
      const s = await rsm.callJson("ssh_shell_screen", sh("d"));
      assert.equal(s.rows, 24);
    } finally {
      await rsm.call("ssh_shell_close", sh("d")).catch(() => "");
    }
    await waitFor("the tmux session to end", async () => {
      const r = await run("su", ["-s", "/bin/sh", "-c", "tmux ls 2>&1", w.user.name]);
      return !r.stdout.includes("rsm-box-d");
    }, 10_000);
  },
);

testIf(missing, "durable without tmux on the server is a clear error", async () => {
  await using w = await world();
  await using bare = await startSshd({ extraConfig: "SetEnv PATH=/nonexistent" });
  const { rsm } = w;
  await rsm.callJson("ssh_connect", {
    id: "bare",
    spec: { user: w.user.name, addresses: [bare.address], auth: { key_path: w.user.keyPath } },
  });
  const err = await rsm.callError("ssh_shell_open", {
    session_id: "bare",
    shell_id: "d",
    durable: true,
  });
  assert.match(err, /tmux is not installed on the server/);
  assert.deepEqual(await rsm.callJson("ssh_shell_list", { session_id: "bare" }), []);
});
