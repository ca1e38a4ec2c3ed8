/**
 * ssh_upload / ssh_download against a real sshd (issue 6, acceptance 3, 5 and 6): a tree with
 * nested and empty directories, unicode and space-containing names and modes round-trips
 * exactly; nothing is read or written outside the source or destination (symlinks to /etc,
 * escaping relative links, symlinked directories, local symlinks planted in the destination);
 * errors name the path.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, run, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

type Node = { type: "dir" | "file" | "link"; mode: number; data?: string; target?: string };

/** Every entry under `root` (not following symlinks): type, permission bits, content. */
async function snapshot(root: string): Promise<Record<string, Node>> {
  const out: Record<string, Node> = {};
  const walk = async (dir: string, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = await Deno.lstat(p);
      const mode = st.mode! & 0o7777;
      if (st.isSymlink) out[r] = { type: "link", mode: 0, target: await Deno.readLink(p) };
      else if (st.isDirectory) {
        out[r] = { type: "dir", mode };
        await walk(p, r);
      } else {
        const bytes = await Deno.readFile(p);
        const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
        out[r] = { type: "file", mode, data: `${bytes.length}:${hash.slice(0, 8).join(",")}` };
      }
    }
  };
  await walk(root, "");
  return out;
}

async function chownTree(path: string, user: string): Promise<void> {
  const r = await run("chown", ["-hR", `${user}:${user}`, path]);
  if (r.code !== 0) throw new Error(r.stderr);
}

testIf(missing, "ssh_upload and ssh_download copy trees exactly and stay inside", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const call = (tool: string, args: Record<string, unknown>) =>
    rsm.callJson(tool, { session_id: "box", ...args });
  const fail = (tool: string, args: Record<string, unknown>) =>
    rsm.callError(tool, { session_id: "box", ...args });
  const h = user.home;
  const local = await Deno.makeTempDir({ prefix: "rsm-files-" });
  try {
    await t.step("a tree round-trips with names, empty dirs and modes intact", async () => {
      const src = join(local, "src");
      await Deno.mkdir(join(src, "dir with space", "nested", "deep"), { recursive: true });
      await Deno.mkdir(join(src, "empty"));
      await Deno.mkdir(join(src, "privé 目录"));
      await Deno.writeTextFile(join(src, "a.txt"), "alpha\n");
      await Deno.writeTextFile(join(src, "ünï cödé ✓.sh"), "#!/bin/sh\necho hi\n");
      await Deno.writeFile(
        join(src, "dir with space", "nested", "deep", "random.bin"),
        random(300_000),
      );
      await Deno.writeFile(join(src, "privé 目录", "big.bin"), random(5 * 1024 * 1024 + 17));
      await Deno.writeFile(join(src, "zero.bin"), new Uint8Array(0));
      await Deno.symlink("a.txt", join(src, "link-inside"));
      await Deno.chmod(join(src, "a.txt"), 0o600);
      await Deno.chmod(join(src, "ünï cödé ✓.sh"), 0o755);
      await Deno.chmod(join(src, "dir with space", "nested", "deep", "random.bin"), 0o644);
      await Deno.chmod(join(src, "privé 目录", "big.bin"), 0o600);
      await Deno.chmod(join(src, "privé 目录"), 0o700);
      await Deno.chmod(join(src, "empty"), 0o755);
      await Deno.chmod(join(src, "dir with space"), 0o750);
      await Deno.chmod(src, 0o755);
      const before = await snapshot(src);
      const bytes = 6 + 18 + 300_000 + 5 * 1024 * 1024 + 17;

      const progress: number[] = [];
      const up = JSON.parse(
        await rsm.call("ssh_upload", {
          session_id: "box",
          local_path: src,
          remote_path: `${h}/up/tree`,
        }, { onprogress: (p) => progress.push(p.progress) }),
      );
      assert.equal(up.bytes, bytes);
      assert.equal(up.files, 6); // 5 files + 1 symlink
      assert.equal(up.skipped, undefined);
      assert.ok(progress.length >= 1, "progress notifications arrive");
      assert.deepEqual(await snapshot(`${h}/up/tree`), before);
      assert.equal((await Deno.stat(`${h}/up/tree`)).mode! & 0o7777, 0o755);
      assert.equal((await Deno.stat(`${h}/up/tree/a.txt`)).uid, user.uid);

      const dest = join(local, "back");
      const down = await call("ssh_download", { remote_path: `${h}/up/tree`, local_path: dest });
      assert.equal(down.bytes, bytes);
      assert.equal(down.files, 6);
      assert.equal(down.skipped, undefined);
      assert.deepEqual(await snapshot(dest), before);
      assert.equal((await Deno.stat(dest)).mode! & 0o7777, 0o755);

      // downloading again merges into the existing tree (same result, no leftovers)
      await call("ssh_download", { remote_path: `${h}/up/tree`, local_path: dest });
      assert.deepEqual(await snapshot(dest), before);
    });

    await t.step("single files go where named, keep modes, and replace old content", async () => {
      const f = join(local, "one.txt");
      await Deno.writeTextFile(f, "version 1\n");
      await Deno.chmod(f, 0o640);
      const up = await call("ssh_upload", { local_path: f, remote_path: "~/single/one.txt" });
      assert.deepEqual([up.bytes, up.files], [10, 1]);
      assert.equal(await Deno.readTextFile(`${h}/single/one.txt`), "version 1\n");
      assert.equal((await Deno.stat(`${h}/single/one.txt`)).mode! & 0o777, 0o640);
      await Deno.writeTextFile(f, "v2\n");
      await call("ssh_upload", { local_path: f, remote_path: `${h}/single/one.txt` });
      assert.equal(await Deno.readTextFile(`${h}/single/one.txt`), "v2\n");
      const back = join(local, "fetched", "one-back.txt");
      const down = await call("ssh_download", { remote_path: "single/one.txt", local_path: back });
      assert.deepEqual([down.bytes, down.files], [3, 1]);
      assert.equal(await Deno.readTextFile(back), "v2\n");
      assert.equal((await Deno.stat(back)).mode! & 0o777, 0o640);
      const names = [...Deno.readDirSync(join(local, "fetched"))].map((e) => e.name);
      assert.deepEqual(names, ["one-back.txt"], "no temp files left behind");
    });

    await t.step("download skips symlinks pointing out and never reads outside", async () => {
      const r = `${h}/trap`;
      await Deno.mkdir(`${r}/sub`, { recursive: true });
      await Deno.writeTextFile(`${r}/ok.txt`, "ok");
      await Deno.writeTextFile(`${r}/sub/inner.txt`, "inner");
      await Deno.writeTextFile(`${h}/outside.txt`, "outside");
      await Deno.symlink("/etc", `${r}/etc-link`);
      await Deno.symlink("/etc/passwd", `${r}/passwd-link`);
      await Deno.symlink("../outside.txt", `${r}/up-link`);
      await Deno.symlink("sub/../../outside.txt", `${r}/sneaky-link`);
      await Deno.symlink(`${r}/ok.txt`, `${r}/abs-inside`);
      await Deno.symlink("sub", `${r}/sub-link`);
      await Deno.symlink("../ok.txt", `${r}/sub/ok-up`);
      await chownTree(r, user.name);
      const dest = join(local, "trap-down");
      const res = await call("ssh_download", { remote_path: r, local_path: dest });
      const got = await snapshot(dest);
      assert.deepEqual(Object.keys(got).sort(), [
        "ok.txt",
        "sub",
        "sub-link",
        "sub/inner.txt",
        "sub/ok-up",
      ]);
      assert.deepEqual(got["sub-link"], { type: "link", mode: 0, target: "sub" });
      assert.equal(res.files, 4);
      const skipped = res.skipped.join("\n");
      for (
        const name of ["etc-link -> /etc", "passwd-link", "up-link", "sneaky-link", "abs-inside"]
      ) {
        assert.ok(skipped.includes(name), `${name} reported in ${skipped}`);
      }
      // nothing was written next to the destination either
      const around = [...Deno.readDirSync(local)].map((e) => e.name).sort();
      assert.ok(!around.some((n) => n.includes("outside") || n === "passwd"), around.join());
    });

    await t.step(
      "a local symlink in the destination is replaced or skipped, not followed",
      async () => {
        const victim = join(local, "victim.txt");
        const victimDir = join(local, "victim-dir");
        await Deno.writeTextFile(victim, "victim");
        await Deno.mkdir(victimDir);
        const dest = join(local, "planted");
        await Deno.mkdir(dest);
        await Deno.symlink(victim, join(dest, "ok.txt"));
        await Deno.symlink(victimDir, join(dest, "sub"));
        const res = await call("ssh_download", { remote_path: `${h}/trap`, local_path: dest });
        assert.equal(await Deno.readTextFile(victim), "victim");
        assert.deepEqual([...Deno.readDirSync(victimDir)], []);
        const ok = await Deno.lstat(join(dest, "ok.txt"));
        assert.ok(ok.isFile && !ok.isSymlink, "the planted link was replaced by the file");
        assert.equal(await Deno.readTextFile(join(dest, "ok.txt")), "ok");
        assert.ok((await Deno.lstat(join(dest, "sub"))).isSymlink, "the planted dir link stays");
        assert.match(
          res.skipped.join("\n"),
          /sub\/ \(a local symlink exists there; not followed\)/,
        );
        // single-file download onto a symlink replaces the link, never writes through it
        await Deno.symlink(victim, join(local, "single-link"));
        await call("ssh_download", {
          remote_path: `${h}/trap/ok.txt`,
          local_path: join(local, "single-link"),
        });
        assert.equal(await Deno.readTextFile(victim), "victim");
        assert.equal(await Deno.readTextFile(join(local, "single-link")), "ok");
      },
    );

    await t.step("upload skips local links pointing out and remote links in the way", async () => {
      const src = join(local, "up-src");
      await Deno.mkdir(join(src, "d"), { recursive: true });
      await Deno.writeTextFile(join(src, "x.txt"), "new x");
      await Deno.writeTextFile(join(src, "d", "y.txt"), "new y");
      await Deno.symlink("/etc", join(src, "etc-link"));
      await Deno.symlink("/etc/hostname", join(src, "host-link"));
      const victim = `${h}/remote-victim.txt`;
      const victimDir = `${h}/remote-victim-dir`;
      await Deno.writeTextFile(victim, "remote victim");
      await Deno.mkdir(victimDir);
      const dest = `${h}/up-dest`;
      await Deno.mkdir(dest);
      await Deno.symlink(victim, `${dest}/x.txt`);
      await Deno.symlink(victimDir, `${dest}/d`);
      await chownTree(victim, user.name);
      await chownTree(victimDir, user.name);
      await chownTree(dest, user.name);
      const res = await call("ssh_upload", { local_path: src, remote_path: dest });
      assert.equal(await Deno.readTextFile(victim), "remote victim");
      assert.deepEqual([...Deno.readDirSync(victimDir)], []);
      assert.equal(await Deno.readTextFile(`${dest}/x.txt`), "new x");
      assert.ok(!(await Deno.lstat(`${dest}/x.txt`)).isSymlink);
      await assert.rejects(Deno.lstat(`${dest}/etc-link`));
      await assert.rejects(Deno.lstat(`${dest}/host-link`));
      const skipped = res.skipped.join("\n");
      assert.match(skipped, /etc-link -> \/etc/);
      assert.match(skipped, /host-link/);
      assert.match(skipped, /^d\/ /m);
      assert.equal(res.files, 1);
    });

    await t.step("transfer errors name the path and say why", async () => {
      const gone = await fail("ssh_download", {
        remote_path: `${h}/no-such-dir`,
        local_path: join(local, "x"),
      });
      assert.match(gone, /no-such-dir/);
      assert.match(gone, /no such file/i);
      const denied = await fail("ssh_download", {
        remote_path: "/etc/shadow",
        local_path: join(local, "shadow"),
      });
      assert.match(denied, /\/etc\/shadow/);
      assert.match(denied, /permission denied/i);
      await assert.rejects(Deno.lstat(join(local, "shadow")));
      const upDenied = await fail("ssh_upload", {
        local_path: join(local, "one.txt"),
        remote_path: "/root/rsm-test-denied.txt",
      });
      assert.match(upDenied, /\/root\/rsm-test-denied\.txt/);
      assert.match(upDenied, /permission denied/i);
      const dirWanted = await fail("ssh_download", {
        remote_path: `${h}/single/one.txt`,
        local_path: local,
      });
      assert.match(dirWanted, /is a directory/);
      assert.match(dirWanted, new RegExp(local));
      const remoteDir = await fail("ssh_upload", {
        local_path: join(local, "one.txt"),
        remote_path: `${h}/single`,
      });
      assert.match(remoteDir, /is a directory/);
      const noLocal = await fail("ssh_upload", {
        local_path: join(local, "nope"),
        remote_path: `${h}/nope`,
      });
      assert.match(noLocal, /nope/);
      assert.match(
        await fail("ssh_upload", { local_path: "relative/path", remote_path: "/tmp/x" }),
        /absolute/,
      );
    });

    await t.step("transfers are audited", async () => {
      const audit = await Deno.readTextFile(join(rsm.tmp.rsmDir, "audit.log"));
      assert.match(audit, /"tool":"ssh_upload".*up\/tree/);
      assert.match(audit, /"tool":"ssh_download".*trap-down/);
    });
  } finally {
    await Deno.remove(local, { recursive: true });
  }
});

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}
