/**
 * ShellManager alone, with only its narrow dependencies (a backend registry, a store, a log)
 * and a backend defined in the tests (shells on a local PTY): no App, no SSH, no Docker.
 */
import assert from "node:assert/strict";
import { need, testIf } from "./support/env.ts";
import { localShellBackend } from "./support/local_backend.ts";
import { ShellBackends, ShellManager, type ShellStore } from "../lib/term/mod.ts";

const missing = await need(["script"]);

/** A store that keeps what the manager registers, and counts changes. */
function memoryStore() {
  const parts = new Map<string, { save(): unknown; restore(data: unknown): Promise<void> }>();
  const store: ShellStore & { changes: number } = {
    changes: 0,
    register: (name, part) => void parts.set(name, part),
    changed() {
      store.changes++;
    },
  };
  return { store, part: (name: string) => parts.get(name)! };
}

const quiet = { warn: () => {} };

testIf(missing, "ShellManager opens, runs, lists and closes a backend's shells", async () => {
  const log = { opened: [], restored: [], released: [] } as {
    opened: string[];
    restored: string[];
    released: string[];
  };
  const { store } = memoryStore();
  const shells = new ShellManager({
    backends: new ShellBackends().register(localShellBackend(log)),
    store,
    log: quiet,
  });
  try {
    const info = await shells.open("local", "here", "a", { options: { command: "sh" } });
    assert.equal(info.id, "a");
    assert.equal(info.machine, "here");
    assert.equal(info.pty, "local");
    assert.equal(info.closed, false);
    assert.equal(info.durable, false);
    assert.deepEqual(log.opened, ["here/a"]);

    const shell = shells.get("local", "here", "a");
    assert.deepEqual(await shell.run("echo $((6*7)); (exit 3)"), {
      output: "42\n",
      exit_code: 3,
      timed_out: false,
    });
    assert.deepEqual(shells.list({ kind: "local" }).map((s) => s.id), ["a"]);
    assert.deepEqual(shells.list({ kind: "ssh" }), []);
    assert.deepEqual(shells.refs().map((r) => [r.kind, r.owner, r.id]), [["local", "here", "a"]]);
    assert.deepEqual(shells.opened("local", "here", "a"), {
      info: { pty: "local" },
      command: "sh",
    });
    assert.equal(shells.where("local", "here"), "machine here");

    await assert.rejects(shells.open("local", "here", "a"), {
      code: "ALREADY_EXISTS",
      message: /Cannot open shell a: a shell with that id is already open on machine here/,
    });
    await assert.rejects(shells.open("pod", "x", "a"), {
      code: "NOT_FOUND",
      message: /Cannot find shell kind "pod": not registered; kinds: local/,
    });
    assert.throws(() => shells.get("local", "here", "nope"), {
      code: "NOT_FOUND",
      message: /Cannot find shell nope on machine here: no such shell; see local_shell_list/,
    });

    shells.closeShell("local", "here", "a");
    assert.deepEqual(shells.list(), []);
    assert.deepEqual(log.released, ["here/a"]);
  } finally {
    await shells.close();
  }
});

testIf(missing, "ShellManager saves the shells a backend keeps and restores them", async () => {
  const log = { opened: [], restored: [], released: [] } as {
    opened: string[];
    restored: string[];
    released: string[];
  };
  const first = memoryStore();
  const before = new ShellManager({
    backends: new ShellBackends().register(localShellBackend(log)),
    store: first.store,
    log: quiet,
  });
  let saved: unknown;
  let openedAt: string;
  try {
    await before.open("local", "m1", "kept", { rows: 30, cols: 100, options: { keep: true } });
    await before.open("local", "m1", "plain", {});
    openedAt = before.info("local", "m1", "kept").opened_at;
    assert.ok(first.store.changes >= 1, "opening a kept shell changes the saved state");
    saved = JSON.parse(JSON.stringify(first.part("shells").save()));
  } finally {
    await before.close();
  }
  const [record, ...rest] = saved as Record<string, unknown>[];
  assert.deepEqual(rest, [], "only the kept shell is saved");
  assert.ok(record, "the kept shell is saved");
  assert.equal(record.kind, "local");
  assert.equal(record.machine, "m1");
  assert.equal(record.shell_id, "kept");
  assert.equal(record.command, "sh");
  assert.equal(record.rows, 30);

  const second = memoryStore();
  const after = new ShellManager({
    backends: new ShellBackends().register(localShellBackend(log)),
    store: second.store,
    log: quiet,
  });
  try {
    await second.part("shells").restore([
      ...(saved as unknown[]),
      { kind: "pod", pod: "p", shell_id: "x" }, // a kind no longer registered: skipped
    ]);
    assert.deepEqual(log.restored, ["m1/kept"]);
    const info = after.info("local", "m1", "kept");
    assert.equal(info.opened_at, openedAt);
    assert.equal(info.durable, true);
    const shell = after.get("local", "m1", "kept");
    assert.equal(shell.rows, 30);
    // a new process (this backend cannot keep one): typed keys reach it
    await shell.write("echo ba''ck\n");
    const r = await shell.read({ until: /back/, timeoutMs: 10_000 });
    assert.equal(r.until_matched, true, r.data);
  } finally {
    await after.close();
  }
});
