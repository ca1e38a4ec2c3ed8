/**
 * `deno task bench --quick --json` completes, measures every row with sane numbers, writes
 * the SVG chart, and leaves nothing running (CI checks completion and sanity, not speed).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, ROOT, testIf } from "./support/env.ts";
import { GROUPS, rsmFirstCipher } from "../scripts/bench.ts";
import { insane, type Report } from "../scripts/bench_report.ts";

const missing = await need(["sshd", "ssh", "sftp", "ssh-keygen", "useradd", "ip", "tc"], true);

async function leftovers(): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!pid || pid === Deno.pid) continue;
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmd.includes("bench_source.ts") || cmd.includes("rsm-bench-")) {
      out.push(`${pid}: ${cmd.replaceAll("\0", " ")}`);
    }
  }
  for await (const e of Deno.readDir("/tmp")) {
    if (e.name.startsWith("rsm-bench-")) out.push(`/tmp/${e.name}`);
  }
  return out;
}

testIf(missing, "the quick benchmark measures every row with sane numbers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rsm-benchtest-" });
  try {
    const svg = join(dir, "bench.svg");
    const started = Date.now();
    const out = await new Deno.Command("deno", {
      args: ["task", "bench", "--quick", "--json", "--svg", svg],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (Date.now() - started) / 1000;
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `bench --quick failed:\n${stderr.slice(-4000)}`);
    const report: Report = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(report.mode, "quick");
    assert.ok(seconds < 180, `the quick run took ${seconds} s`);
    const ids = GROUPS.filter((g) => !g.fullOnly).flatMap((g) => g.ids);
    assert.deepEqual(report.rows.map((r) => r.id), ids);
    for (const row of report.rows) {
      const dockerRow = row.id === "docker_exec" || row.id === "toon_docker_containers";
      if (row.status === "na" && dockerRow && !Deno.env.get("RSM_TEST_REQUIRE_ALL")) continue;
      assert.equal(row.status, "ok", `${row.id}: ${row.status} (${row.note})`);
      assert.equal(insane(row), null, `${row.id}: ${insane(row)}`);
      assert.equal(typeof row.met, "boolean", `${row.id} has no verdict`);
    }
    const ratios = report.rows.filter((r) => r.ratio !== undefined);
    assert.ok(ratios.length >= 7, `only ${ratios.length} rows have a ratio`);
    const chart = await Deno.readTextFile(svg);
    assert.match(chart, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const r of ratios) assert.ok(chart.includes(`${r.ratio!.toFixed(2)}×`), r.id);
    const cipher = await rsmFirstCipher();
    assert.ok(report.cipher.includes(`OpenSSH negotiated ${cipher}`), report.cipher);
    assert.deepEqual(await leftovers(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
