/**
 * Latency, scale, start-up and context-size rows of the benchmark. Every rsm figure goes
 * through the real client path: SDK `Client` → `rsm stdio` → daemon.
 */
import { join } from "node:path";
import { tempEnv } from "../tests/support/env.ts";
import { type RsmClient, startRsm, stopDaemon } from "../tests/support/mcp.ts";
import { rawLauncher } from "../tests/support/raw_stdio.ts";
import { fmtBytes, fmtLatency, fmtMs, latencyStats, percentile, type Row } from "./bench_report.ts";
import { rawSsh2, rawThroughput } from "./bench_raw.ts";
import {
  cpuMs,
  daemonPid,
  dockerEngine,
  log,
  loopbackWith,
  newRsm,
  opensshBase,
  rsmSpec,
  rssMb,
  type Target,
  type World,
} from "./bench_world.ts";

/** The main rsm client (JSON results) with session `bench` on the loopback sshd. */
export interface Main {
  rsm: RsmClient;
  tools: Set<string>;
  /** Connects (once) a session to `t` and returns its id. */
  session(t: Target): Promise<string>;
}

/** Row context: the world plus the lazily started main client. */
export interface Ctx {
  w: World;
  main(): Promise<Main>;
}

/** Starts the main client lazily (one daemon shared by the latency and transfer rows). */
export function mainClient(w: World): () => Promise<Main> {
  let p: Promise<Main> | undefined;
  return () =>
    p ??= (async () => {
      const rsm = await newRsm(w);
      const listed = (await rsm.client.listTools()).tools as { name: string }[];
      const tools = new Set(listed.map((t) => t.name));
      const ids = new Map<string, Promise<string>>();
      const session = (t: Target) => {
        let id = ids.get(t.address);
        if (!id) {
          const name = `bench${ids.size}`;
          id = rsm.call("ssh_connect", { id: name, spec: rsmSpec(w, t) }).then(() => name);
          ids.set(t.address, id);
        }
        return id;
      };
      await session(w.loopback);
      return { rsm, tools, session };
    })();
}

/** Times `fn` `n` times sequentially (after `warm` unmeasured runs); milliseconds. */
export async function timeEach(n: number, warm: number, fn: () => Promise<void>) {
  for (let i = 0; i < warm; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** Runs a command to completion; throws unless it exits 0. */
async function spawnOk(cmd: string, args: string[], env?: Record<string, string>) {
  const out = await new Deno.Command(cmd, {
    args,
    ...(env ? { env } : {}),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(`${cmd} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** exec latency: `ssh_exec true` vs `ssh -S ctl host true` with a ControlMaster up. */
export async function execLatency(c: Ctx): Promise<Row> {
  const { w } = c;
  const n = w.quick ? 50 : 300;
  const { rsm, session } = await c.main();
  const sid = await session(w.loopback);
  let lostExit = 0;
  const pid = await daemonPid(rsm);
  let cpu0 = 0;
  const rsmMs = await timeEach(n, 10, async () => {
    cpu0 ||= await cpuMs(pid); // after the warm-up calls
    const r = await rsm.callJson("ssh_exec", { session_id: sid, command: "true" });
    if (r.exit_code === null && !r.signal && !r.timed_out) lostExit++;
    else if (r.exit_code !== 0) throw new Error(`ssh_exec true gave ${JSON.stringify(r)}`);
  });
  // CPU the daemon spent per call: a figure the machine's load does not blur much
  const cpuPerCall = ((await cpuMs(pid)) - cpu0) / n;
  // the MCP path alone (SDK client → rsm stdio → daemon → back), for the profile notes
  const floor = latencyStats(
    await timeEach(Math.min(n, 100), 5, async () => {
      await rsm.call("status");
    }),
  );
  // the server's part: a bare ssh2 client running the same `true` on the same sshd
  const raw = await (async () => {
    await using r = await rawSsh2(w);
    return latencyStats(await timeEach(Math.min(n, 100), 5, () => r.exec("true")));
  })();
  const ctl = join(w.dir, "ctl");
  const t = w.loopback;
  const dest = `${w.user.name}@${t.host}`;
  const master = new Deno.Command("ssh", {
    args: [...opensshBase(w), "-p", String(t.port), "-M", "-S", ctl, "-N", dest],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const deadline = Date.now() + 15_000;
    while (!(await Deno.stat(ctl).then((s) => s.isSocket, () => false))) {
      if (Date.now() > deadline) throw new Error("the ControlMaster did not come up");
      await new Promise((r) => setTimeout(r, 20));
    }
    const args = [...opensshBase(w), "-S", ctl, "-p", String(t.port), dest, "true"];
    const sshMs = await timeEach(n, 5, () => spawnOk("ssh", args));
    const a = latencyStats(rsmMs), b = latencyStats(sshMs);
    const ratio = a.p50 / b.p50;
    return {
      id: "exec_latency",
      name: `exec latency, \`true\` ×${n}`,
      status: "ok",
      rsm: fmtLatency(a),
      baseline: fmtLatency(b),
      ratio,
      target: "p50 ≤ 0.5× OpenSSH",
      met: ratio <= 0.5,
      better: "lower",
      ratioTarget: 0.5,
      values: {
        rsm_p50_ms: a.p50,
        rsm_p95_ms: a.p95,
        rsm_p99_ms: a.p99,
        ssh_p50_ms: b.p50,
        ssh_p95_ms: b.p95,
        ssh_p99_ms: b.p99,
        lost_exit_status: lostExit,
        mcp_floor_p50_ms: floor.p50,
        raw_ssh2_p50_ms: raw.p50,
        daemon_cpu_ms_per_call: cpuPerCall,
      },
      note: [
        `MCP round trip alone (\`status\`): p50 ${fmtMs(floor.p50)}`,
        `a bare ssh2 client's \`true\` on the same sshd (no MCP, no daemon): p50 ${fmtMs(raw.p50)}`,
        `daemon CPU ${cpuPerCall.toFixed(2)} ms per call`,
        lostExit ? `${lostExit} ssh_exec results had exit_code null (exit status lost)` : "",
      ].filter(Boolean).join("; "),
    };
  } finally {
    try {
      master.kill("SIGTERM");
    } catch { /* gone */ }
    await master.status;
  }
}

/** shell round trip: `ssh_shell_run echo x` in one open PTY shell. */
export async function shellRoundTrip(c: Ctx): Promise<Row> {
  const { w } = c;
  const n = w.quick ? 50 : 300;
  const { rsm, session } = await c.main();
  const sid = await session(w.loopback);
  await rsm.call("ssh_shell_open", { session_id: sid, shell_id: "rt" });
  try {
    const ms = await timeEach(n, 5, async () => {
      const r = await rsm.callJson("ssh_shell_run", {
        session_id: sid,
        shell_id: "rt",
        command: "echo x",
      });
      if (r.output.trim() !== "x" || r.exit_code !== 0) {
        throw new Error(`ssh_shell_run echo x gave ${JSON.stringify(r)}`);
      }
    });
    const s = latencyStats(ms);
    return {
      id: "shell_round_trip",
      name: `shell round trip, \`echo x\` ×${n}`,
      status: "ok",
      rsm: fmtLatency(s),
      baseline: "—",
      target: "p50 ≤ 3 ms",
      met: s.p50 <= 3,
      values: { rsm_p50_ms: s.p50, rsm_p95_ms: s.p95, rsm_p99_ms: s.p99 },
    };
  } finally {
    await rsm.call("ssh_shell_close", { session_id: sid, shell_id: "rt" }).catch(() => {});
  }
}

/** 128 concurrent `ssh_exec` × 10 rounds on one session: calls/s, p99, errors. */
export async function concurrentExec(c: Ctx): Promise<Row> {
  const { w } = c;
  const conc = w.quick ? 32 : 128;
  const rounds = w.quick ? 3 : 10;
  const { rsm, session } = await c.main();
  const sid = await session(w.loopback);
  const ms: number[] = [];
  let errors = 0;
  let lostExit = 0;
  let firstError = "";
  const pid = await daemonPid(rsm);
  const cpu0 = await cpuMs(pid);
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    await Promise.all(Array.from({ length: conc }, async (_, i) => {
      const t = performance.now();
      const res = await rsm.callRaw("ssh_exec", { session_id: sid, command: `echo ${i}` })
        .catch((e) => ({ isError: true, content: [{ type: "text", text: String(e) }] }));
      ms.push(performance.now() - t);
      if (res.isError) {
        errors++;
        firstError ||= JSON.stringify(res.content).slice(0, 200);
      } else if (
        res.content?.[0]?.type === "text" && /"exit_code": ?null/.test(res.content[0].text)
      ) {
        lostExit++;
      }
    }));
  }
  const wall = performance.now() - t0;
  const total = conc * rounds;
  const cpuPerCall = ((await cpuMs(pid)) - cpu0) / total;
  if (errors === total) throw new Error(`every call failed: ${firstError}`);
  const p99 = percentile(ms, 99);
  const rate = total / (wall / 1000);
  // what the server allows: a bare ssh2 client, 16 at a time (8 to 64 at a time reach the
  // same rate here: sshd forking each session and its shell is the limit)
  const raw = await (async () => {
    await using r = await rawSsh2(w);
    return await rawThroughput(r, (i) => `echo ${i}`, rounds, conc, 16);
  })();
  return {
    id: "concurrent_exec",
    name: `${conc} concurrent ssh_exec ×${rounds} rounds`,
    status: "ok",
    rsm: `${rate.toFixed(0)} calls/s · p50 ${fmtMs(percentile(ms, 50))} · p99 ${
      fmtMs(p99)
    } · ${errors} errors`,
    baseline: `bare ssh2: ${raw.callsPerS.toFixed(0)} calls/s · ${fmtMs(raw.roundMs)} a round`,
    target: "0 errors, p99 ≤ 1 s",
    met: errors === 0 && lostExit === 0 && p99 <= 1000,
    values: {
      calls_per_s: rate,
      rsm_p50_ms: percentile(ms, 50),
      rsm_p99_ms: p99,
      errors,
      lost_exit_status: lostExit,
      calls: total,
      daemon_cpu_ms_per_call: cpuPerCall,
      raw_ssh2_calls_per_s: raw.callsPerS,
      raw_ssh2_round_ms: raw.roundMs,
    },
    note: [
      `daemon CPU ${cpuPerCall.toFixed(2)} ms per call`,
      errors ? `first error: ${firstError}` : "",
      lostExit ? `${lostExit} results had exit_code null (exit status lost)` : "",
    ].filter(Boolean).join("; ") || undefined,
  };
}

/**
 * 32 concurrent `sleep 1` execs on one session against an sshd with the default
 * `MaxSessions 10`: the channel gate must keep ~9–10 running, so ~4 s; 0 errors.
 */
export async function sleepExecRow(c: Ctx): Promise<Row> {
  const { w } = c;
  const n = 32;
  const { rsm, session } = await c.main();
  const sid = await session(await loopbackWith(w, "MaxSessions 10"));
  let errors = 0;
  let firstError = "";
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, async () => {
    const res = await rsm.callRaw("ssh_exec", { session_id: sid, command: "sleep 1" })
      .catch((e) => ({ isError: true, content: [{ type: "text", text: String(e) }] }));
    if (res.isError || !/"exit_code": ?0/.test(res.content?.[0]?.text ?? "")) {
      errors++;
      firstError ||= JSON.stringify(res.content).slice(0, 200);
    }
  }));
  const s = (performance.now() - t0) / 1000;
  return {
    id: "sleep_exec",
    name: `${n} concurrent \`sleep 1\` execs on one session (MaxSessions 10)`,
    status: "ok",
    rsm: `${s.toFixed(2)} s · ${errors} errors`,
    baseline: "ideal ~4 s",
    target: "≤ 4.5 s, 0 errors",
    met: s <= 4.5 && errors === 0,
    values: { seconds: s, errors },
    note: errors ? `first error: ${firstError}` : undefined,
  };
}

/** 100 sessions connected concurrently (fresh daemon), then 100 PTY shells on them. */
export async function scaleRows(c: Ctx): Promise<Row[]> {
  const { w } = c;
  const n = w.quick ? 20 : 100;
  const rsm = await newRsm(w);
  try {
    await rsm.call("status");
    const pid = await daemonPid(rsm);
    const rss0 = await rssMb(pid);
    let errors = 0;
    let firstError = "";
    const t0 = performance.now();
    await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          rsm.call("ssh_connect", { id: `s${i}`, spec: rsmSpec(w, w.loopback) }).catch((e) => {
            errors++;
            firstError ||= String(e).slice(0, 200);
          }),
      ),
    );
    const connectMs = performance.now() - t0;
    if (errors === n) throw new Error(`every connect failed: ${firstError}`);
    const rss1 = await rssMb(pid);
    const sessions: Row = {
      id: "sessions_100",
      name: `${n} sessions connected concurrently`,
      status: "ok",
      rsm: `${fmtMs(connectMs)} to connect all · RSS ${rss1.toFixed(0)} MB (idle ${
        rss0.toFixed(0)
      } MB) · ${errors} errors`,
      baseline: "—",
      target: "≤ 10 s, RSS ≤ 250 MB",
      met: errors === 0 && connectMs <= 10_000 && rss1 <= 250,
      values: { connect_ms: connectMs, rss_mb: rss1, idle_rss_mb: rss0, errors },
      note: errors ? `first error: ${firstError}` : undefined,
    };
    let shellErrors = 0;
    let shellError = "";
    const t1 = performance.now();
    for (let b = 0; b < n; b += 25) {
      await Promise.all(
        Array.from(
          { length: Math.min(25, n - b) },
          (_, k) =>
            rsm.call("ssh_shell_open", { session_id: `s${b + k}`, shell_id: "sh" }).catch((e) => {
              shellErrors++;
              shellError ||= String(e).slice(0, 200);
            }),
        ),
      );
    }
    const openMs = performance.now() - t1;
    // prove the shells are live: one command in each of a few
    for (const i of [0, Math.floor(n / 2), n - 1]) {
      const r = await rsm.callJson("ssh_shell_run", {
        session_id: `s${i}`,
        shell_id: "sh",
        command: "echo alive",
      }).catch(() => null);
      if (r?.output?.trim() !== "alive") shellErrors++;
    }
    const rss2 = await rssMb(pid);
    const shells: Row = {
      id: "shells_100",
      name: `${n} open PTY shells`,
      status: shellErrors === n ? "error" : "ok",
      rsm: `RSS ${rss2.toFixed(0)} MB (${rss1.toFixed(0)} MB before the shells) · opened in ${
        fmtMs(openMs)
      } · ${shellErrors} errors`,
      baseline: "—",
      target: "RSS ≤ 300 MB",
      met: shellErrors === 0 && rss2 <= 300,
      values: { rss_mb: rss2, open_ms: openMs, errors: shellErrors },
      note: shellErrors ? `first error: ${shellError}` : undefined,
    };
    return [sessions, shells];
  } finally {
    await rsm.dispose();
  }
}

/** Cold start (no daemon) → first `status`, and warm start (daemon up) → first `status`. */
export async function startRows(c: Ctx): Promise<Row[]> {
  const { w } = c;
  const coldN = w.quick ? 2 : 5;
  const warmN = w.quick ? 3 : 10;
  const firstStatus = async (env: Record<string, string>) => {
    const t = performance.now();
    const rsm = await startRsm(env, { json: true });
    await rsm.callJson("status");
    const ms = performance.now() - t;
    await rsm.close();
    return ms;
  };
  const cold: number[] = [];
  let warmEnv: Awaited<ReturnType<typeof tempEnv>> | undefined;
  try {
    for (let i = 0; i <= coldN; i++) {
      const env = await tempEnv();
      try {
        const ms = await firstStatus(env.env);
        if (i > 0) cold.push(ms); // the first run warms Deno's module cache
      } finally {
        if (i < coldN) {
          await stopDaemon(env.env);
          await env[Symbol.asyncDispose]();
        } else warmEnv = env;
      }
    }
    const warm = await timeEach(warmN, 1, async () => {
      await firstStatus(warmEnv!.env);
    });
    const cs = latencyStats(cold), ws = latencyStats(warm);
    return [{
      id: "cold_start",
      name: `cold start (no daemon) → first status ×${coldN}`,
      status: "ok",
      rsm: `median ${fmtMs(cs.p50)} · max ${fmtMs(Math.max(...cold))}`,
      baseline: "—",
      target: "≤ 1.0 s",
      met: cs.p50 <= 1000,
      values: { median_ms: cs.p50, max_ms: Math.max(...cold) },
    }, {
      id: "warm_start",
      name: `warm start (daemon up) → first status ×${warmN}`,
      status: "ok",
      rsm: `median ${fmtMs(ws.p50)} · p95 ${fmtMs(ws.p95)}`,
      baseline: "—",
      target: "≤ 0.3 s",
      met: ws.p50 <= 300,
      values: { median_ms: ws.p50, p95_ms: ws.p95 },
    }];
  } finally {
    if (warmEnv) {
      await stopDaemon(warmEnv.env);
      await warmEnv[Symbol.asyncDispose]();
    }
  }
}

/** Bytes of the `tools/list` response line exactly as the launcher writes it. */
async function toolsListBytes(extra: Record<string, string>): Promise<number> {
  await using tmp = await tempEnv(extra);
  const raw = rawLauncher(tmp.env);
  try {
    await raw.send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "rsm-bench", version: "1" },
      },
    });
    await raw.until(1, 30_000);
    await raw.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    await raw.send({ jsonrpc: "2.0", id: 2, method: "tools/list", params: {} });
    const msg = await raw.until(2, 30_000);
    return new TextEncoder().encode(JSON.stringify(msg)).length;
  } finally {
    await raw.closeStdin().catch(() => {});
    await Promise.resolve(raw[Symbol.asyncDispose]()).catch(() => {});
    await stopDaemon(tmp.env);
  }
}

/** `tools/list` size, full and with REMOTE_SHELL_MCP_TOOLS=ssh. */
export async function toolsListRow(_c: Ctx): Promise<Row> {
  const full = await toolsListBytes({});
  const ssh = await toolsListBytes({ REMOTE_SHELL_MCP_TOOLS: "ssh" });
  return {
    id: "tools_list",
    name: "tools/list size, full and `ssh` profile",
    status: "ok",
    rsm: `full ${fmtBytes(full)} · ssh ${fmtBytes(ssh)}`,
    baseline: "—",
    target: "full ≤ 48 KB, ssh ≤ 12 KB",
    met: full <= 48_000 && ssh <= 12_000,
    values: { full_bytes: full, ssh_bytes: ssh },
  };
}

/** TOON vs JSON bytes for `ssh_list` of 20 sessions and `docker_containers` of 20. */
export async function toonRows(c: Ctx): Promise<Row[]> {
  const { w } = c;
  const docker = await dockerEngine(w);
  if (docker) {
    log("starting 20 containers for docker_containers");
    for (let b = 0; b < 20; b += 5) {
      await Promise.all([0, 1, 2, 3, 4].map((k) =>
        docker.cli([
          "run",
          "-d",
          "--name",
          `bench-c${String(b + k).padStart(2, "0")}`,
          "rsm-busybox:test",
          "sleep",
          "3600",
        ])
      ));
    }
  }
  const measure = async (json: boolean) => {
    const rsm = await newRsm(w, {}, json);
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) =>
        rsm.call("ssh_connect", {
          id: `web-${String(i + 1).padStart(2, "0")}`,
          spec: rsmSpec(w, w.loopback),
        })));
      const list = await rsm.call("ssh_list");
      let containers = 0;
      if (docker) {
        await rsm.call("docker_connect", { id: "engine", spec: { host: docker.host } });
        containers = new TextEncoder().encode(
          await rsm.call("docker_containers", { host_id: "engine" }),
        ).length;
      }
      return { list: new TextEncoder().encode(list).length, containers };
    } finally {
      await rsm.dispose();
    }
  };
  const json = await measure(true);
  const toon = await measure(false);
  const row = (id: string, name: string, t: number, j: number): Row => ({
    id,
    name,
    status: "ok",
    rsm: `TOON ${fmtBytes(t)}`,
    baseline: `JSON ${fmtBytes(j)}`,
    ratio: t / j,
    target: "TOON ≤ 0.6× JSON",
    met: t / j <= 0.6,
    better: "lower",
    ratioTarget: 0.6,
    values: { toon_bytes: t, json_bytes: j },
    note: "ratio column is TOON/JSON",
  });
  return [
    row("toon_ssh_list", "TOON vs JSON, ssh_list of 20", toon.list, json.list),
    docker
      ? row(
        "toon_docker_containers",
        "TOON vs JSON, docker_containers of 20",
        toon.containers,
        json.containers,
      )
      : naRow("toon_docker_containers", "TOON vs JSON, docker_containers of 20", "no Docker"),
  ];
}

/** `docker_exec true` vs `docker exec CONTAINER true`. */
export async function dockerExecRow(c: Ctx): Promise<Row> {
  const { w } = c;
  const name = "docker_exec latency vs `docker exec`";
  const docker = await dockerEngine(w);
  if (!docker) return naRow("docker_exec", name, "no Docker engine here");
  const n = w.quick ? 10 : 100;
  await docker.cli(["run", "-d", "--name", "bench-exec", "rsm-busybox:test", "sleep", "3600"]);
  const { rsm } = await c.main();
  await rsm.call("docker_connect", { id: "bench-engine", spec: { host: docker.host } });
  const rsmMs = await timeEach(n, 3, async () => {
    const r = await rsm.callJson("docker_exec", {
      host_id: "bench-engine",
      container: "bench-exec",
      cmd: ["true"],
    });
    if (r.exit_code !== 0) throw new Error(`docker_exec true exited ${r.exit_code}`);
  });
  const cliMs = await timeEach(
    n,
    2,
    () => spawnOk("docker", ["exec", "bench-exec", "true"], docker.env),
  );
  const a = latencyStats(rsmMs), b = latencyStats(cliMs);
  return {
    id: "docker_exec",
    name: `${name} ×${n}`,
    status: "ok",
    rsm: fmtLatency(a),
    baseline: `docker CLI: ${fmtLatency(b)}`,
    ratio: a.p50 / b.p50,
    target: "p50 ≤ 1.0× docker CLI",
    met: a.p50 / b.p50 <= 1,
    better: "lower",
    ratioTarget: 1,
    values: { rsm_p50_ms: a.p50, rsm_p95_ms: a.p95, cli_p50_ms: b.p50, cli_p95_ms: b.p95 },
  };
}

/** A row that could not run here, with the reason. */
export function naRow(id: string, name: string, reason: string): Row {
  return { id, name, status: "na", rsm: "", baseline: "—", target: "—", values: {}, note: reason };
}
