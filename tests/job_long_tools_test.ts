/**
 * Long tools other than ssh_exec become jobs the same way: a 512 MiB ssh_upload with
 * wait_ms 1000 (ending with the right byte count and a matching SHA-256 under verify: true),
 * docker_exec and docker_image_pull against a real dockerd and registry.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmSession } from "./support/mcp.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";
import {
  dockerdMissing,
  pushTestImage,
  startDockerd,
  startRegistry,
  TEST_IMAGE,
} from "./support/dockerd.ts";

const sshMissing = await need(["sshd", "ssh-keygen", "useradd", "sha256sum", "dd"], true);
const MiB = 1024 * 1024;

// deno-lint-ignore no-explicit-any
type Call = (name: string, args?: Record<string, unknown>) => Promise<any>;

/** job_wait until the job ends; returns the last answer and every output seen. */
async function waitDone(call: Call, jobId: string) {
  let output = "";
  for (let i = 0; i < 60; i++) {
    const w = await call("job_wait", { job_id: jobId, wait_ms: 10_000 });
    output += w.output;
    if (w.state !== "running") return { ...w, output };
  }
  throw new Error(`job ${jobId} did not end`);
}

testIf(
  sshMissing,
  "a 512 MiB ssh_upload becomes a job and ends verified; so does the download",
  async () => {
    await using user = await createUser();
    await using sshd = await startSshd();
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    const src = join(rsm.tmp.root, "big.bin");
    const dd = await run("dd", ["if=/dev/urandom", `of=${src}`, "bs=1M", "count=512"]);
    assert.equal(dd.code, 0, dd.stderr);
    const want = (await run("sha256sum", [src])).stdout.slice(0, 64);

    const started = Date.now();
    const first = await rsm.callJson("ssh_upload", {
      session_id: "box",
      local_path: src,
      remote_path: `${user.home}/big.bin`,
      verify: true,
      wait_ms: 1000,
    });
    assert.ok(Date.now() - started < 4000, `returned after ${Date.now() - started} ms`);
    assert.equal(first.state, "running");
    assert.match(first.tail, /uploaded .* of 512\.0 MiB/);
    const row = (await rsm.callJson("job_list")).find((r: { id: string }) => r.id === first.job_id);
    assert.equal(row.kind, "ssh_upload");

    const done = await waitDone(rsm.callJson, first.job_id);
    assert.equal(done.state, "exited", JSON.stringify(done));
    assert.equal(done.exit_code, 0);
    assert.equal(done.result.bytes, 512 * MiB);
    assert.equal(done.result.files, 1);
    assert.equal(done.result.verified, true);
    assert.equal(done.result.sha256, want);
    const there = (await run("sha256sum", [`${user.home}/big.bin`])).stdout.slice(0, 64);
    assert.equal(there, want);

    const back = join(rsm.tmp.root, "back.bin");
    const down = await rsm.callJson("ssh_download", {
      session_id: "box",
      remote_path: `${user.home}/big.bin`,
      local_path: back,
      verify: true,
      wait_ms: 300_000,
    });
    assert.equal(down.bytes, 512 * MiB);
    assert.equal(down.sha256, want);
    assert.equal(down.verified, true);

    // verify compares single files: a directory is refused before anything is copied
    const err = await rsm.callError("ssh_upload", {
      session_id: "box",
      local_path: rsm.tmp.root,
      remote_path: `${user.home}/tree`,
      verify: true,
    });
    assert.match(err, /Cannot verify .*directory/);
  },
);

testIf(
  dockerdMissing,
  "docker_exec, docker_run with wait and docker_image_pull become jobs too",
  async () => {
    await using d = await startDockerd();
    await using reg = await startRegistry();
    const ref = await pushTestImage(d, reg, "rsm/jobpull:1");
    await using rsm = await rsmSession({ json: true });
    await rsm.callJson("docker_connect", { id: "e", spec: { host: d.host } });
    await d.cli(["run", "-d", "--name", "jobbox", TEST_IMAGE, "sleep", "600"]);

    const ex = await rsm.callJson("docker_exec", {
      host_id: "e",
      container: "jobbox",
      cmd: ["sh", "-c", "echo one; sleep 3; echo two"],
      wait_ms: 1000,
    });
    assert.equal(ex.state, "running");
    assert.equal(ex.tail, "one");
    const exDone = await waitDone(rsm.callJson, ex.job_id);
    assert.equal(exDone.state, "exited");
    assert.equal(exDone.exit_code, 0);
    assert.equal(exDone.output, "one\ntwo\n");

    const stuck = await rsm.callJson("docker_exec", {
      host_id: "e",
      container: "jobbox",
      cmd: ["sleep", "321"],
      wait_ms: 500,
    });
    assert.equal(stuck.state, "running");
    const killed = await rsm.callJson("job_signal", { job_id: stuck.job_id, signal: "KILL" });
    assert.equal(killed.state, "killed");
    const ps = await d.cli(["exec", "jobbox", "ps"]);
    assert.ok(!ps.includes("sleep 321"), ps);

    const ran = await rsm.callJson("docker_run", {
      host_id: "e",
      spec: { image: TEST_IMAGE, cmd: ["sh", "-c", "sleep 2; echo ran"], wait: true },
      wait_ms: 500,
    });
    assert.equal(ran.state, "running");
    const ranDone = await waitDone(rsm.callJson, ran.job_id);
    assert.equal(ranDone.state, "exited", JSON.stringify(ranDone));
    assert.equal(ranDone.exit_code, 0);
    assert.match(JSON.stringify(ranDone.result), /ran/);

    await d.cli(["rmi", ref], { ok: false });
    const pull = await rsm.callJson("docker_image_pull", { host_id: "e", image: ref, wait_ms: 0 });
    assert.equal(pull.state, "running");
    const pulled = await waitDone(rsm.callJson, pull.job_id);
    assert.equal(pulled.state, "exited", JSON.stringify(pulled));
    assert.equal(pulled.result.image, ref);
    assert.match(await d.cli(["images", "--format", "{{.Repository}}:{{.Tag}}"]), /jobpull:1/);
  },
);
