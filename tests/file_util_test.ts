/** Pure helpers of the file tools: mode strings, octal parsing, safe names, remote paths. */
import assert from "node:assert/strict";
import { modeString, octal, parseMode, remotePath, safeName } from "../lib/ssh/sftp_util.ts";

Deno.test("modeString renders ls -l style modes with special bits", () => {
  assert.equal(modeString(0o100644), "-rw-r--r--");
  assert.equal(modeString(0o040755), "drwxr-xr-x");
  assert.equal(modeString(0o120777), "lrwxrwxrwx");
  assert.equal(modeString(0o104755), "-rwsr-xr-x");
  assert.equal(modeString(0o102644), "-rw-r-Sr--");
  assert.equal(modeString(0o041777), "drwxrwxrwt");
  assert.equal(modeString(0o010600), "prw-------");
  assert.equal(octal(0o100640), "0640");
  assert.equal(octal(0o104755), "4755");
});

Deno.test('parseMode accepts "0755", "755", "0o755" and refuses "999"', () => {
  for (const s of ["0755", "755", "0o755", " 755 "]) assert.equal(parseMode(s), 0o755, s);
  assert.equal(parseMode("4755"), 0o4755);
  assert.equal(parseMode("04755"), 0o4755);
  assert.equal(parseMode("0"), 0);
  for (const bad of ["999", "rwx", "0x1ff", "", "77777", "-1", "7.5"]) {
    assert.throws(() => parseMode(bad), (e: Error) => e.message.includes(`"${bad}"`), bad);
  }
  assert.throws(() => parseMode("999"), /octal/);
});

Deno.test("safeName refuses anything but one plain path component", () => {
  for (const ok of ["a", "a b", "ünï", ".hidden", "..x", "x.."]) assert.ok(safeName(ok), ok);
  for (const bad of ["", ".", "..", "a/b", "/etc", "../x", "a\0b"]) assert.ok(!safeName(bad), bad);
});

Deno.test("remotePath maps ~ to the SFTP start directory", () => {
  assert.equal(remotePath("~"), ".");
  assert.equal(remotePath("~/a/b"), "a/b");
  assert.equal(remotePath("/abs"), "/abs");
  assert.equal(remotePath("~user/x"), "~user/x");
});
