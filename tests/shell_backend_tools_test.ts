/**
 * A third shell backend, defined in the tests (tests/support/local_backend.ts: shells on a
 * local PTY), registered on a running App and driven through the generic shell tools over
 * MCP (in-process): its tools exist because it is registered, with no edit of lib/term.
 */
import assert from "node:assert/strict";
import { need, testIf } from "./support/env.ts";
import { type LocalBackendLog, localShellBackend } from "./support/local_backend.ts";
import { startInProc } from "./support/inproc.ts";

const missing = await need(["script"]);

testIf(missing, "a backend registered in a test is served by the generic shell tools", async () => {
  const log: LocalBackendLog = { opened: [], restored: [], released: [] };
  await using rsm = await startInProc({
    groups: ["shell"],
    format: "json",
    configure: (app) => void app.shells.backends.register(localShellBackend(log)),
  });
  const json = async (tool: string, args: Record<string, unknown>) =>
    JSON.parse(await rsm.call(tool, args));

  // its eight tools are listed next to SSH's, with its own owner field and open options
  const tools = await rsm.listTools();
  const names = tools.map((t) => t.name).filter((n) => n.startsWith("local_shell_")).sort();
  assert.deepEqual(
    names,
    ["close", "list", "open", "read", "resize", "run", "screen", "write"].map((v) =>
      `local_shell_${v}`
    ),
  );
  const open = tools.find((t) => t.name === "local_shell_open")!;
  assert.deepEqual(Object.keys(open.inputSchema.properties ?? {}).sort(), [
    "cols",
    "command",
    "env",
    "keep",
    "machine",
    "rows",
    "shell_id",
  ]);
  assert.match(
    tools.find((t) => t.name === "local_shell_run")!.description ?? "",
    /^Same as ssh_shell_run, on this machine \(machine instead of session_id\)/,
  );

  // open, write and read, run, screen, list, close
  const info = await json("local_shell_open", {
    machine: "here",
    shell_id: "t1",
    command: "sh",
    env: { GREETING: "hello from env" },
    rows: 20,
    cols: 70,
  });
  assert.equal(info.id, "t1");
  assert.equal(info.machine, "here");
  assert.equal(info.pty, "local");
  assert.deepEqual(log.opened, ["here/t1"]);

  const wrote = await json("local_shell_write", {
    machine: "here",
    shell_id: "t1",
    data: "echo wr''ote-$((40+2))\n",
    wait_until: "wrote-42",
  });
  assert.match(wrote.data, /wrote-42/);

  const ran = await json("local_shell_run", {
    machine: "here",
    shell_id: "t1",
    command: "cd /tmp && printf '%s\\n' \"$PWD\" one two; (exit 7)",
  });
  assert.equal(ran.output, "/tmp\none\ntwo\n");
  assert.equal(ran.exit_code, 7);
  // state persists between calls, as in any shell
  const pwd = await json("local_shell_run", { machine: "here", shell_id: "t1", command: "pwd" });
  assert.equal(pwd.output, "/tmp\n");
  const env = await json("local_shell_run", {
    machine: "here",
    shell_id: "t1",
    command: 'echo "$GREETING"',
  });
  assert.equal(env.output, "hello from env\n");

  await rsm.call("local_shell_write", {
    machine: "here",
    shell_id: "t1",
    data: "echo on-screen\n",
  });
  const read = await json("local_shell_read", {
    machine: "here",
    shell_id: "t1",
    until: "on-screen\\s",
    timeout_ms: 10_000,
    strip_ansi: true,
  });
  assert.match(read.data, /on-screen/);
  const screen = await json("local_shell_screen", { machine: "here", shell_id: "t1" });
  assert.equal(screen.rows, 20);
  assert.equal(screen.cols, 70);
  assert.match(screen.screen, /^on-screen$/m);

  const listed = await json("local_shell_list", { machine: "here" });
  assert.deepEqual(listed.map((s: { id: string }) => s.id), ["t1"]);
  assert.deepEqual(await json("ssh_shell_list", {}), [], "SSH's list shows no local shells");

  // errors name this backend's owner and tools
  assert.match(
    await rsm.callError("local_shell_open", { machine: "here", shell_id: "t1" }),
    /a shell with that id is already open on machine here/,
  );
  assert.match(
    await rsm.callError("local_shell_read", { machine: "there", shell_id: "t1" }),
    /Cannot find shell t1 on machine there: no such shell; see local_shell_list/,
  );
  assert.match(
    await rsm.callError("local_shell_open", { session_id: "s", shell_id: "x" }),
    /machine/,
    "the open tool validates its own owner field",
  );

  assert.equal(
    await rsm.call("local_shell_close", { machine: "here", shell_id: "t1" }),
    "closed t1",
  );
  assert.deepEqual(await json("local_shell_list", {}), []);
  assert.deepEqual(log.released, ["here/t1"]);
});
