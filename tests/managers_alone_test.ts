/**
 * Each manager alone, with only its narrow dependencies (a store, a log, a lookup function,
 * a path): no App, no MCP, no daemon. What a user would see: empty lists, clear errors with
 * stable codes for unknown ids, close() that resolves and refuses new work, and — against a
 * real sshd and a real engine — sessions, forwards and hosts that work and are persisted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type ErrorCode, RsmError } from "../lib/errors.ts";
import { Logger } from "../lib/log.ts";
import { StateStore } from "../lib/state/store.ts";
import { ForwardManager, type SessionSpec, SshManager } from "../lib/ssh/mod.ts";
import type { ForwardSpec } from "../lib/ssh/forward.ts";
import { DockerManager } from "../lib/docker/mod.ts";
import { JobManager } from "../lib/jobs/mod.ts";
import { need, testIf, waitFor } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { dockerdMissing, startDockerd } from "./support/dockerd.ts";

const sshMissing = await need(["sshd", "ssh-keygen", "useradd"], true);

/** A state registry that keeps the registered parts in memory and counts changes. */
function memoryStore() {
  const parts = new Map<string, { save(): unknown; restore(data: unknown): Promise<void> }>();
  return {
    changes: 0,
    register(name: string, part: { save(): unknown; restore(data: unknown): Promise<void> }) {
      parts.set(name, part);
    },
    changed() {
      this.changes++;
    },
    saved: (name: string) => parts.get(name)?.save(),
  };
}

/** A check for assert.throws/rejects: an RsmError with `code` whose message matches. */
function rsmError(code: ErrorCode, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RsmError, `not an RsmError: ${err}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  };
}

/** Asserts that `fn` throws an RsmError with `code` and a message matching `message`. */
function assertCode(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, rsmError(code, message));
}

async function assertRejectsCode(p: Promise<unknown>, code: ErrorCode, message: RegExp) {
  await assert.rejects(p, rsmError(code, message));
}

async function withDir<T>(fn: (dir: string, log: Logger) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "rsm-alone-" });
  try {
    return await fn(dir, new Logger({ file: join(dir, "log"), level: "error", stderr: false }));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("SshManager alone lists nothing, names ssh_list for an unknown id, and refuses connects once closed", async () => {
  await withDir(async (dir, log) => {
    const store = memoryStore();
    const ssh = new SshManager({ store, log, knownHosts: join(dir, "known_hosts") });
    assert.deepEqual(ssh.rows(), []);
    assert.deepEqual(ssh.sessions(), []);
    assertCode(() => ssh.get("web1"), "NOT_FOUND", /Cannot find SSH session "web1".*see ssh_list/);
    assertCode(() => ssh.info("web1"), "NOT_FOUND", /no such session/);
    await assert.rejects(ssh.disconnect("web1"), /Cannot find SSH session "web1"/);
    await assert.rejects(ssh.clone("web1", "web2"), /Cannot find SSH session "web1"/);
    assert.deepEqual(store.saved("ssh"), { sessions: [] });

    await ssh.close();
    await ssh.close(); // idempotent
    await assertRejectsCode(
      ssh.connect("late", { addresses: ["127.0.0.1:1"] }),
      "SHUTTING_DOWN",
      /Cannot connect: the daemon is shutting down/,
    );
    assert.deepEqual(ssh.rows(), []);
  });
});

Deno.test("ForwardManager alone refuses unknown sessions and forwards with clear errors", async () => {
  await withDir(async (_dir, log) => {
    const store = memoryStore();
    const asked: string[] = [];
    const forwards = new ForwardManager({
      store,
      log,
      session: (id) => {
        asked.push(id);
        throw new RsmError("NOT_FOUND", `Cannot find SSH session "${id}": no such session`);
      },
    });
    assert.deepEqual(forwards.list(), []);
    await assertRejectsCode(
      forwards.open("nope", "f1", localTo(80)),
      "NOT_FOUND",
      /Cannot find SSH session "nope"/,
    );
    assert.deepEqual(asked, ["nope"]);
    assertCode(
      () => forwards.cancel("nope", "f1"),
      "NOT_FOUND",
      /Cannot find forward "f1" on session nope; see ssh_forwards_list/,
    );
    assert.deepEqual(store.saved("forwards"), { forwards: [] });
    await forwards.close();
    await assertRejectsCode(
      forwards.open("nope", "f2", { kind: "dynamic", bind_addr: "127.0.0.1", bind_port: 0 }),
      "SHUTTING_DOWN",
      /shutting down/,
    );
  });
});

Deno.test("DockerManager alone lists nothing, names docker_connect for an unknown host, and asks its session lookup", async () => {
  await withDir(async (dir, log) => {
    const store = memoryStore();
    const docker = new DockerManager({
      store,
      log,
      knownHosts: join(dir, "known_hosts"),
      session: (id) => {
        throw new RsmError("NOT_FOUND", `Cannot find SSH session "${id}": no such session`);
      },
    });
    assert.deepEqual(docker.rows(), []);
    assert.deepEqual(await docker.listHosts(), []);
    assertCode(
      () => docker.info("eng"),
      "NOT_FOUND",
      /Cannot find Docker host "eng": no such host; connect one with docker_connect/,
    );
    assertCode(() => docker.disconnect("eng"), "NOT_FOUND", /no such host/);
    await assertRejectsCode(
      docker.connect("eng", { ssh_session: "gone" }),
      "NOT_FOUND",
      /Cannot find SSH session "gone"/,
    );
    // an engine that is not there: the error says so and the host is not kept
    await assert.rejects(
      docker.connect("eng", { host: `unix://${join(dir, "no-docker.sock")}`, timeout: "3s" }),
    );
    assert.deepEqual(docker.rows(), []);
    assert.deepEqual(store.saved("docker"), { hosts: [] });
    await docker.close();
    await docker.close(); // idempotent
  });
});

Deno.test("JobManager alone lists nothing, names job_list for an unknown id, and closes", async () => {
  await withDir(async (dir, log) => {
    const jobs = new JobManager({ dir: join(dir, "jobs"), log });
    assert.deepEqual(jobs.rows(), []);
    assertCode(() => jobs.get("j1"), "NOT_FOUND", /Cannot find job j1: no such job.*see job_list/);
    await jobs.close();
    await jobs.close();
  });
});

testIf(
  sshMissing,
  "SshManager and ForwardManager alone: a real session, a local forward through it, saved to state.json and restored by new managers",
  async () => {
    await using user = await createUser({ plainShell: true });
    await using sshd = await startSshd();
    await withDir(async (dir, log) => {
      // something only "the other side" serves: an echo server on loopback
      const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const serving = (async () => {
        for await (const conn of echo) conn.readable.pipeTo(conn.writable).catch(() => {});
      })();
      const statePath = join(dir, "state.json");
      const knownHosts = join(dir, "known_hosts");
      const spec: SessionSpec = {
        user: user.name,
        addresses: [sshd.address],
        disable_ssh_config: true,
        known_hosts_path: join(dir, "user_known_hosts"),
        auth: { key_path: user.keyPath, use_agent: false },
        persistent: true,
      };
      try {
        const store = new StateStore(statePath, { log, debounceMs: 10 });
        const ssh = new SshManager({ store, log, knownHosts });
        const forwards = new ForwardManager({ store, log, session: (id) => ssh.get(id) });
        await ssh.connect("box", spec);
        const info = ssh.info("box");
        assert.equal(info.state, "connected");
        assert.equal(info.user, user.name);
        assert.equal(info.host_key_fingerprint, sshd.hostKeyFingerprint);
        assert.deepEqual(ssh.rows().map((r) => [r.id, r.state, r.persistent]), [
          ["box", "connected", true],
        ]);

        const port = (echo.addr as Deno.NetAddr).port;
        const fwd = await forwards.open("box", "echo", localTo(port));
        assert.ok(fwd.bind_port > 0);
        assert.equal(
          await roundTrip(fwd.bind_port, "hello through the tunnel"),
          "hello through the tunnel",
        );
        await assertRejectsCode(
          forwards.open("box", "echo", localTo(port)),
          "ALREADY_EXISTS",
          /a forward with this id exists/,
        );
        await store.flush();
        const saved = JSON.parse(await Deno.readTextFile(statePath));
        assert.deepEqual(saved.ssh.sessions.map((s: { id: string }) => s.id), ["box"]);
        assert.deepEqual(saved.forwards.forwards.map((f: { id: string }) => f.id), ["echo"]);
        store.stop();
        await forwards.close();
        await ssh.close();

        // new managers over the same file: the session reconnects, the forward listens again
        const store2 = new StateStore(statePath, { log, debounceMs: 10 });
        const ssh2 = new SshManager({ store: store2, log, knownHosts });
        const forwards2 = new ForwardManager({ store: store2, log, session: (id) => ssh2.get(id) });
        try {
          await store2.load();
          await store2.restoreAll();
          await waitFor("box to reconnect", () => ssh2.info("box").state === "connected");
          const [back] = forwards2.list("box");
          assert.equal(back?.id, "echo");
          assert.equal(await roundTrip(back!.bind_port, "and back again"), "and back again");
          forwards2.cancel("box", "echo");
          assert.deepEqual(forwards2.list(), []);
          await ssh2.disconnect("box");
          assertCode(() => ssh2.get("box"), "NOT_FOUND", /no such session/);
          await store2.flush();
          const after = JSON.parse(await Deno.readTextFile(statePath));
          assert.deepEqual(after.ssh.sessions, []);
        } finally {
          store2.stop();
          await forwards2.close();
          await ssh2.close();
        }
      } finally {
        echo.close();
        await serving.catch(() => {});
      }
    });
  },
);

testIf(
  dockerdMissing,
  "DockerManager alone connects a real engine, persists it, and tells the daemon when it disconnects",
  async () => {
    await using d = await startDockerd();
    await withDir(async (dir, log) => {
      const store = memoryStore();
      const gone: string[] = [];
      const docker = new DockerManager({
        store,
        log,
        knownHosts: join(dir, "known_hosts"),
        session: () => {
          throw new Error("no SSH here");
        },
        onDisconnect: (id) => gone.push(id),
      });
      try {
        const info = await docker.connect("eng", { host: d.host, persistent: true });
        assert.equal(info.id, "eng");
        assert.equal(info.state, "connected");
        assert.ok(info.engine_version, "the engine's version is shown");
        await assertRejectsCode(
          docker.connect("eng", { host: d.host }),
          "ALREADY_EXISTS",
          /the id is in use/,
        );
        assert.deepEqual(store.saved("docker"), {
          hosts: [{ id: "eng", spec: { host: d.host, persistent: true } }],
        });
        assert.ok(store.changes > 0);
        docker.disconnect("eng");
        assert.deepEqual(gone, ["eng"]);
        assert.deepEqual(docker.rows(), []);
      } finally {
        await docker.close();
      }
    });
  },
);

/** A local forward from a free loopback port to 127.0.0.1:`port` on the far side. */
function localTo(port: number): ForwardSpec {
  return {
    kind: "local",
    bind_addr: "127.0.0.1",
    bind_port: 0,
    remote_host: "127.0.0.1",
    remote_port: port,
  };
}

/** Sends `text` to 127.0.0.1:`port` and reads as many bytes back. */
async function roundTrip(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(text));
    const want = new TextEncoder().encode(text).length;
    const buf = new Uint8Array(want);
    let got = 0;
    while (got < want) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    return new TextDecoder().decode(buf.subarray(0, got));
  } finally {
    conn.close();
  }
}
