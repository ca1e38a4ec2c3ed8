/**
 * Docker hosts against a real dockerd: unix socket, DOCKER_HOST, docker context, tcp with
 * mutual TLS, health state through an engine stop/start, persistence across kill -9.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { tempEnv, testIf, waitFor } from "./support/env.ts";
import { readHandle, rsmSession, startRsm, stopDaemon } from "./support/mcp.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";

testIf(
  dockerdMissing,
  "docker hosts connect over unix, DOCKER_HOST, context and mutual TLS and keep a true state",
  async (t) => {
    await using d = await startDockerd({ tls: true });
    const tls = d.tls!;
    await using rsm = await rsmSession({ json: true });

    await t.step(
      "docker_connect to unix:// reports the engine; docker_list_hosts shows it connected",
      async () => {
        const info = await rsm.callJson("docker_connect", { id: "u", spec: { host: d.host } });
        assert.equal(info.state, "connected");
        assert.equal(info.host, d.host);
        assert.match(info.engine_version, /^\d+\.\d+/);
        const rows = await rsm.callJson("docker_list_hosts");
        assert.deepEqual(rows, [{
          id: "u",
          host: d.host,
          state: "connected",
          last_error: "",
          persistent: false,
          shells: 0,
        }]);
        const dup = await rsm.callError("docker_connect", { id: "u", spec: { host: d.host } });
        assert.match(dup, /in use/);
        assert.equal(await rsm.call("docker_disconnect", { id: "u" }), "disconnected u");
        assert.deepEqual(await rsm.callJson("docker_list_hosts"), []);
        const missing = await rsm.callError("docker_containers", { host_id: "u" });
        assert.match(missing, /Cannot find Docker host "u".*docker_connect/);
        const nosock = await rsm.callError("docker_connect", {
          id: "x",
          spec: { host: "unix:///nonexistent/docker.sock", timeout: "3s" },
        });
        assert.match(nosock, /Cannot connect to Docker host x .*socket not found/);
      },
    );

    await t.step("with no host, DOCKER_HOST is used, then the current docker context", async () => {
      await using tmp = await tempEnv();
      tmp.env.DOCKER_HOST = d.host;
      await using rsm = await startRsm(tmp.env, { json: true });
      try {
        const info = await rsm.callJson("docker_connect", { id: "env", spec: {} });
        assert.equal(info.host, d.host);
        assert.equal(info.source, "DOCKER_HOST");
        const rows = await rsm.callJson("docker_containers", { host_id: "env", all: true });
        assert.ok(Array.isArray(rows));
      } finally {
        await rsm.close();
        await stopDaemon(tmp.env);
      }
      // a docker context in the temp HOME, no DOCKER_HOST
      delete tmp.env.DOCKER_HOST;
      const cfgDir = join(tmp.home, ".docker");
      const hash = createHash("sha256").update("rsmctx").digest("hex");
      await Deno.mkdir(join(cfgDir, "contexts", "meta", hash), { recursive: true });
      await Deno.writeTextFile(
        join(cfgDir, "config.json"),
        JSON.stringify({ currentContext: "rsmctx" }),
      );
      await Deno.writeTextFile(
        join(cfgDir, "contexts", "meta", hash, "meta.json"),
        JSON.stringify({
          Name: "rsmctx",
          Metadata: {},
          Endpoints: { docker: { Host: d.host, SkipTLSVerify: false } },
        }),
      );
      await using rsm2 = await startRsm(tmp.env, { json: true });
      try {
        const info = await rsm2.callJson("docker_connect", { id: "ctx", spec: {} });
        assert.equal(info.host, d.host);
        assert.equal(info.source, "context");
      } finally {
        await rsm2.close();
        await stopDaemon(tmp.env);
      }
    });

    await t.step(
      "tcp:// with mutual TLS works; a wrong CA or a missing client cert is refused clearly",
      async () => {
        const info = await rsm.callJson("docker_connect", {
          id: "tls",
          spec: {
            host: tls.host,
            tls_ca_path: tls.ca,
            tls_cert_path: tls.cert,
            tls_key_path: tls.key,
          },
        });
        assert.equal(info.state, "connected");
        const imgs = await rsm.callJson("docker_image_list", { host_id: "tls" });
        assert.ok(imgs.some((r: { tag: string }) => r.tag === TEST_IMAGE));
        const wrong = await rsm.callError("docker_connect", {
          id: "wrong",
          spec: {
            host: tls.host,
            tls_ca_path: tls.wrongCa,
            tls_cert_path: tls.cert,
            tls_key_path: tls.key,
            timeout: "5s",
          },
        });
        assert.match(wrong, /Cannot connect to Docker host wrong/);
        assert.match(wrong, /TLS|certificate/i);
        assert.match(wrong, /tls_ca_path/);
        const nocert = await rsm.callError("docker_connect", {
          id: "nocert",
          spec: { host: tls.host, tls_ca_path: tls.ca, timeout: "5s" },
        });
        assert.match(nocert, /Cannot connect to Docker host nocert/);
        const rows = await rsm.callJson("docker_list_hosts");
        assert.deepEqual(rows.map((r: { id: string }) => r.id), ["tls"]);
        await rsm.call("docker_disconnect", { id: "tls" });
      },
    );

    await t.step(
      "stopping dockerd makes the host disconnected with last_error; starting it again works without reconnecting",
      async () => {
        await rsm.callJson("docker_connect", { id: "h", spec: { host: d.host } });
        await d.stop();
        try {
          const err = await rsm.callError("docker_containers", { host_id: "h" });
          assert.match(err, /unreachable/);
          const rows = await rsm.callJson("docker_list_hosts");
          assert.equal(rows[0].state, "disconnected");
          assert.notEqual(rows[0].last_error, "");
          const status = await rsm.callJson("status");
          assert.equal(status.hosts[0].state, "disconnected");
        } finally {
          await d.start();
        }
        const list = await rsm.callJson("docker_containers", { host_id: "h", all: true });
        assert.ok(Array.isArray(list));
        const rows = await rsm.callJson("docker_list_hosts");
        assert.equal(rows[0].state, "connected");
        assert.equal(rows[0].last_error, "");
        await rsm.call("docker_disconnect", { id: "h" });
      },
    );

    await t.step("a persistent host comes back after kill -9 of the rsm daemon", async () => {
      await rsm.callJson("docker_connect", {
        id: "keep",
        spec: { host: d.host, persistent: true },
      });
      await rsm.callJson("docker_connect", { id: "temp", spec: { host: d.host } });
      await rsm.callJson("snapshot");
      const state = JSON.parse(await Deno.readTextFile(join(rsm.tmp.rsmDir, "state.json")));
      assert.deepEqual(state.docker.hosts.map((h: { id: string }) => h.id), ["keep"]);
      const before = await readHandle(rsm.env);
      Deno.kill(before!.pid, "SIGKILL");
      await waitFor("the old daemon to die", () => {
        try {
          Deno.kill(before!.pid, "SIGCONT");
          return false;
        } catch {
          return true;
        }
      });
      const rows = await waitFor(
        "host keep to be restored",
        async () => {
          const r = await rsm.callJson("docker_list_hosts").catch(() => null);
          return r?.length && r[0].state === "connected" ? r : null;
        },
        60_000,
        500,
      );
      assert.deepEqual(rows.map((r: { id: string }) => r.id), ["keep"]);
      const after = await readHandle(rsm.env);
      assert.notEqual(after!.pid, before!.pid);
      const list = await rsm.callJson("docker_containers", { host_id: "keep", all: true });
      assert.ok(Array.isArray(list));
    });

    await t.step(
      "a persistent host whose engine is down at restore is kept as disconnected and comes back",
      async () => {
        await d.stop();
        try {
          const h = await readHandle(rsm.env);
          Deno.kill(h!.pid, "SIGKILL");
          const rows = await waitFor(
            "restored daemon to list the host",
            async () => {
              const r = await rsm.callJson("docker_list_hosts").catch(() => null);
              return r?.length ? r : null;
            },
            60_000,
            500,
          );
          assert.equal(rows[0].id, "keep");
          assert.equal(rows[0].state, "disconnected");
          assert.notEqual(rows[0].last_error, "");
          const state = JSON.parse(await Deno.readTextFile(join(rsm.tmp.rsmDir, "state.json")));
          assert.deepEqual(state.docker.hosts.map((x: { id: string }) => x.id), ["keep"]);
        } finally {
          await d.start();
        }
        const list = await rsm.callJson("docker_containers", { host_id: "keep", all: true });
        assert.ok(Array.isArray(list));
        const rows = await rsm.callJson("docker_list_hosts");
        assert.equal(rows[0].state, "connected");
      },
    );
  },
);
