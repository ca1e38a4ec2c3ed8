/**
 * The job engine on its own (no MCP, no SSH): complete output in memory and on disk, reads by
 * range, grep, bounded waits with `until` and heartbeats, signals, retention, persistence.
 */
import assert from "node:assert/strict";
import { JobManager, JobOutput } from "../lib/jobs/mod.ts";
import { Logger } from "../lib/log.ts";
import { StateStore } from "../lib/state/store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function quietLog(dir: string): Logger {
  return new Logger({ file: `${dir}/log`, level: "error", stderr: false });
}

Deno.test("job output keeps every byte, in memory and after spilling to files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = new JobOutput(dir, "j1");
    out.append("stdout", enc.encode("one\n"));
    out.append("stderr", enc.encode("err\n"));
    out.append("stdout", enc.encode("two\n"));
    assert.equal(dec.decode(out.read("both", 0, 100)), "one\nerr\ntwo\n");
    assert.equal(dec.decode(out.read("stdout", 2, 4)), "e\ntw");
    out.spill();
    const big = "x".repeat(300 * 1024) + "\nneedle here\n";
    out.append("stdout", enc.encode(big));
    assert.equal(out.size("stdout"), 8 + big.length);
    assert.equal(dec.decode(out.read("stdout", 8, big.length)), big);
    assert.deepEqual(out.grep("stdout", /needle/), [{ line: 4, text: "needle here" }]);
    assert.equal(out.tail(1), "needle here");
    assert.equal(out.lastLine(), "needle here");
    out.close();
    const again = JobOutput.restore(dir, "j1");
    assert.equal(again.size("both"), 12 + big.length);
    assert.equal(dec.decode(again.read("both", 0, 12)), "one\nerr\ntwo\n");
    again.remove();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stream past its limit counts what it dropped", () => {
  const out = new JobOutput("/nonexistent", "j2", { maxBytes: 10 });
  out.append("stdout", enc.encode("0123456789abc"));
  assert.equal(out.size("stdout"), 10);
  assert.equal(out.dropped, 3);
});

Deno.test("wait returns on until, on the end, and sends heartbeats while quiet", async () => {
  const dir = await Deno.makeTempDir();
  const jobs = new JobManager({ dir, log: quietLog(dir) });
  try {
    let write!: (s: string) => void;
    let finish!: () => void;
    const job = jobs.start({
      kind: "test",
      target: "here",
      summary: "waits",
      work: (c) => {
        write = (s) => c.write("stdout", enc.encode(s));
        return new Promise((r) => (finish = () => r({ exit_code: 0 })));
      },
    });
    assert.equal(await jobs.wait(job, { waitMs: 50 }), "waited");
    const beats: number[] = [];
    const matched = jobs.wait(job, {
      waitMs: 5000,
      until: /READY$/m,
      heartbeatMs: 200,
      onProgress: (_line, ms) => beats.push(ms),
    });
    await new Promise((r) => setTimeout(r, 700));
    write("loading\nREADY\n");
    assert.equal(await matched, "matched");
    assert.ok(beats.length >= 3, `heartbeats: ${beats}`);
    finish();
    assert.equal(await jobs.wait(job, { waitMs: 5000 }), "ended");
    assert.equal(job.state, "exited");
    assert.equal(job.exitCode, 0);
  } finally {
    await jobs.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a signal without a killer aborts the work; the job reads killed", async () => {
  const dir = await Deno.makeTempDir();
  const jobs = new JobManager({ dir, log: quietLog(dir) });
  try {
    const job = jobs.start({
      kind: "test",
      target: "here",
      summary: "aborts",
      work: (c) =>
        new Promise((_r, reject) =>
          c.signal.addEventListener("abort", () => reject(c.signal.reason))
        ),
    });
    await jobs.reveal(job);
    assert.equal(await job.kill("TERM"), "stopped");
    await job.done;
    assert.equal(job.state, "killed");
    assert.equal(job.signalName, "SIGTERM");
    await assert.rejects(jobs.forget("nope"), /Cannot find job nope/);
    await jobs.forget(job.id);
    assert.deepEqual(jobs.rows(), []);
  } finally {
    await jobs.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("finished jobs: at most N kept, oldest finished first; a running one cannot be forgotten", async () => {
  const dir = await Deno.makeTempDir();
  const jobs = new JobManager({ dir, log: quietLog(dir), maxFinished: 2 });
  try {
    let release!: () => void;
    const running = jobs.start({
      kind: "t",
      target: "x",
      summary: "runs",
      work: () => new Promise((r) => (release = () => r({ exit_code: 0 }))),
    });
    await jobs.reveal(running);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const j = jobs.start({
        kind: "t",
        target: "x",
        summary: `n${i}`,
        work: async () => {
          await new Promise((r) => setTimeout(r, 5));
          return { exit_code: i };
        },
      });
      await jobs.reveal(j);
      await j.done;
      ids.push(j.id);
    }
    await new Promise((r) => setTimeout(r, 10));
    const rows = jobs.rows();
    assert.deepEqual(rows.map((r) => r.summary).sort(), ["n2", "n3", "runs"]);
    await assert.rejects(jobs.forget(running.id), /still running.*job_signal/);
    release();
    await running.done;
  } finally {
    await jobs.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("after a restart, finished jobs come back and running ones are lost", async () => {
  const dir = await Deno.makeTempDir();
  const log = quietLog(dir);
  try {
    const store = new StateStore(`${dir}/state.json`, { log, debounceMs: 1 });
    const jobs = new JobManager({ dir: `${dir}/jobs`, log, store });
    const done = jobs.start({
      kind: "t",
      target: "x",
      summary: "done",
      work: async (c) => {
        c.write("stdout", enc.encode("kept\n"));
        await new Promise((r) => setTimeout(r, 20));
        return { exit_code: 4 };
      },
    });
    await jobs.reveal(done);
    await done.done;
    const hang = jobs.start({
      kind: "t",
      target: "x",
      summary: "hangs",
      work: (c) => {
        c.write("stderr", enc.encode("partial\n"));
        return new Promise(() => {});
      },
    });
    await jobs.reveal(hang);
    await store.flush();
    store.stop();

    const store2 = new StateStore(`${dir}/state.json`, { log, debounceMs: 1 });
    const jobs2 = new JobManager({ dir: `${dir}/jobs`, log, store: store2 });
    await store2.load();
    await store2.restoreAll();
    const byId = new Map(jobs2.jobs().map((j) => [j.id, j]));
    assert.equal(byId.get(done.id)?.state, "exited");
    assert.equal(byId.get(done.id)?.exitCode, 4);
    assert.equal(dec.decode(byId.get(done.id)!.output.read("both", 0, 100)), "kept\n");
    assert.equal(byId.get(hang.id)?.state, "lost");
    assert.equal(dec.decode(byId.get(hang.id)!.output.read("stderr", 0, 100)), "partial\n");
    store2.stop();
    await jobs2.close();
    await jobs.close(10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
