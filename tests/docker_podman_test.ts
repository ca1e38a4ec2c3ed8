/**
 * README "Docker" "Podman's Docker-compatible API works too": the container suite, copy and shells
 * against `podman system service`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { testIf, waitFor } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import { podmanMissing, startPodman } from "./support/podman.ts";
import { containerSuite } from "./support/container_suite.ts";

testIf(
  podmanMissing,
  "docker containers, logs, exec, run, copy and shells work against Podman's Docker API",
  async (t) => {
    await using p = await startPodman();
    await using rsm = await rsmSession({ json: true });
    const info = await rsm.callJson("docker_connect", { id: "local", spec: { host: p.host } });
    assert.equal(info.state, "connected");
    await containerSuite(t, p, rsm, { podman: true });

    await t.step(
      "docker_upload and docker_download round-trip a tree with modes on Podman",
      async () => {
        const work = await Deno.makeTempDir({ prefix: "rsm-podman-copy-" });
        try {
          await Deno.mkdir(join(work, "src/sub"), { recursive: true });
          await Deno.writeTextFile(join(work, "src/sub/x.sh"), "echo x\n");
          await Deno.chmod(join(work, "src/sub/x.sh"), 0o750);
          const h = { host_id: "local", container: "lister" };
          const up = await rsm.callJson("docker_upload", {
            ...h,
            local_path: join(work, "src"),
            remote_path: "/opt/t",
          });
          assert.equal(up.files, 1);
          assert.equal(
            (await p.cli(["exec", "lister", "stat", "-c", "%a", "/opt/t/sub/x.sh"])).trim(),
            "750",
          );
          const down = await rsm.callJson("docker_download", {
            ...h,
            remote_path: "/opt/t",
            local_path: join(work, "back"),
          });
          assert.equal(down.files, 1);
          assert.equal(
            ((await Deno.stat(join(work, "back/sub/x.sh"))).mode! & 0o777).toString(8),
            "750",
          );
        } finally {
          await Deno.remove(work, { recursive: true });
        }
      },
    );

    await t.step("a docker shell on Podman keeps state and close ends its process", async () => {
      const s = { host_id: "local", shell_id: "p1" };
      await rsm.callJson("docker_shell_open", { ...s, container: "lister" });
      await rsm.callJson("docker_shell_run", { ...s, command: "cd /etc; export K=v" });
      const r = await rsm.callJson("docker_shell_run", { ...s, command: "pwd; echo $K" });
      assert.equal(r.output.trim(), "/etc\nv");
      await rsm.call("docker_shell_write", { ...s, data: "sleep 4343\n" });
      await waitFor(
        "sleep to run",
        async () => (await p.cli(["top", "lister"])).includes("sleep 4343"),
      );
      await rsm.call("docker_shell_close", s);
      await waitFor(
        "sleep 4343 gone",
        async () => !(await p.cli(["top", "lister"])).includes("sleep 4343"),
        10_000,
      );
    });
  },
);
