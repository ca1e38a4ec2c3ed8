/**
 * `deno task bench`: rsm against OpenSSH on the same work in the same run (see README
 * "Benchmark"). rsm is driven the way a real client drives it: SDK `Client` → `rsm stdio` →
 * daemon. Needs root (test user, netns, tc, dockerd).
 *
 * ```
 * deno task bench                     # full run (< 10 min), markdown table on stdout
 * deno task bench --quick             # smaller sizes (< 2 min); what CI runs
 * deno task bench --json              # the report as JSON on stdout instead of the table
 * deno task bench --svg docs/bench.svg  # also write the ratio bar chart
 * deno task bench --only exec_latency,forward_loopback  # some rows
 * deno task bench --cipher chacha20-poly1305@openssh.com  # the one cipher sshd offers
 *                                     # (default: the first cipher rsm offers)
 * ```
 *
 * Exit status: 1 when a row could not be measured (error) or its numbers are not sane (NaN,
 * zero throughput…); rows that cannot run here (tool not served yet, no Docker) are `n/a`
 * and fail only under RSM_TEST_REQUIRE_ALL=1. A missed target never changes the exit status.
 */
import { parseArgs } from "node:util";
import { insane, type Machine, markdown, type Report, type Row, svgChart } from "./bench_report.ts";
import {
  concurrentExec,
  type Ctx,
  dockerExecRow,
  execLatency,
  mainClient,
  scaleRows,
  shellRoundTrip,
  sleepExecRow,
  startRows,
  toolsListRow,
  toonRows,
} from "./bench_rows.ts";
import {
  cipherRowId,
  forwardCipherRows,
  forwardRow,
  ROW_CIPHERS,
  rsmCiphers,
  sftpRows,
} from "./bench_transfer.ts";
import { cryptoPath, installCiphers } from "../lib/ssh/crypto/mod.ts";
import { consoleIdleRow, consoleOverviewRow } from "./bench_console.ts";
import { fleetExecRow } from "./bench_fleet.ts";
import { Cleanup, createWorld, log, opensshBase } from "./bench_world.ts";
import { run } from "../tests/support/env.ts";

/** A group of rows measured together. */
export interface Group {
  ids: string[];
  names: string[];
  run(c: Ctx): Promise<Row | Row[]>;
  /** Measured in full runs only (`--quick` leaves it out). */
  fullOnly?: boolean;
}

/** Every row, in table order. */
export const GROUPS: Group[] = [
  { ids: ["exec_latency"], names: ["exec latency, `true`"], run: execLatency },
  { ids: ["shell_round_trip"], names: ["shell round trip, `echo x`"], run: shellRoundTrip },
  {
    ids: ["forward_loopback"],
    names: ["-L, loopback"],
    run: (c) => forwardRow(c, "loopback"),
  },
  { ids: ["forward_link"], names: ["-L, 1 Gbit/s link"], run: (c) => forwardRow(c, "link") },
  {
    ids: ROW_CIPHERS.map(cipherRowId),
    names: ROW_CIPHERS.map((c) => `-L, loopback, ${c}`),
    run: forwardCipherRows,
    fullOnly: true, // six sshds, sessions and ssh -L: too slow for CI's quick run
  },
  {
    ids: ["sftp_upload_loopback", "sftp_download_loopback"],
    names: ["SFTP upload, loopback", "SFTP download, loopback"],
    run: (c) => sftpRows(c, "loopback"),
  },
  {
    ids: ["sftp_upload_link", "sftp_download_link"],
    names: ["SFTP upload, 1 Gbit/s link", "SFTP download, 1 Gbit/s link"],
    run: (c) => sftpRows(c, "link"),
  },
  {
    ids: ["sessions_100", "shells_100"],
    names: ["100 sessions", "100 PTY shells"],
    run: scaleRows,
  },
  { ids: ["concurrent_exec"], names: ["128 concurrent ssh_exec"], run: concurrentExec },
  { ids: ["fleet_exec"], names: ["`true` on 100 sessions, 16 at a time"], run: fleetExecRow },
  { ids: ["sleep_exec"], names: ["32 concurrent `sleep 1` execs"], run: sleepExecRow },
  { ids: ["cold_start", "warm_start"], names: ["cold start", "warm start"], run: startRows },
  { ids: ["tools_list"], names: ["tools/list size"], run: toolsListRow },
  {
    ids: ["toon_ssh_list", "toon_docker_containers"],
    names: ["TOON vs JSON, ssh_list", "TOON vs JSON, docker_containers"],
    run: toonRows,
  },
  { ids: ["docker_exec"], names: ["docker_exec vs docker exec"], run: dockerExecRow },
  { ids: ["console_overview"], names: ["console overview"], run: consoleOverviewRow },
  { ids: ["console_idle"], names: ["exec latency, console idle"], run: consoleIdleRow },
];

/** Options of {@link runBench}. */
export interface BenchOptions {
  quick: boolean;
  cipher: string;
  /** Row ids to run (default all). */
  only?: string[] | undefined;
}

async function machine(): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const ssh = await run("ssh", ["-V"]).catch(() => null);
  const docker = await run("docker", ["--version"]).catch(() => null);
  return {
    cpu: cpuinfo.match(/model name\s*:\s*(.*)/)?.[1]?.trim() ?? "unknown CPU",
    cores: navigator.hardwareConcurrency,
    memory_gib: Math.round(Number(meminfo.match(/MemTotal:\s+(\d+)/)?.[1] ?? 0) / 1048576),
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    openssh: (ssh?.stderr ?? "").split(",")[0]?.trim() || "OpenSSH ?",
    docker: docker?.code === 0 ? docker.stdout.match(/version ([^,\s]+)/)?.[1] : undefined,
    load_before: (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" "),
  };
}

/** The cipher rsm offers first (lib/ssh/dial.ts, on the crypto path this machine gets). */
export async function rsmFirstCipher(): Promise<string> {
  const [first] = await rsmCiphers();
  if (!first) throw new Error("rsm offers no cipher");
  return first;
}

/** The cipher OpenSSH negotiates with the loopback sshd (from `ssh -v`). */
async function negotiatedCipher(c: Ctx): Promise<string> {
  const t = c.w.loopback;
  const r = await run("ssh", [
    ...opensshBase(c.w).map((a) => a === "LogLevel=ERROR" ? "LogLevel=DEBUG1" : a),
    "-p",
    String(t.port),
    `${c.w.user.name}@${t.host}`,
    "true",
  ]);
  return r.stderr.match(/kex: server->client cipher: (\S+)/)?.[1] ?? "?";
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Runs the benchmark and returns the report; everything it started is stopped before it
 * returns or throws.
 */
export async function runBench(options: BenchOptions, cleanup = new Cleanup()): Promise<Report> {
  const started = Date.now();
  // quick: 30 s more than before the 32 × sleep 1 and fleet rows (the quick test allows 180 s)
  const budget = options.quick ? 140_000 : 570_000;
  const groupLimit = options.quick ? 60_000 : 240_000;
  const rows: Row[] = [];
  const m = await machine();
  let cipher = options.cipher;
  await installCiphers();
  const path = cryptoPath()!;
  // The daemon chooses the same way (same machine, same REMOTE_SHELL_MCP_CRYPTO).
  const crypto = `${path.path} (${path.detail})`;
  log(`crypto path: ${crypto}`);
  try {
    const w = await createWorld(options, cleanup);
    const c: Ctx = { w, main: mainClient(w) };
    const negotiated = await negotiatedCipher(c);
    cipher = `${options.cipher} (the only one sshd offers; OpenSSH negotiated ${negotiated})`;
    for (const g of GROUPS) {
      if (options.only && !g.ids.some((id) => options.only!.includes(id))) continue;
      if (g.fullOnly && options.quick) continue;
      if (cleanup.closed) break; // interrupted
      const left = budget - (Date.now() - started);
      if (left < 5_000) {
        g.ids.forEach((id, i) =>
          rows.push({
            id,
            name: g.names[i] ?? id,
            status: "error",
            rsm: "",
            baseline: "—",
            target: "—",
            values: {},
            note: "not run: the run's time budget was used up",
          })
        );
        continue;
      }
      log(`running ${g.ids.join(", ")}`);
      const t0 = Date.now();
      try {
        const out = await withTimeout(g.run(c), Math.min(groupLimit, left), g.ids.join(", "));
        for (const r of Array.isArray(out) ? out : [out]) {
          rows.push(r);
          log(`${r.id}: ${r.status} ${r.rsm} | ${r.baseline}${r.note ? ` (${r.note})` : ""}`);
        }
      } catch (err) {
        log(`${g.ids.join(", ")} failed: ${err instanceof Error ? err.stack : err}`);
        g.ids.forEach((id, i) =>
          rows.push({
            id,
            name: g.names[i] ?? id,
            status: "error",
            rsm: "",
            baseline: "—",
            target: "—",
            values: {},
            note: String(err instanceof Error ? err.message : err).slice(0, 300),
          })
        );
      }
      log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    log("cleaning up");
    await cleanup.run();
  }
  return {
    mode: options.quick ? "quick" : "full",
    started_at: new Date(started).toISOString(),
    duration_s: (Date.now() - started) / 1000,
    cipher,
    crypto,
    machine: m,
    rows,
  };
}

/** Why the report should fail the run (errors, insane numbers, n/a under REQUIRE_ALL). */
export function failures(report: Report): string[] {
  const out: string[] = [];
  const requireAll = Deno.env.get("RSM_TEST_REQUIRE_ALL") === "1";
  for (const r of report.rows) {
    if (r.status === "error") out.push(`${r.id}: not measured: ${r.note}`);
    else if (r.status === "na" && requireAll) out.push(`${r.id}: n/a (${r.note})`);
    const bad = insane(r);
    if (bad) out.push(`${r.id}: ${bad}`);
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      svg: { type: "string" },
      only: { type: "string" },
      cipher: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task bench [--quick] [--json] [--svg PATH] [--only ID,…] [--cipher NAME]\n" +
        `rows: ${GROUPS.flatMap((g) => g.ids).join(", ")}`,
    );
    Deno.exit(0);
  }
  if (Deno.uid() !== 0) {
    console.error("deno task bench needs root (test user, sshd, netns, tc, dockerd)");
    Deno.exit(1);
  }
  const cleanup = new Cleanup();
  const onSignal = async () => {
    log("interrupted; cleaning up");
    await cleanup.run();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const report = await runBench({
    quick: values.quick,
    cipher: values.cipher ?? await rsmFirstCipher(),
    only: values.only?.split(",").map((s) => s.trim()).filter(Boolean),
  }, cleanup);
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  if (values.svg) await Deno.writeTextFile(values.svg, svgChart(report));
  console.log(values.json ? JSON.stringify(report, null, 2) : markdown(report));
  const bad = failures(report);
  if (bad.length) {
    console.error(`bench: ${bad.length} row(s) failed:\n  ${bad.join("\n  ")}`);
    Deno.exit(1);
  }
}
