/**
 * Audit and progress are done once, by the tool registry (lib/mcp/audit.ts, lib/mcp/registry.ts):
 * a tool declares what its audit line records and the registry writes it when the call ends
 * (with the error of a failed call), or when the work of a call that became a job ends (with
 * the exit code); a tool reports progress as often as it likes and the client gets at most one
 * notification per PROGRESS_PERIOD_MS, always including the last step. In-process (SDK client
 * over the in-memory transport), with tools defined here.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { startInProc } from "./support/inproc.ts";
import { defineTool, PROGRESS_PERIOD_MS, Text } from "../lib/mcp/tool.ts";
import { runLong } from "../lib/mcp/job.ts";
import { RsmError } from "../lib/errors.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tools = [
  defineTool({
    name: "t_change",
    group: "meta",
    description: "changes something",
    input: { target: z.string(), fail: z.boolean().optional() },
    audit: (a) => ({ target: a.target, command: `change ${a.target}` }),
    run: (a) => {
      if (a.fail) throw new RsmError("BAD_ARGUMENT", "Cannot change it: it is read-only");
      return Promise.resolve(new Text("changed"));
    },
  }),
  defineTool({
    name: "t_look",
    group: "meta",
    description: "changes nothing",
    input: {},
    run: () => Promise.resolve(new Text("looked")),
  }),
  defineTool({
    name: "t_long",
    group: "meta",
    description: "a command that outlives its wait",
    input: { ms: z.number() },
    audit: () => ({ target: "box", command: "sleep; exit 3" }),
    run: (a, ctx) =>
      runLong(ctx, {
        kind: "t_long",
        target: "box",
        summary: "sleep; exit 3",
        waitMs: 100,
        work: async () => {
          await sleep(a.ms);
          return 3;
        },
        outcome: (code) => ({ exit_code: code }),
      }),
  }),
  defineTool({
    name: "t_chatty",
    group: "meta",
    description: "reports progress every millisecond",
    input: {},
    run: async (_a, ctx) => {
      const total = 600;
      for (let i = 1; i < total; i++) {
        ctx.progress(i, total, `step ${i}`);
        await sleep(1);
      }
      ctx.progress(total, total, "done");
      return new Text("ok");
    },
  }),
];

async function auditLines(path: string): Promise<Record<string, unknown>[]> {
  // a missing audit.log is a failure, not "no lines"
  const text = await Deno.readTextFile(path);
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("the registry writes one audit line per call: declared fields, then the error or exit code", async () => {
  await using rsm = await startInProc({ groups: ["meta", "job"], tools });
  assert.equal(await rsm.call("t_change", { target: "web1" }), "changed");
  assert.match(
    await rsm.callError("t_change", { target: "web2", fail: true }),
    /Cannot change it: it is read-only/,
  );
  assert.equal(await rsm.call("t_look", {}), "looked");
  // an argument error is refused before the tool runs: nothing ran, nothing is audited
  await rsm.callError("t_change", { target: 7 });

  // the work outlives its 100 ms wait: the line is written when it ends, with its exit code
  const running = await rsm.client.callTool({ name: "t_long", arguments: { ms: 1500 } });
  assert.match(JSON.stringify(running), /job_id/);
  const path = rsm.app.paths.audit;
  const before = await auditLines(path);
  assert.equal(before.filter((l) => l.tool === "t_long").length, 0, "not before the work ends");
  const deadline = Date.now() + 10_000;
  let lines = before;
  while (!lines.some((l) => l.tool === "t_long") && Date.now() < deadline) {
    await sleep(100);
    lines = await auditLines(path);
  }
  const pick = (l: Record<string, unknown>) => {
    const { time: _t, ...rest } = l;
    return rest;
  };
  assert.deepEqual(lines.map(pick), [
    { tool: "t_change", target: "web1", command: "change web1" },
    {
      tool: "t_change",
      target: "web2",
      command: "change web2",
      error: "Cannot change it: it is read-only",
    },
    { tool: "t_long", target: "box", command: "sleep; exit 3", exit_code: 3 },
  ]);
});

Deno.test("progress: at most one notification per period, and the last step always", async () => {
  await using rsm = await startInProc({ groups: ["meta"], tools });
  const seen: { progress: number; total?: number; message?: string; at: number }[] = [];
  const started = Date.now();
  await rsm.client.callTool({ name: "t_chatty", arguments: {} }, undefined, {
    onprogress: (p: { progress: number; total?: number; message?: string }) =>
      seen.push({ ...p, at: Date.now() }),
  });
  const elapsed = Date.now() - started;
  // 600 reports over at least 600 ms: a handful of notifications, not hundreds
  assert.ok(seen.length >= 2, `got ${seen.length}`);
  assert.ok(
    seen.length <= Math.ceil(elapsed / PROGRESS_PERIOD_MS) + 2,
    `${seen.length} notifications in ${elapsed} ms`,
  );
  assert.deepEqual(seen.at(-1)?.progress, 600, "the last step is sent");
  assert.equal(seen.at(-1)?.message, "done");
  assert.equal(seen[0]?.message, "step 1", "the first report is sent at once");
});
