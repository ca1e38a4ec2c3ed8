/**
 * docker_exec must let go of everything a call made once the command has ended. An abort
 * listener left on the call's signal (which depends on the daemon's own shutdown signal) kept
 * each call's job, output captures and closures alive until the daemon stopped: the daemon's
 * memory grew with every docker_exec (README "Reliability and security", Soak).
 */
import assert from "node:assert/strict";
import { testIf } from "./support/env.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";
import { DockerHost } from "../lib/docker/host.ts";
import { dockerExec } from "../lib/docker/exec.ts";

testIf(
  dockerdMissing,
  "docker_exec leaves no abort listener behind once the command has ended",
  async () => {
    await using d = await startDockerd({ image: true });
    const name = `rsm-listeners-${crypto.randomUUID().slice(0, 8)}`;
    await d.cli(["run", "-d", "--name", name, TEST_IMAGE, "sleep", "100000"]);
    const host = new DockerHost("eng", { host: d.host }, {
      sessionClient: () => {
        throw new Error("not an SSH host");
      },
      dialSsh: () => Promise.reject(new Error("not an SSH host")),
    });
    // Count the abort listeners on every signal while the calls run (the call's own signal and
    // any signal combined from it), and which of them are still in place afterwards.
    const proto = EventTarget.prototype;
    const add = proto.addEventListener;
    const remove = proto.removeEventListener;
    const live = new Set<unknown>();
    let added = 0;
    proto.addEventListener = function (this: EventTarget, type, fn, opts) {
      if (type === "abort" && this instanceof AbortSignal && fn) {
        live.add(fn);
        added++;
      }
      return add.call(this, type, fn, opts);
    };
    proto.removeEventListener = function (this: EventTarget, type, fn, opts) {
      if (type === "abort") live.delete(fn);
      return remove.call(this, type, fn, opts);
    };
    try {
      const call = new AbortController(); // lives as long as the daemon, like a tool call's
      for (let i = 0; i < 5; i++) {
        const r = await dockerExec(host, name, {
          cmd: ["echo", `run ${i}`],
          timeoutMs: 3600_000, // docker_exec's default: a timer that must not outlive the call
          signal: call.signal,
        });
        assert.equal(r.exit_code, 0);
        assert.equal(r.stdout.text(), `run ${i}\n`);
      }
      assert.ok(added >= 5, `each call listens for an abort (${added} listeners added)`);
      assert.equal(live.size, 0, `${live.size} abort listeners left after the calls ended`);
    } finally {
      proto.addEventListener = add;
      proto.removeEventListener = remove;
      host.close();
      await d.cli(["rm", "-f", name], { ok: false });
    }
  },
);
