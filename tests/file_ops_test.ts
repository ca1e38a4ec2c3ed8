/**
 * File tools over a real sshd's SFTP subsystem (issue 6, acceptance 1, 2 and 6): write/read
 * round trips, append, mode, paging past the output bound, binary refusal, list/stat/lstat,
 * mkdir, chmod, rename, delete, and errors that name the path. The remote user is a
 * throw-away non-root user; the test (root) checks the results directly on disk.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { need, testIf } from "./support/env.ts";
import { createUser, startSshd } from "./support/sshd.ts";
import { rsmWithEnv } from "./support/ssh_test_helpers.ts";

const missing = await need(["sshd", "ssh-keygen", "useradd"], true);

testIf(missing, "the ssh_file tools read, write and manage remote files", async (t) => {
  await using user = await createUser();
  await using sshd = await startSshd();
  await using rsm = await rsmWithEnv();
  await rsm.callJson("ssh_connect", {
    id: "box",
    spec: { user: user.name, addresses: [sshd.address], auth: { key_path: user.keyPath } },
  });
  const call = (tool: string, args: Record<string, unknown>) =>
    rsm.callJson(tool, { session_id: "box", ...args });
  const text = (tool: string, args: Record<string, unknown>) =>
    rsm.call(tool, { session_id: "box", ...args });
  const fail = (tool: string, args: Record<string, unknown>) =>
    rsm.callError(tool, { session_id: "box", ...args });
  const h = user.home;
  const own = (p: string) => Deno.chown(p, user.uid, user.uid);
  const perm = async (p: string) => (await Deno.lstat(p)).mode! & 0o7777;

  await t.step("write then read round-trips unicode text", async () => {
    const body = 'héllo wörld ✓ 日本語 "quoted" \\ back\ttab\n🙂 second line\n';
    const w = await call("ssh_file_write", { path: `${h}/u.txt`, data: body });
    assert.equal(w.bytes_written, new TextEncoder().encode(body).length);
    assert.equal(await Deno.readTextFile(`${h}/u.txt`), body);
    const r = await call("ssh_file_read", { path: `${h}/u.txt` });
    assert.equal(r.data, body);
    assert.equal(r.eof, true);
    assert.equal(r.bytes, w.bytes_written);
    assert.equal(r.next_offset, undefined);
    const rel = await call("ssh_file_read", { path: "u.txt" }); // relative to the home
    assert.equal(rel.data, body);
    const tilde = await call("ssh_file_read", { path: "~/u.txt" });
    assert.equal(tilde.data, body);
  });

  await t.step("append adds to the end", async () => {
    await call("ssh_file_write", { path: `${h}/a.txt`, data: "one\n" });
    await call("ssh_file_write", { path: `${h}/a.txt`, data: "two\n", append: true });
    await call("ssh_file_write", { path: `${h}/new-by-append.txt`, data: "x", append: true });
    assert.equal(await Deno.readTextFile(`${h}/a.txt`), "one\ntwo\n");
    assert.equal(await Deno.readTextFile(`${h}/new-by-append.txt`), "x");
  });

  await t.step("mode on write sets the permission bits, new or existing", async () => {
    await call("ssh_file_write", { path: `${h}/m.txt`, data: "s", mode: "0600" });
    assert.equal(await perm(`${h}/m.txt`), 0o600);
    await call("ssh_file_write", { path: `${h}/m.txt`, data: "t", mode: "0o751" });
    assert.equal(await perm(`${h}/m.txt`), 0o751);
    const err = await fail("ssh_file_write", { path: `${h}/m.txt`, data: "t", mode: "999" });
    assert.match(err, /999/);
  });

  await t.step("read pages a file larger than the output bound; pages join", async () => {
    const line = (i: number) => `${i}: ünïcödé ✓ 日本 "q" \\ tab\t${"x".repeat(i % 50)}\n`;
    let body = "";
    for (let i = 0; body.length < 200_000; i++) body += line(i);
    await Deno.writeTextFile(`${h}/big.txt`, body);
    await own(`${h}/big.txt`);
    const size = new TextEncoder().encode(body).length;
    let offset = 0;
    let joined = "";
    let pages = 0;
    for (;;) {
      const raw = await text("ssh_file_read", { path: `${h}/big.txt`, offset });
      assert.ok(new TextEncoder().encode(raw).length <= 32 * 1024, `page ${pages} too big`);
      const r = JSON.parse(raw);
      assert.equal(r.offset, offset);
      assert.equal(r.size, size);
      joined += r.data;
      pages++;
      if (r.eof) break;
      assert.equal(r.next_offset, offset + r.bytes);
      assert.ok(r.bytes > 8000, `a page carries a useful amount (${r.bytes})`);
      offset = r.next_offset;
    }
    assert.ok(pages >= 7, `${pages} pages`);
    assert.equal(joined, body);
    const small = await call("ssh_file_read", { path: `${h}/big.txt`, offset: 3, length: 10 });
    // 10 bytes from offset 3 end inside "é": only whole characters come back
    assert.equal(small.data, "ünïcöd");
    assert.equal(small.bytes, 9);
    assert.equal(small.eof, false);
    assert.equal(small.next_offset, 12);
    // an offset inside a multi-byte character moves to the next whole character
    const u = new TextEncoder().encode(body).indexOf(0xc3);
    const mid = await call("ssh_file_read", { path: `${h}/big.txt`, offset: u + 1, length: 5 });
    assert.equal(mid.offset, u + 2);
    const past = await call("ssh_file_read", { path: `${h}/big.txt`, offset: size + 10 });
    assert.equal(past.data, "");
    assert.equal(past.eof, true);
  });

  await t.step("a binary file is refused with a pointer to ssh_download", async () => {
    await Deno.writeFile(`${h}/bin.dat`, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff]));
    await own(`${h}/bin.dat`);
    const err = await fail("ssh_file_read", { path: `${h}/bin.dat` });
    assert.match(err, /bin\.dat/);
    assert.match(err, /binary/);
    assert.match(err, /ssh_download/);
    await Deno.writeFile(`${h}/latin1.txt`, new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    await own(`${h}/latin1.txt`);
    assert.match(await fail("ssh_file_read", { path: `${h}/latin1.txt` }), /ssh_download/);
  });

  await t.step("list shows name, size, mode, mod_time, is_dir and symlink targets", async () => {
    const d = `${h}/ls`;
    await Deno.mkdir(`${d}/sub`, { recursive: true });
    await Deno.writeTextFile(`${d}/f.txt`, "12345");
    await Deno.chmod(`${d}/f.txt`, 0o644);
    await Deno.chmod(`${d}/sub`, 0o755);
    await Deno.symlink("f.txt", `${d}/link`);
    await Deno.symlink("/etc", `${d}/etc-link`);
    const rows = await call("ssh_file_list", { path: d });
    const by = Object.fromEntries(rows.map((r: { name: string }) => [r.name, r]));
    assert.deepEqual(Object.keys(by).sort(), ["etc-link", "f.txt", "link", "sub"]);
    assert.equal(by["f.txt"].size, 5);
    assert.equal(by["f.txt"].mode, "-rw-r--r--");
    assert.equal(by["f.txt"].perm, "0644");
    assert.equal(by["f.txt"].is_dir, false);
    assert.equal(by["f.txt"].target, "", "rows of a listing with links stay one table");
    const mtime = (await Deno.stat(`${d}/f.txt`)).mtime!.getTime();
    assert.ok(Math.abs(Date.parse(by["f.txt"].mod_time) - mtime) < 1500);
    assert.match(by["f.txt"].mod_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(by.sub.mode, "drwxr-xr-x");
    assert.equal(by.sub.is_dir, true);
    assert.equal(by.link.target, "f.txt");
    assert.match(by.link.mode, /^l/);
    assert.equal(by["etc-link"].target, "/etc");
    assert.equal(by["etc-link"].is_dir, false, "a symlink is listed, not followed");
  });

  await t.step("stat follows symlinks, lstat describes the link", async () => {
    const s = await call("ssh_file_stat", { path: `${h}/ls/link` });
    assert.equal(s.mode, "-rw-r--r--");
    assert.equal(s.size, 5);
    assert.equal(s.target, undefined);
    const l = await call("ssh_file_stat", { path: `${h}/ls/link`, lstat: true });
    assert.match(l.mode, /^lrwxrwxrwx$/);
    assert.equal(l.target, "f.txt");
    const d = await call("ssh_file_stat", { path: `${h}/ls/etc-link` });
    assert.equal(d.is_dir, true);
  });

  await t.step("mkdir creates one directory, or parents with recursive", async () => {
    assert.equal(await text("ssh_file_mkdir", { path: `${h}/one` }), `created ${h}/one`);
    assert.ok((await Deno.stat(`${h}/one`)).isDirectory);
    const err = await fail("ssh_file_mkdir", { path: `${h}/p/q/r` });
    assert.match(err, /p\/q\/r/);
    assert.match(err, /recursive/);
    await text("ssh_file_mkdir", { path: `${h}/p/q/r`, recursive: true });
    assert.ok((await Deno.stat(`${h}/p/q/r`)).isDirectory);
    await text("ssh_file_mkdir", { path: `${h}/p/q/r`, recursive: true }); // exists: fine
    assert.match(await fail("ssh_file_mkdir", { path: `${h}/one` }), /already exists/);
    assert.match(
      await fail("ssh_file_mkdir", { path: `${h}/a.txt/x`, recursive: true }),
      /a\.txt/,
    );
  });

  await t.step('chmod accepts "0640", "640", "0o640" and explains "999"', async () => {
    for (const mode of ["0640", "640", "0o640"]) {
      await Deno.chmod(`${h}/a.txt`, 0o600);
      assert.equal(await text("ssh_file_chmod", { path: `${h}/a.txt`, mode }), "chmod ok");
      assert.equal(await perm(`${h}/a.txt`), 0o640, mode);
    }
    const err = await fail("ssh_file_chmod", { path: `${h}/a.txt`, mode: "999" });
    assert.match(err, /"999"/);
    assert.match(err, /octal/);
    assert.equal(await perm(`${h}/a.txt`), 0o640);
    assert.match(await fail("ssh_file_chmod", { path: `${h}/nope`, mode: "644" }), /nope/);
  });

  await t.step("rename refuses an existing target unless overwrite", async () => {
    await Deno.writeTextFile(`${h}/r1`, "first");
    await Deno.writeTextFile(`${h}/r2`, "second");
    await own(`${h}/r1`);
    await own(`${h}/r2`);
    const err = await fail("ssh_file_rename", { from: `${h}/r1`, to: `${h}/r2` });
    assert.match(err, /r2/);
    assert.match(err, /overwrite/);
    assert.equal(await Deno.readTextFile(`${h}/r2`), "second");
    assert.match(
      await text("ssh_file_rename", { from: `${h}/r1`, to: `${h}/r2`, overwrite: true }),
      /^renamed/,
    );
    assert.equal(await Deno.readTextFile(`${h}/r2`), "first");
    await assert.rejects(Deno.stat(`${h}/r1`));
    await text("ssh_file_rename", { from: `${h}/r2`, to: `${h}/one/r3` });
    assert.equal(await Deno.readTextFile(`${h}/one/r3`), "first");
    assert.match(await fail("ssh_file_rename", { from: `${h}/gone`, to: `${h}/x` }), /gone/);
  });

  await t.step("delete removes a file, an empty dir, and a tree with recursive", async () => {
    assert.equal(await text("ssh_file_delete", { path: `${h}/u.txt` }), `deleted ${h}/u.txt`);
    await assert.rejects(Deno.stat(`${h}/u.txt`));
    await Deno.mkdir(`${h}/empty`);
    await own(`${h}/empty`);
    await text("ssh_file_delete", { path: `${h}/empty` });
    await assert.rejects(Deno.stat(`${h}/empty`));
    // a tree holding a symlink to a directory outside: the outside stays intact
    const outside = await Deno.makeTempDir({ prefix: "rsm-outside-" });
    try {
      await Deno.writeTextFile(`${outside}/keep.txt`, "keep");
      await Deno.chmod(outside, 0o777);
      await Deno.mkdir(`${h}/tree/a/b`, { recursive: true });
      await Deno.writeTextFile(`${h}/tree/a/b/f`, "f");
      await Deno.writeTextFile(`${h}/tree/g`, "g");
      await Deno.symlink(outside, `${h}/tree/a/out`);
      await new Deno.Command("chown", { args: ["-hR", `${user.name}:`, `${h}/tree`] }).output();
      const err = await fail("ssh_file_delete", { path: `${h}/tree` });
      assert.match(err, /not empty/);
      assert.match(err, /recursive/);
      assert.match(
        await text("ssh_file_delete", { path: `${h}/tree`, recursive: true }),
        /^deleted .*tree/,
      );
      await assert.rejects(Deno.lstat(`${h}/tree`));
      assert.equal(await Deno.readTextFile(`${outside}/keep.txt`), "keep");
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
    assert.match(await fail("ssh_file_delete", { path: "/" }), /root/);
  });

  await t.step("errors name the path and say why", async () => {
    const gone = await fail("ssh_file_read", { path: `${h}/no-such-file.txt` });
    assert.match(gone, /no-such-file\.txt/);
    assert.match(gone, /no such file/i);
    const denied = await fail("ssh_file_read", { path: "/etc/shadow" });
    assert.match(denied, /\/etc\/shadow/);
    assert.match(denied, /permission denied/i);
    const deniedWrite = await fail("ssh_file_write", { path: "/root/rsm-nope.txt", data: "x" });
    assert.match(deniedWrite, /\/root\/rsm-nope\.txt/);
    assert.match(deniedWrite, /permission denied/i);
    const dir = await fail("ssh_file_read", { path: `${h}/one` });
    assert.match(dir, new RegExp(`${h}/one`));
    assert.match(dir, /is a directory/);
    const dirWrite = await fail("ssh_file_write", { path: `${h}/one`, data: "x" });
    assert.match(dirWrite, /is a directory/);
    const notDir = await fail("ssh_file_list", { path: `${h}/a.txt` });
    assert.match(notDir, /a\.txt/);
    assert.match(notDir, /not a directory/);
    const listGone = await fail("ssh_file_list", { path: `${h}/nodir` });
    assert.match(listGone, /nodir/);
    assert.match(await fail("ssh_file_stat", { session_id: "nobox", path: "/" }), /nobox/);
  });

  await t.step("file-changing calls are audited with their path", async () => {
    const audit = await Deno.readTextFile(join(rsm.tmp.rsmDir, "audit.log"));
    const lines = audit.trim().split("\n").map((l) => JSON.parse(l));
    const writes = lines.filter((l) => l.tool === "ssh_file_write");
    assert.ok(writes.some((l) => l.path === `${h}/a.txt` && l.target === "box"));
    assert.ok(writes.some((l) => l.error && /permission denied/i.test(l.error)));
    for (const tool of ["ssh_file_delete", "ssh_file_mkdir", "ssh_file_chmod", "ssh_file_rename"]) {
      assert.ok(lines.some((l) => l.tool === tool && l.path), `${tool} audited`);
    }
  });
});
