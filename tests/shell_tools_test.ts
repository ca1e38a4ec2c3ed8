import assert from "node:assert/strict";
import { z } from "zod";
import { shellTools as toolsOf } from "../lib/mcp/shell.ts";
import { builtinBackends } from "./support/backends.ts";

/** The tools of the built-in backends (never opened here, so their dependencies refuse). */
const shellTools = toolsOf(builtinBackends());

const VERBS = ["open", "write", "read", "run", "screen", "resize", "close", "list"];

Deno.test("the eight ssh_shell_* and eight docker_shell_* tools share one shape", () => {
  const names = shellTools.map((t) => t.name).sort();
  assert.deepEqual(
    names,
    [...VERBS.map((v) => `docker_shell_${v}`), ...VERBS.map((v) => `ssh_shell_${v}`)].sort(),
  );
  for (const t of shellTools) {
    const docker = t.name.startsWith("docker_");
    assert.equal(t.group, docker ? "docker" : "shell", t.name);
    const keys = Object.keys(t.input);
    assert.ok(keys.includes(docker ? "host_id" : "session_id"), t.name);
    assert.ok(!keys.includes(docker ? "session_id" : "host_id"), t.name);
    if (!t.name.endsWith("_list")) assert.ok(keys.includes("shell_id"), t.name);
    assert.ok(t.description.length > 40, t.name);
  }
  const read = shellTools.find((t) => t.name === "ssh_shell_read")!;
  assert.deepEqual(Object.keys(read.input).sort(), [
    "idle_ms",
    "session_id",
    "shell_id",
    "strip_ansi",
    "timeout_ms",
    "until",
  ]);
  assert.equal(read.annotations?.readOnlyHint, true);
  const write = shellTools.find((t) => t.name === "docker_shell_write")!;
  assert.deepEqual(Object.keys(write.input).sort(), [
    "data",
    "host_id",
    "shell_id",
    "wait_idle_ms",
    "wait_ms",
    "wait_until",
  ]);
  assert.equal(
    shellTools.find((t) => t.name === "ssh_shell_close")!.annotations?.destructiveHint,
    true,
  );
});

Deno.test("shell tool inputs reject out-of-range sizes and timeouts", () => {
  const schema = (name: string) => z.strictObject(shellTools.find((t) => t.name === name)!.input);
  const base = { session_id: "s", shell_id: "x" };
  assert.ok(schema("ssh_shell_resize").safeParse({ ...base, rows: 40, cols: 120 }).success);
  assert.ok(!schema("ssh_shell_resize").safeParse({ ...base, rows: 0, cols: 80 }).success);
  assert.ok(!schema("ssh_shell_resize").safeParse({ ...base, rows: 24, cols: 1001 }).success);
  assert.ok(!schema("ssh_shell_read").safeParse({ ...base, timeout_ms: 300_001 }).success);
  assert.ok(schema("ssh_shell_read").safeParse({ ...base, timeout_ms: 300_000 }).success);
  assert.ok(!schema("ssh_shell_read").safeParse({ ...base, bogus: 1 }).success);
  const open = schema("docker_shell_open");
  assert.ok(open.safeParse({ host_id: "h", shell_id: "x", container: "c" }).success);
  assert.ok(!open.safeParse({ host_id: "h", shell_id: "x" }).success, "container is required");
});
