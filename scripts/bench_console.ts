/**
 * The web console's benchmark rows: the overview's server time with many things to show, and
 * exec latency with a console open and idle against none (README, "The console").
 */
import { readHandle } from "../tests/support/mcp.ts";
import { consoleSession } from "../tests/support/console.ts";
import { fmtLatency, fmtMs, latencyStats, percentile, type Row } from "./bench_report.ts";
import { type Ctx, timeEach } from "./bench_rows.ts";
import { cpuMs, daemonPid, newRsm, rsmSpec } from "./bench_world.ts";

/** CPU ms per second the daemon spends over `ms` of idleness. */
async function idleCpu(pid: number, ms: number): Promise<number> {
  const a = await cpuMs(pid);
  await new Promise((r) => setTimeout(r, ms));
  return ((await cpuMs(pid)) - a) / (ms / 1000);
}

/** Overview page render time (Server-Timing) with N sessions, N shells, N/2 forwards. */
export async function consoleOverviewRow(c: Ctx): Promise<Row> {
  const { w } = c;
  const n = w.quick ? 20 : 100;
  const rsm = await newRsm(w);
  try {
    await Promise.all(
      Array.from(
        { length: n },
        (_, i) => rsm.call("ssh_connect", { id: `s${i}`, spec: rsmSpec(w, w.loopback) }),
      ),
    );
    for (let b = 0; b < n; b += 25) {
      await Promise.all(
        Array.from(
          { length: Math.min(25, n - b) },
          (_, k) => rsm.call("ssh_shell_open", { session_id: `s${b + k}`, shell_id: "sh" }),
        ),
      );
    }
    await Promise.all(Array.from({ length: n / 2 }, (_, i) =>
      rsm.call("ssh_forward_local", {
        session_id: `s${i}`,
        forward_id: "f",
        bind_port: 0,
        remote_host: "127.0.0.1",
        remote_port: w.loopback.sourcePort,
      })));
    const web = await consoleSession((await readHandle(rsm.env))!);
    const server: number[] = [];
    let size = 0;
    const wall = await timeEach(w.quick ? 10 : 30, 3, async () => {
      const r = await web.fetch("/web/console");
      const body = await r.text();
      if (r.status !== 200 || !body.includes(`s${n - 1}`)) {
        throw new Error(`overview answered ${r.status} without every session`);
      }
      size = body.length;
      const dur = /render;dur=([\d.]+)/.exec(r.headers.get("server-timing") ?? "")?.[1];
      server.push(Number(dur));
    });
    const p50 = percentile(server, 50);
    return {
      id: "console_overview",
      name: `console overview, ${n} sessions + ${n} shells + ${n / 2} forwards`,
      status: "ok",
      rsm: `server p50 ${fmtMs(p50)} · p95 ${fmtMs(percentile(server, 95))} · page ${
        (size / 1024).toFixed(0)
      } KiB · GET p50 ${fmtMs(percentile(wall, 50))}`,
      baseline: "—",
      target: "≤ 300 ms",
      met: p50 <= 300,
      values: { server_p50_ms: p50, wall_p50_ms: percentile(wall, 50), page_bytes: size },
    };
  } finally {
    await rsm.dispose();
  }
}

/** `ssh_exec true` latency with no console, then with an overview and a shell view open. */
export async function consoleIdleRow(c: Ctx): Promise<Row> {
  const { w } = c;
  const n = w.quick ? 50 : 200;
  const { rsm, session } = await c.main();
  const sid = await session(w.loopback);
  const exec = async () => {
    const r = await rsm.callJson("ssh_exec", { session_id: sid, command: "true" });
    if (r.exit_code !== 0) throw new Error(`ssh_exec true gave ${JSON.stringify(r)}`);
  };
  await rsm.call("ssh_shell_open", { session_id: sid, shell_id: "watched" });
  const web = await consoleSession((await readHandle(rsm.env))!);
  const streams: AbortController[] = [];
  const openConsole = async () => {
    for (
      const path of [
        "/web/console/events",
        `/web/console/shell/stream?kind=ssh&owner=${sid}&id=watched`,
      ]
    ) {
      const ac = new AbortController();
      streams.push(ac);
      const r = await web.fetch(path, { signal: ac.signal });
      if (r.status !== 200) throw new Error(`${path} answered ${r.status}`);
      r.body!.pipeTo(new WritableStream(), { signal: ac.signal }).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 1500)); // let it settle into its idle ticks
  };
  const closeConsole = () => {
    for (const ac of streams.splice(0)) ac.abort();
  };
  try {
    // alternate blocks (none, open, none, open…) so a busy machine's drift hits both alike
    const noneMs: number[] = [];
    const openMs: number[] = [];
    await timeEach(0, 10, exec);
    for (let round = 0; round < 4; round++) {
      noneMs.push(...await timeEach(n / 4, 2, exec));
      await openConsole();
      openMs.push(...await timeEach(n / 4, 2, exec));
      closeConsole();
    }
    const none = latencyStats(noneMs);
    const open = latencyStats(openMs);
    // the daemon's own CPU while idle: a figure the machine's load does not blur
    const pid = await daemonPid(rsm);
    const cpuNone = await idleCpu(pid, 10_000);
    await openConsole();
    const cpuOpen = await idleCpu(pid, 10_000);
    closeConsole();
    const ratio = open.p50 / none.p50;
    return {
      id: "console_idle",
      name: `exec latency with a console open and idle ×${n}`,
      status: "ok",
      rsm: `open: ${fmtLatency(open)}`,
      baseline: `none: ${fmtLatency(none)}`,
      ratio,
      target: "no measurable difference (p50 within 10 %)",
      met: ratio <= 1.1,
      better: "lower",
      ratioTarget: 1.1,
      values: {
        open_p50_ms: open.p50,
        none_p50_ms: none.p50,
        open_p95_ms: open.p95,
        idle_cpu_ms_per_s_open: cpuOpen,
        idle_cpu_ms_per_s_none: cpuNone,
      },
      note: "baseline column: the same calls with no console open, in alternating blocks; " +
        `daemon CPU while idle: ${cpuOpen.toFixed(1)} ms/s with the console open, ` +
        `${cpuNone.toFixed(1)} ms/s without`,
    };
  } finally {
    closeConsole();
    await rsm.call("ssh_shell_close", { session_id: sid, shell_id: "watched" }).catch(() => {});
  }
}
