/**
 * The container suite (containers, logs, exec, run) run against any engine speaking the Docker
 * API: dockerd (tests/docker_containers_test.ts) and Podman (tests/docker_podman_test.ts).
 */
import assert from "node:assert/strict";
import { waitFor } from "./env.ts";
import type { RsmClient } from "./mcp.ts";
import { type Dockerd, TEST_IMAGE } from "./dockerd.ts";

/** Runs every container step against engine `d`, connected in `rsm` as host `local`. */
export async function containerSuite(
  t: Deno.TestContext,
  d: Dockerd,
  rsm: RsmClient & { tmp: { rsmDir: string } },
  options: { podman?: boolean } = {},
): Promise<void> {
  const podman = options.podman ?? false;
  const h = { host_id: "local" };
  const sleeper = async (name: string, extra: string[] = []) =>
    (await d.cli(["run", "-d", "--name", name, ...extra, TEST_IMAGE, "sleep", "1000"])).trim();

  await t.step(
    "docker_containers lists running containers with 12-char ids and ports, all and filters work",
    async () => {
      const id = await sleeper("lister", ["-p", "127.0.0.1:0:80"]);
      await d.cli(["create", "--name", "stopped-one", TEST_IMAGE, "true"]);
      const rows = await rsm.callJson("docker_containers", h);
      const row = rows.find((r: { name: string }) => r.name === "lister");
      assert.ok(row, JSON.stringify(rows));
      assert.equal(row.id, id.slice(0, 12));
      assert.match(row.image, /(^|\/)rsm-busybox:test$/); // Podman says localhost/rsm-busybox:test
      assert.equal(row.state, "running");
      assert.match(row.ports, /^127\.0\.0\.1:\d+->80\/tcp$/);
      assert.ok(!rows.some((r: { name: string }) => r.name === "stopped-one"));
      const all = await rsm.callJson("docker_containers", { ...h, all: true });
      assert.ok(all.some((r: { name: string }) => r.name === "stopped-one"));
      const filtered = await rsm.callJson("docker_containers", {
        ...h,
        all: true,
        filters: { name: ["stopped-one"], status: ["created"] },
      });
      assert.deepEqual(filtered.map((r: { name: string }) => r.name), ["stopped-one"]);
      const limited = await rsm.callJson("docker_containers", { ...h, all: true, limit: 1 });
      assert.equal(limited.length, 1);
    },
  );

  await t.step(
    "docker_container_inspect returns Docker's inspect object; unknown names are clear errors",
    async () => {
      const ins = await rsm.callJson("docker_container_inspect", { ...h, container: "lister" });
      assert.equal(ins.Name, "/lister");
      assert.equal(ins.State.Running, true);
      const err = await rsm.callError("docker_container_inspect", {
        ...h,
        container: "nope-nope",
      });
      assert.match(err, /no such container/i);
      assert.match(err, /nope-nope/);
    },
  );

  await t.step(
    "stop (timeout_sec), start, restart, kill (signal) and remove (force, remove_volumes) change the real container",
    async () => {
      await sleeper("life");
      const state = async () =>
        (await d.cli(["inspect", "-f", "{{.State.Status}}", "life"])).trim();
      const t0 = Date.now();
      assert.equal(
        await rsm.call("docker_container_stop", { ...h, container: "life", timeout_sec: 1 }),
        "stopped life",
      );
      assert.ok(Date.now() - t0 < 9000, "timeout_sec 1 should not wait the default 10 s");
      assert.equal(await state(), "exited");
      assert.equal(
        await rsm.call("docker_container_start", { ...h, container: "life" }),
        "started life",
      );
      assert.equal(await state(), "running");
      const before = (await d.cli(["inspect", "-f", "{{.State.StartedAt}}", "life"])).trim();
      assert.equal(
        await rsm.call("docker_container_restart", { ...h, container: "life", timeout_sec: 0 }),
        "restarted life",
      );
      assert.notEqual(
        (await d.cli(["inspect", "-f", "{{.State.StartedAt}}", "life"])).trim(),
        before,
      );
      // the signal given is the signal delivered: a trap for USR1 exits 5
      await d.cli([
        "run",
        "-d",
        "--name",
        "trapper",
        TEST_IMAGE,
        "sh",
        "-c",
        'trap "echo got-usr1; exit 5" USR1; echo ready; while true; do sleep 0.1; done',
      ]);
      await waitFor(
        "trap to be set",
        async () => (await d.cli(["logs", "trapper"])).includes("ready"),
      );
      assert.equal(
        await rsm.call("docker_container_kill", { ...h, container: "trapper", signal: "SIGUSR1" }),
        "killed trapper",
      );
      await waitFor(
        "trapper to exit",
        async () =>
          (await d.cli(["inspect", "-f", "{{.State.Status}}", "trapper"])).trim() === "exited",
      );
      assert.equal((await d.cli(["inspect", "-f", "{{.State.ExitCode}}", "trapper"])).trim(), "5");
      assert.match(await d.cli(["logs", "trapper"]), /got-usr1/);
      // default signal is SIGKILL
      assert.equal(
        await rsm.call("docker_container_kill", { ...h, container: "life" }),
        "killed life",
      );
      await waitFor("container to exit", async () => (await state()) === "exited");
      assert.equal((await d.cli(["inspect", "-f", "{{.State.ExitCode}}", "life"])).trim(), "137");
      // remove with volumes: an anonymous volume goes with it
      await d.cli(["run", "-d", "--name", "vol", "-v", "/data", TEST_IMAGE, "sleep", "1000"]);
      const vol = (await d.cli(["inspect", "-f", "{{(index .Mounts 0).Name}}", "vol"])).trim();
      const refused = await rsm.callError("docker_container_remove", { ...h, container: "vol" });
      assert.match(refused, /running|stop/i);
      assert.equal(
        await rsm.call("docker_container_remove", {
          ...h,
          container: "vol",
          force: true,
          remove_volumes: true,
        }),
        "removed vol",
      );
      assert.equal((await d.cli(["ps", "-aq", "-f", "name=^vol$"])).trim(), "");
      assert.doesNotMatch(await d.cli(["volume", "ls", "-q"]), new RegExp(vol));
      assert.equal(
        await rsm.call("docker_container_remove", { ...h, container: "life" }),
        "removed life",
      );
    },
  );

  await t.step(
    "docker_container_logs interleaves stdout and stderr in write order; tail, since, timestamps work",
    async () => {
      await d.cli([
        "run",
        "-d",
        "--name",
        "talker",
        TEST_IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo out$i; sleep 0.2; echo err$i >&2; sleep 0.2; done; sleep 1000",
      ]);
      await waitFor(
        "logs",
        async () => (await d.cli(["logs", "talker"], { ok: false })).includes("err5"),
      );
      const logs = async (args: Record<string, unknown>) =>
        (await rsm.callJson("docker_container_logs", { ...h, ...args })).logs as string;
      const text = await logs({ container: "talker" });
      assert.equal(
        text.trim().split("\n").join(" "),
        "out1 err1 out2 err2 out3 err3 out4 err4 out5 err5",
      );
      const tail = await logs({
        container: "talker",
        tail: 2,
      });
      assert.equal(tail.trim().split("\n").join(" "), "out5 err5");
      const stamped = await logs({
        container: "talker",
        tail: 1,
        timestamps: true,
      });
      assert.match(stamped.trim(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z err5$/);
      const onlyErr = await logs({
        container: "talker",
        stdout: false,
      });
      assert.equal(onlyErr.trim().split("\n").join(" "), "err1 err2 err3 err4 err5");
      const future = await rsm.callJson("docker_container_logs", {
        ...h,
        container: "talker",
        since: "2099-01-01T00:00:00Z",
      });
      assert.deepEqual(future, { lines: 0, logs: "" });
      const recent = await logs({
        container: "talker",
        since: "10m",
      });
      assert.match(recent, /out1/);
      const err = await rsm.callError("docker_container_logs", {
        ...h,
        container: "talker",
        since: "yesterday-ish",
      });
      assert.match(err, /since|time/i);
    },
  );

  await t.step(
    "docker_container_logs of a container that printed 10 MiB is bounded",
    async () => {
      await d.cli([
        "run",
        "--name",
        "loud",
        TEST_IMAGE,
        "sh",
        "-c",
        "yes $(printf '%01023d' 7) | head -c 10485760; echo; echo done >&2",
      ]);
      const text = await rsm.call("docker_container_logs", {
        ...h,
        container: "loud",
        tail: "all",
      });
      const bytes = new TextEncoder().encode(text).length;
      assert.ok(bytes <= 32 * 1024, `result was ${bytes} bytes`);
      const r = JSON.parse(text);
      assert.equal(r.truncated, true);
      assert.equal(r.total_bytes, 10485760 + 1 + 5, "every byte counted, stdout and stderr");
      assert.match(r.logs, new RegExp(`bytes omitted; output_read output_id=${r.output_id}`));
      // the stored copy holds every line, stderr's "done" too
      const done = await rsm.callJson("output_read", { output_id: r.output_id, grep: "^done$" });
      assert.equal(done.matches, 1);
    },
  );

  await t.step(
    "docker_exec passes argv, env, working_dir, user and stdin, and returns the exit code",
    async () => {
      const r = await rsm.callJson("docker_exec", {
        ...h,
        container: "lister",
        cmd: ["sh", "-c", 'echo "$FOO|$(pwd)|$(id -u)"; cat; echo oops >&2; exit 7', "ignored"],
        env: { FOO: "b a r" },
        working_dir: "/tmp",
        user: "65534",
        stdin: "from stdin\n",
      });
      assert.equal(r.exit_code, 7);
      assert.equal(r.stdout, "b a r|/tmp|65534\nfrom stdin\n");
      assert.equal(r.stderr, "oops\n");
      assert.equal(r.timed_out, false);
      assert.equal(r.truncated, false);
      const argv = await rsm.callJson("docker_exec", {
        ...h,
        container: "lister",
        cmd: ["echo", "a  b", "$HOME"],
      });
      assert.equal(argv.stdout, "a  b $HOME\n");
      assert.equal(argv.exit_code, 0);
    },
  );

  await t.step(
    "docker_exec timeout_ms on sleep 300 returns timed_out and docker top shows no sleep 300",
    async () => {
      const t0 = Date.now();
      const r = await rsm.callJson("docker_exec", {
        ...h,
        container: "lister",
        cmd: ["sh", "-c", "echo started; sleep 300; echo never"],
        timeout_ms: 1500,
      });
      assert.equal(r.timed_out, true);
      assert.equal(r.stdout, "started\n");
      assert.ok(Date.now() - t0 < 15_000);
      await waitFor(
        "sleep 300 to be gone",
        async () => !(await d.cli(["top", "lister"])).includes("sleep 300"),
        10_000,
      );
      const direct = await rsm.callJson("docker_exec", {
        ...h,
        container: "lister",
        cmd: ["sleep", "300"],
        timeout_ms: 1000,
      });
      assert.equal(direct.timed_out, true);
      await waitFor(
        "sleep 300 to be gone",
        async () => !(await d.cli(["top", "lister"])).includes("sleep 300"),
        10_000,
      );
    },
  );

  await t.step(
    "a long docker_exec sends progress notifications with its latest output line",
    async () => {
      const seen: { progress: number; message?: string }[] = [];
      const r = await rsm.callJson("docker_exec", {
        host_id: "local",
        container: "lister",
        cmd: ["sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 0.6; done"],
      }, { onprogress: (p) => seen.push(p) });
      assert.equal(r.stdout, "line1\nline2\nline3\nline4\n");
      assert.ok(seen.length >= 2, JSON.stringify(seen));
      assert.ok(seen.every((p) => /^line\d$/.test(p.message ?? "")), JSON.stringify(seen));
    },
  );

  await t.step("cancelling a docker_exec call from the client stops the command", async () => {
    const ac = new AbortController();
    const call = rsm.callRaw("docker_exec", {
      host_id: "local",
      container: "lister",
      cmd: ["sh", "-c", "sleep 301; echo never"],
      timeout_ms: 600_000,
    }, { signal: ac.signal }).catch((err) => err);
    await waitFor(
      "sleep 301 to run",
      async () => (await d.cli(["top", "lister"])).includes("sleep 301"),
    );
    ac.abort();
    await call;
    await waitFor(
      "sleep 301 to be gone after cancel",
      async () => !(await d.cli(["top", "lister"])).includes("sleep 301"),
      15_000,
    );
  });

  await t.step(
    "docker_exec output beyond the cap is cut head+tail and marked truncated",
    async () => {
      const r = await rsm.callJson("docker_exec", {
        ...h,
        container: "lister",
        cmd: ["sh", "-c", "echo FIRST; head -c 3000000 /dev/zero | tr '\\0' y; echo; echo LAST"],
      });
      assert.equal(r.truncated, true);
      assert.ok(r.stdout.startsWith("FIRST\n"));
      assert.ok(r.stdout.endsWith("LAST\n"));
      assert.match(r.stdout, /bytes omitted/);
    },
  );

  await t.step(
    "docker_run sets env, labels, volumes, ports (IPv4 and IPv6 host IP), restart policy and limits",
    async () => {
      const dir = await Deno.makeTempDir();
      await Deno.writeTextFile(`${dir}/hello.txt`, "from host\n");
      const r = await rsm.callJson("docker_run", {
        ...h,
        spec: {
          image: TEST_IMAGE,
          name: "web",
          cmd: ["httpd", "-f", "-p", "80", "-h", "/srv"],
          env: { GREETING: "hi there" },
          labels: { "rsm.test": "yes" },
          volumes: [`${dir}:/srv:ro`],
          ports: ["127.0.0.1:0:80", "[::1]:0:80/tcp"],
          restart_policy: "on-failure:3",
          memory: "64m",
          cpus: 0.5,
          hostname: "webhost",
        },
      });
      assert.match(r.id, /^[0-9a-f]{12}$/);
      const ins = JSON.parse(await d.cli(["inspect", "web"]))[0];
      assert.ok(ins.Config.Env.includes("GREETING=hi there"));
      assert.equal(ins.Config.Labels["rsm.test"], "yes");
      assert.equal(ins.Config.Hostname, "webhost");
      assert.equal(ins.HostConfig.Memory, 64 * 1024 * 1024);
      assert.equal(ins.HostConfig.NanoCpus, 500_000_000);
      assert.deepEqual(ins.HostConfig.RestartPolicy, {
        Name: "on-failure",
        MaximumRetryCount: 3,
      });
      const bindings = ins.NetworkSettings.Ports["80/tcp"] as {
        HostIp: string;
        HostPort: string;
      }[];
      const v4 = bindings.find((b) => b.HostIp === "127.0.0.1");
      const v6 = bindings.find((b) => b.HostIp === "::1");
      assert.ok(v4 && v6, JSON.stringify(bindings));
      const body = await waitFor("httpd to answer", async () => {
        const res = await fetch(`http://127.0.0.1:${v4.HostPort}/hello.txt`, {
          signal: AbortSignal.timeout(3000),
        });
        return res.ok ? await res.text() : null;
      });
      assert.equal(body, "from host\n");
      // Podman's CNI port mapping binds [::1] but cannot forward it to an IPv4-only container
      if (!podman) {
        const body6 = await waitFor("httpd on ::1", async () => {
          const res = await fetch(`http://[::1]:${v6.HostPort}/hello.txt`, {
            signal: AbortSignal.timeout(3000),
          });
          return res.ok ? await res.text() : null;
        });
        assert.equal(body6, "from host\n");
      }
      const rows = await rsm.callJson("docker_containers", { ...h, filters: { name: ["web"] } });
      assert.match(rows[0].ports, /127\.0\.0\.1:\d+->80\/tcp/);
      await Deno.remove(dir, { recursive: true });
    },
  );

  await t.step(
    "docker_run wait: true returns exit code and logs; auto_remove removes it",
    async () => {
      const r = await rsm.callJson("docker_run", {
        ...h,
        spec: {
          image: TEST_IMAGE,
          name: "once",
          cmd: ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
          auto_remove: true,
          wait: true,
        },
      });
      assert.equal(r.exit_code, 3);
      assert.match(r.logs, /to-out/);
      assert.match(r.logs, /to-err/);
      await waitFor(
        "auto-removed",
        async () => (await d.cli(["ps", "-aq", "-f", "name=^once$"])).trim() === "",
      );
    },
  );

  await t.step("docker_run with a bad image name is a clear error", async () => {
    const bad = await rsm.callError("docker_run", {
      ...h,
      spec: { image: "Not A Valid Name!!" },
    });
    assert.match(bad, /Cannot .*Not A Valid Name!!/);
    assert.match(bad, /invalid reference format|not valid|invalid/i);
    const missing = await rsm.callError("docker_run", {
      ...h,
      spec: { image: "rsm-no-such-image:never", pull_if_missing: false },
    });
    assert.match(missing, /not on this engine/);
    const ports = await rsm.callError("docker_run", {
      ...h,
      spec: { image: TEST_IMAGE, ports: ["eighty"] },
    });
    assert.match(ports, /port mapping "eighty"/);
  });

  await t.step(
    "docker_run returns state, bound ports and first log lines; a running container needs force",
    async () => {
      const r = await rsm.callJson("docker_run", {
        ...h,
        spec: {
          image: TEST_IMAGE,
          name: "greeter",
          cmd: ["sh", "-c", "echo hello from greeter; echo warming up >&2; sleep 300"],
          ports: ["127.0.0.1:0:80"],
        },
      });
      assert.equal(r.state, "running");
      assert.equal(r.exit_code, undefined);
      assert.equal(r.ports.length, 1);
      assert.match(r.ports[0], /^127\.0\.0\.1:\d+->80\/tcp$/);
      assert.notEqual(r.ports[0], "127.0.0.1:0->80/tcp", "the port as bound, not as asked");
      assert.match(r.logs, /hello from greeter/);
      assert.match(r.logs, /warming up/);
      const quick = await rsm.callJson("docker_run", {
        ...h,
        spec: { image: TEST_IMAGE, name: "quick", cmd: ["sh", "-c", "echo bye; exit 4"] },
      });
      assert.match(quick.state, /^(exited|stopped)$/, "the engine's word (Podman: stopped)");
      assert.equal(quick.exit_code, 4);
      assert.equal(quick.logs, "bye\n");
      const err = await rsm.callError("docker_container_remove", { ...h, container: "greeter" });
      assert.match(err, /running/i, "the engine's own words are kept");
      assert.match(err, /pass force: true/);
      await rsm.call("docker_container_remove", { ...h, container: "greeter", force: true });
      await rsm.call("docker_container_remove", { ...h, container: "quick" });
    },
  );

  await t.step("docker_upload and docker_download with verify: true compare SHA-256", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const bytes = new Uint8Array(300_000).map((_, i) => (i * 7919 + (i >> 9)) % 251);
      await Deno.writeFile(`${dir}/blob.bin`, bytes);
      const want = Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
      const up = await rsm.callJson("docker_upload", {
        ...h,
        container: "lister",
        local_path: `${dir}/blob.bin`,
        remote_path: "/tmp/blob.bin",
        verify: true,
      });
      assert.equal(up.verified, true);
      assert.equal(up.sha256, want);
      const down = await rsm.callJson("docker_download", {
        ...h,
        container: "lister",
        remote_path: "/tmp/blob.bin",
        local_path: `${dir}/back.bin`,
        verify: true,
      });
      assert.equal(down.verified, true);
      assert.equal(down.sha256, want);
      const refused = await rsm.callError("docker_upload", {
        ...h,
        container: "lister",
        local_path: dir,
        remote_path: "/tmp/d",
        verify: true,
      });
      assert.match(refused, /directory/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("docker_exec and docker_run are written to the audit log", async () => {
    const audit = await Deno.readTextFile(`${rsm.tmp.rsmDir}/audit.log`);
    assert.match(audit, /"tool":"docker_exec"/);
    assert.match(audit, /"tool":"docker_run"/);
    assert.match(audit, /"tool":"docker_container_remove"/);
  });
}
