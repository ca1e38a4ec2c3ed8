/**
 * Fleet row of the benchmark: `ssh_exec_many` of `true` over 100 sessions (concurrency 16)
 * against 100 OpenSSH ControlMasters, each used by one `ssh -S ctl host true`, run 16 at a
 * time. Both sides have their connections up before the clock starts; the wall time of the
 * whole fan-out is compared (median of several rounds).
 */
import { join } from "node:path";
import { fmtMs, percentile, type Row } from "./bench_report.ts";
import type { Ctx } from "./bench_rows.ts";
import { log, newRsm, opensshBase, rsmSpec } from "./bench_world.ts";

const CONCURRENCY = 16;

async function sshTrue(args: string[]): Promise<void> {
  const out = await new Deno.Command("ssh", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`ssh failed: ${new TextDecoder().decode(out.stderr)}`);
}

async function fanOut(n: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await work(next++);
  }));
}

/** `ssh_exec_many true` over N sessions vs N ControlMaster `ssh` calls, 16 at a time. */
export async function fleetExecRow(c: Ctx): Promise<Row> {
  const { w } = c;
  const n = w.quick ? 20 : 100;
  const rounds = w.quick ? 3 : 7;
  const t = w.loopback;
  const rsm = await newRsm(w);
  const masters: Deno.ChildProcess[] = [];
  try {
    const targets = Array.from({ length: n }, (_, i) => ({ id: `f${i}`, addresses: t.address }));
    const opened = await rsm.callJson("ssh_connect_many", { spec: rsmSpec(w, t), targets });
    if (opened.failed.length) {
      throw new Error(
        `ssh_connect_many: ${opened.failed.length} failed: ${opened.failed[0].error}`,
      );
    }
    const run = async () => {
      const r = await rsm.callJson("ssh_exec_many", {
        session_ids: "f*",
        command: "true",
        concurrency: CONCURRENCY,
      });
      if (r.groups.length !== 1 || r.groups[0].sessions.length !== n || r.failed.length) {
        throw new Error(`ssh_exec_many true gave ${JSON.stringify(r).slice(0, 300)}`);
      }
    };
    await run(); // warm-up
    const rsmMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await run();
      rsmMs.push(performance.now() - t0);
    }

    log(`fleet: starting ${n} ControlMasters`);
    const dest = `${w.user.name}@${t.host}`;
    const ctl = (i: number) => join(w.dir, `fleet-ctl-${i}`);
    for (let i = 0; i < n; i++) {
      masters.push(
        new Deno.Command("ssh", {
          args: [...opensshBase(w), "-p", String(t.port), "-M", "-S", ctl(i), "-N", dest],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
    }
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < n; i++) {
      while (!(await Deno.stat(ctl(i)).then((s) => s.isSocket, () => false))) {
        if (Date.now() > deadline) throw new Error("the ControlMasters did not come up");
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const args = (i: number) => [
      ...opensshBase(w),
      "-S",
      ctl(i),
      "-p",
      String(t.port),
      dest,
      "true",
    ];
    await fanOut(n, (i) => sshTrue(args(i))); // warm-up
    const sshMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      await fanOut(n, (i) => sshTrue(args(i)));
      sshMs.push(performance.now() - t0);
    }
    const a = percentile(rsmMs, 50);
    const b = percentile(sshMs, 50);
    const ratio = a / b;
    return {
      id: "fleet_exec",
      name: `\`true\` on ${n} sessions, ${CONCURRENCY} at a time`,
      status: "ok",
      rsm: `${fmtMs(a)} (ssh_exec_many, median of ${rounds})`,
      baseline: `${fmtMs(b)} (${n} ControlMaster \`ssh\` calls)`,
      ratio,
      target: "≤ 1× OpenSSH",
      met: ratio <= 1,
      better: "lower",
      ratioTarget: 1,
      values: { rsm_ms: a, ssh_ms: b, sessions: n, concurrency: CONCURRENCY },
    };
  } finally {
    for (const m of masters) {
      try {
        m.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await Promise.all(masters.map((m) => m.status));
    await rsm.dispose();
  }
}
