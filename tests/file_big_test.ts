/**
 * 1 GiB through ssh_upload and ssh_download against a real sshd (issue 6, acceptance 4):
 * SHA-256 equal on both sides, progress notifications reach the client, the daemon's memory
 * stays bounded (VmRSS sampled from /proc while the bytes move), and a cancelled download
 * leaves nothing under the final name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf, waitFor } from "./support/env.ts";
import { readHandle } from "./support/mcp.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd", "sha256sum", "dd"], true);
const GiB = 1024 * 1024 * 1024;
const RSS_LIMIT_MB = 400;

async function sha256(path: string): Promise<string> {
  const r = await run("sha256sum", [path]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split(" ")[0]!; // split returns at least one part
}

/** Samples VmRSS of `pid` every 100 ms until stopped; returns the peak in MB. */
function sampleRss(pid: number): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch { /* gone */ }
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

testIf(
  missing,
  "a 1 GiB file goes up and down intact with progress and bounded memory",
  async (t) => {
    await using user = await createUser({ plainShell: true });
    await using sshd = await startSshd();
    await using rsm = await rsmWithEnv();
    await rsm.callJson("ssh_connect", {
      id: "box",
      spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
    });
    const pid = (await readHandle(rsm.env))!.pid;
    const local = await Deno.makeTempDir({ prefix: "rsm-big-" });
    try {
      const src = join(local, "big.bin");
      const dd = await run("dd", ["if=/dev/urandom", `of=${src}`, "bs=1M", "count=1024"]);
      assert.equal(dd.code, 0, dd.stderr);
      const want = await sha256(src);

      await t.step("upload: same SHA-256 remotely, progress arrives, memory bounded", async () => {
        const progress: { progress: number; total?: number; message?: string }[] = [];
        const rss = sampleRss(pid);
        const r = JSON.parse(
          await rsm.call("ssh_upload", {
            session_id: "box",
            local_path: src,
            remote_path: `${user.home}/big.bin`,
          }, { onprogress: (p) => progress.push(p) }),
        );
        const peak = rss.stop();
        assert.equal(r.bytes, GiB);
        assert.equal(r.files, 1);
        assert.equal(await sha256(`${user.home}/big.bin`), want);
        assert.ok(progress.length >= 3, `${progress.length} progress notifications`);
        assert.equal(progress.at(-1)!.total, GiB);
        assert.ok(progress.every((p, i) => i === 0 || p.progress >= progress[i - 1]!.progress));
        assert.match(progress[0]?.message ?? "", /uploaded .* of 1\.00 GiB/);
        assert.ok(peak > 0 && peak < RSS_LIMIT_MB, `daemon VmRSS peak ${peak.toFixed(0)} MB`);
      });

      await t.step("download: same SHA-256 locally, progress arrives, memory bounded", async () => {
        const progress: number[] = [];
        const rss = sampleRss(pid);
        const dest = join(local, "back.bin");
        const r = JSON.parse(
          await rsm.call("ssh_download", {
            session_id: "box",
            remote_path: `${user.home}/big.bin`,
            local_path: dest,
          }, { onprogress: (p) => progress.push(p.progress) }),
        );
        const peak = rss.stop();
        assert.equal(r.bytes, GiB);
        assert.equal(await sha256(dest), want);
        assert.ok(progress.length >= 3, `${progress.length} progress notifications`);
        assert.ok(peak > 0 && peak < RSS_LIMIT_MB, `daemon VmRSS peak ${peak.toFixed(0)} MB`);
        await Deno.remove(dest);
      });

      await t.step("a cancelled download leaves no file under the final name", async () => {
        const dir = join(local, "cancel");
        await Deno.mkdir(dir);
        const ac = new AbortController();
        let seen = 0;
        const call = rsm.callRaw("ssh_download", {
          session_id: "box",
          remote_path: `${user.home}/big.bin`,
          local_path: join(dir, "big.bin"),
        }, {
          signal: ac.signal,
          onprogress: () => {
            if (++seen === 2) ac.abort("test cancels");
          },
        }).then(() => "finished", () => "cancelled");
        assert.equal(await call, "cancelled");
        await waitFor("temp file removed", () => [...Deno.readDirSync(dir)].length === 0, 15_000);
        await assert.rejects(Deno.lstat(join(dir, "big.bin")));
        // the session still works afterwards
        const s = await rsm.callJson("ssh_file_stat", {
          session_id: "box",
          path: `${user.home}/big.bin`,
        });
        assert.equal(s.size, GiB);
      });
    } finally {
      await Deno.remove(local, { recursive: true });
    }
  },
);
