/** Docker PTY shells (docker exec with a TTY) on the shared terminal engine, against a real dockerd. */
import assert from "node:assert/strict";
import { testIf, waitFor } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";

testIf(
  dockerdMissing,
  "docker shells keep state across calls, render a screen and end their process on close",
  async (t) => {
    await using d = await startDockerd();
    await d.cli(["run", "-d", "--name", "box", TEST_IMAGE, "sleep", "1000"]);
    await using rsm = await rsmSession({ json: true });
    await rsm.callJson("docker_connect", { id: "e", spec: { host: d.host } });
    const s = { host_id: "e", shell_id: "sh1" };

    await t.step("docker_shell_open + docker_shell_run keep cwd and env across calls", async () => {
      const info = await rsm.callJson("docker_shell_open", {
        ...s,
        container: "box",
        env: { GREETING: "hello" },
        working_dir: "/tmp",
        rows: 30,
        cols: 100,
      });
      assert.equal(info.id, "sh1");
      assert.equal(info.host_id, "e");
      assert.equal(info.container, "box");
      const a = await rsm.callJson("docker_shell_run", { ...s, command: "pwd; echo $GREETING" });
      assert.equal(a.output.trim(), "/tmp\nhello");
      assert.equal(a.exit_code, 0);
      await rsm.callJson("docker_shell_run", { ...s, command: "cd /etc && export MARK=kept" });
      const b = await rsm.callJson("docker_shell_run", { ...s, command: "pwd; echo $MARK; false" });
      assert.equal(b.output.trim(), "/etc\nkept");
      assert.equal(b.exit_code, 1);
      // shell integration in the container's busybox sh: typed commands report cwd and status
      const typed = await rsm.callJson("docker_shell_write", {
        ...s,
        data: "cd /tmp; (exit 5)\n",
        wait_ms: 5000,
      });
      assert.equal(typed.cwd, "/tmp");
      assert.equal(typed.last_exit_code, 5);
      assert.equal(typed.running, false);
      assert.doesNotMatch(typed.data, /rsm|printf|133;/);
      const size = await rsm.callJson("docker_shell_run", { ...s, command: "stty size" });
      assert.equal(size.output.trim(), "30 100");
      const hosts = await rsm.callJson("docker_list_hosts");
      assert.equal(hosts[0].shells, 1);
    });

    await t.step(
      "docker_shell_resize changes the terminal size and docker_shell_screen renders it",
      async () => {
        assert.equal(await rsm.call("docker_shell_resize", { ...s, rows: 20, cols: 60 }), "ok");
        const size = await rsm.callJson("docker_shell_run", { ...s, command: "stty size" });
        assert.equal(size.output.trim(), "20 60");
        await rsm.callJson("docker_shell_run", { ...s, command: "clear; echo SCREEN-MARK" });
        const screen = await rsm.callJson("docker_shell_screen", s);
        assert.equal(screen.cols, 60);
        assert.equal(screen.rows, 20);
        assert.ok(
          screen.screen.split("\n").some((r: string) => r.includes("SCREEN-MARK")),
          screen.screen,
        );
      },
    );

    await t.step(
      "docker_shell_close ends the exec'd process (docker top shows it gone)",
      async () => {
        await rsm.call("docker_shell_write", { ...s, data: "sleep 4242\n" });
        await waitFor(
          "sleep to run",
          async () => (await d.cli(["top", "box"])).includes("sleep 4242"),
        );
        assert.equal(await rsm.call("docker_shell_close", s), "closed sh1");
        await waitFor(
          "sleep 4242 to be gone",
          async () => !(await d.cli(["top", "box"])).includes("sleep 4242"),
          10_000,
        );
        const top = await d.cli(["top", "box"]);
        assert.doesNotMatch(top, /\/bin\/sh/);
        const hosts = await rsm.callJson("docker_list_hosts");
        assert.equal(hosts[0].shells, 0);
      },
    );

    await t.step("a shell in an unknown container is a clear error", async () => {
      const err = await rsm.callError("docker_shell_open", {
        host_id: "e",
        shell_id: "x",
        container: "nope",
      });
      assert.match(err, /No such container: nope/);
    });

    await t.step(
      "docker_disconnect closes the host's shells and ends their processes",
      async () => {
        await rsm.callJson("docker_shell_open", {
          host_id: "e",
          shell_id: "sh2",
          container: "box",
        });
        await rsm.call("docker_shell_write", {
          host_id: "e",
          shell_id: "sh2",
          data: "sleep 4444\n",
        });
        await waitFor(
          "sleep to run",
          async () => (await d.cli(["top", "box"])).includes("sleep 4444"),
        );
        assert.equal(await rsm.call("docker_disconnect", { id: "e" }), "disconnected e");
        await waitFor(
          "sleep 4444 to be gone",
          async () => !(await d.cli(["top", "box"])).includes("sleep 4444"),
          10_000,
        );
        const shells = await rsm.callJson("docker_shell_list", {});
        assert.deepEqual(shells.filter((s: { host_id?: string }) => s.host_id === "e"), []);
      },
    );
  },
);
