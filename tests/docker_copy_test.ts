/** docker_upload / docker_download against a real dockerd, and the extractor's traversal guard. */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Readable } from "node:stream";
import tar from "tar-stream";
import { testIf } from "./support/env.ts";
import { rsmSession } from "./support/mcp.ts";
import { dockerdMissing, startDockerd, TEST_IMAGE } from "./support/dockerd.ts";
import { extractTo, safeTarget } from "../lib/docker/archive.ts";

async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = await Deno.lstat(p);
      const mode = (st.mode! & 0o777).toString(8);
      if (st.isSymlink) out[r] = `link ${await Deno.readLink(p)}`;
      else if (st.isDirectory) {
        out[r] = `dir ${mode}`;
        await walk(p, r);
      } else out[r] = `file ${mode} ${await Deno.readTextFile(p)}`;
    }
  };
  await walk(root, "");
  return out;
}

Deno.test("the download extractor refuses entries that would land outside the destination", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dest = join(dir, "dest");
    assert.equal(safeTarget(dest, "d", "d/a/b"), join(dest, "a/b"));
    assert.equal(safeTarget(dest, "d", "d/../x"), null);
    assert.equal(safeTarget(dest, "d", "/etc/passwd"), null);
    assert.equal(safeTarget(dest, "d", "other/x"), null);
    const pack = tar.pack();
    pack.entry({ name: "d", type: "directory", mode: 0o755 });
    pack.entry({ name: "d/ok.txt", mode: 0o640 }, "fine\n");
    pack.entry({ name: "d/../x", mode: 0o644 }, "escaped\n");
    pack.entry({ name: "/abs", mode: 0o644 }, "escaped\n");
    pack.entry({ name: "d/root", type: "symlink", linkname: "/" });
    pack.entry({ name: "d/root/tmp/evil", mode: 0o644 }, "escaped\n");
    pack.entry({ name: "d/up", type: "symlink", linkname: "../x" });
    pack.entry({ name: "d/inner", type: "symlink", linkname: "ok.txt" });
    pack.entry({ name: "d/hard", type: "link", linkname: "../x" });
    pack.finalize();
    const r = await extractTo(pack as unknown as Readable, dest, "d");
    assert.deepEqual(await tree(dir), {
      "dest": "dir 755",
      "dest/ok.txt": "file 640 fine\n",
      "dest/inner": "link ok.txt",
    });
    assert.equal(r.files, 2);
    assert.deepEqual(r.skipped, [
      "d/../x",
      "/abs",
      "d/root -> /",
      "d/root/tmp/evil",
      "d/up -> ../x",
      "d/hard => ../x",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

testIf(
  dockerdMissing,
  "docker_upload and docker_download copy trees with modes and never write outside the destination",
  async (t) => {
    await using d = await startDockerd();
    await using rsm = await rsmSession({ json: true });
    await rsm.callJson("docker_connect", { id: "e", spec: { host: d.host } });
    await d.cli(["run", "-d", "--name", "box", TEST_IMAGE, "sleep", "1000"]);
    const h = { host_id: "e", container: "box" };
    const work = await Deno.makeTempDir({ prefix: "rsm-copy-" });

    await t.step("a directory tree round-trips with its permission bits", async () => {
      const src = join(work, "src");
      await Deno.mkdir(join(src, "sub/deeper"), { recursive: true });
      await Deno.writeTextFile(join(src, "run.sh"), "#!/bin/sh\necho hi\n");
      await Deno.chmod(join(src, "run.sh"), 0o755);
      await Deno.writeTextFile(join(src, "sub/secret.txt"), "s3cret\n");
      await Deno.chmod(join(src, "sub/secret.txt"), 0o600);
      await Deno.writeTextFile(join(src, "sub/deeper/data.bin"), "x".repeat(200_000));
      await Deno.chmod(join(src, "sub/deeper"), 0o750);
      await Deno.symlink("run.sh", join(src, "link"));
      const up = await rsm.callJson("docker_upload", {
        ...h,
        local_path: src,
        remote_path: "/opt/app/tree",
      });
      assert.equal(up.files, 4);
      assert.ok(up.bytes >= 200_000);
      const ls = await d.cli([
        "exec",
        "box",
        "sh",
        "-c",
        "cd /opt/app/tree && stat -c '%n %a' run.sh sub/secret.txt sub/deeper && ./run.sh && readlink link",
      ]);
      assert.equal(ls, "run.sh 755\nsub/secret.txt 600\nsub/deeper 750\nhi\nrun.sh\n");
      const back = join(work, "back");
      const down = await rsm.callJson("docker_download", {
        ...h,
        remote_path: "/opt/app/tree",
        local_path: back,
      });
      assert.equal(down.files, 4);
      assert.equal(down.skipped, undefined);
      assert.deepEqual(await tree(back), await tree(src));
      // a single file too
      await rsm.callJson("docker_upload", {
        ...h,
        local_path: join(src, "run.sh"),
        remote_path: "/tmp/one.sh",
      });
      assert.equal((await d.cli(["exec", "box", "stat", "-c", "%a", "/tmp/one.sh"])).trim(), "755");
      const one = join(work, "one.sh");
      const r = await rsm.callJson("docker_download", {
        ...h,
        remote_path: "/tmp/one.sh",
        local_path: one,
      });
      assert.deepEqual(r, { bytes: 18, files: 1 });
      assert.equal(await Deno.readTextFile(one), "#!/bin/sh\necho hi\n");
    });

    await t.step(
      "a container directory with a symlink to / and a link to ../x writes nothing outside the destination",
      async () => {
        await d.cli([
          "exec",
          "box",
          "sh",
          "-c",
          "mkdir -p /evil && echo ok > /evil/fine && ln -s / /evil/root && ln -s ../x /evil/up && ln -s /etc/passwd /evil/pw",
        ]);
        const area = join(work, "area");
        await Deno.mkdir(area);
        const dest = join(area, "dest");
        const r = await rsm.callJson("docker_download", {
          ...h,
          remote_path: "/evil",
          local_path: dest,
        });
        assert.deepEqual(await tree(area), { "dest": "dir 755", "dest/fine": "file 644 ok\n" });
        assert.deepEqual(r.skipped.sort(), [
          "evil/pw -> /etc/passwd",
          "evil/root -> /",
          "evil/up -> ../x",
        ]);
        // a second download onto the same place does not follow anything either
        await rsm.callJson("docker_download", { ...h, remote_path: "/evil", local_path: dest });
        assert.deepEqual(await tree(area), { "dest": "dir 755", "dest/fine": "file 644 ok\n" });
      },
    );

    await t.step("bad paths are clear errors and uploads are audited", async () => {
      const missing = await rsm.callError("docker_download", {
        ...h,
        remote_path: "/no/such",
        local_path: join(work, "z"),
      });
      assert.match(missing, /Cannot download box:\/no\/such/);
      const rel = await rsm.callError("docker_upload", {
        ...h,
        local_path: work,
        remote_path: "relative/path",
      });
      assert.match(rel, /must be absolute/);
      const nolocal = await rsm.callError("docker_upload", {
        ...h,
        local_path: join(work, "nope"),
        remote_path: "/tmp/x",
      });
      assert.match(nolocal, /Cannot upload .*nope/);
      const audit = await Deno.readTextFile(join(rsm.tmp.rsmDir, "audit.log"));
      assert.match(audit, /"tool":"docker_upload".*"path":"\/opt\/app\/tree"/);
    });

    await Deno.remove(work, { recursive: true });
  },
);
