import assert from "node:assert/strict";
import { ByteRing } from "../lib/term/ring.ts";
import { completeLength } from "../lib/output/mod.ts";
import { stripAnsi } from "../lib/term/ansi.ts";
import { escapeForPrintfB } from "../lib/term/run.ts";
import { unescapeOutput } from "../lib/ssh/shell/tmux.ts";
import {
  fromLatin1,
  latin1,
  looksLikeShell,
  MarkFilter,
  promptLooking,
} from "../lib/term/integration.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("a 5 MiB burst keeps the newest 1 MiB and counts the dropped bytes", () => {
  const ring = new ByteRing();
  const line = enc("0123456789abcdef".repeat(64)); // 1 KiB
  for (let i = 0; i < 5 * 1024; i++) ring.push(line);
  ring.push(enc("THE END\n"));
  assert.equal(ring.size, 1 << 20);
  assert.equal(ring.droppedTotal, 5 * 1024 * 1024 + 8 - (1 << 20));
  const { text, dropped } = ring.take();
  assert.equal(dropped, ring.droppedTotal);
  assert.ok(text.endsWith("THE END\n"));
  assert.equal(text.length, 1 << 20);
  assert.equal(ring.take().dropped, 0, "dropped is reported once");
});

Deno.test("multi-byte UTF-8 characters split across chunks come out whole", () => {
  const ring = new ByteRing();
  const all = enc("é€😀".repeat(1000));
  let got = "";
  // feed in awkward chunk sizes and read after every chunk
  for (let i = 0, step = 1; i < all.length; i += step, step = (step % 7) + 1) {
    ring.push(all.subarray(i, i + step));
    const t = ring.take().text;
    assert.ok(!t.includes("\ufffd"), `replacement char after ${i}`);
    got += t;
  }
  assert.equal(got, "é€😀".repeat(1000));
});

Deno.test("dropping the oldest bytes never leaves half a character at the front", () => {
  const ring = new ByteRing(10);
  ring.push(enc("€€€€€")); // 15 bytes: the ring keeps 10, the first whole char starts at 1
  const { text } = ring.take();
  assert.ok(!text.includes("\ufffd"));
  assert.equal(text, "€€€");
});

Deno.test("take with maxBytes cuts on a character boundary and keeps the rest", () => {
  const ring = new ByteRing();
  ring.push(enc("ab€cd"));
  assert.equal(ring.take(false, 3).text, "ab");
  assert.equal(ring.take().text, "€cd");
});

Deno.test("the read budget counts escape codes at their JSON-escaped size", () => {
  const ring = new ByteRing();
  ring.push(enc("\x1b".repeat(100) + "tail"));
  assert.equal(ring.take(false, 60).text, "\x1b".repeat(10));
  assert.equal(ring.size, 94);
  assert.equal(ring.take(false, 1000).text, "\x1b".repeat(90) + "tail");
});

Deno.test("completeLength holds back an incomplete trailing sequence", () => {
  assert.equal(completeLength(enc("abc")), 3);
  assert.equal(completeLength(enc("a€").subarray(0, 3)), 1);
  assert.equal(completeLength(enc("😀").subarray(0, 3)), 0);
  assert.equal(completeLength(enc("😀")), 4);
});

Deno.test("strip_ansi removes colours, cursor moves, titles and bracketed paste", () => {
  const raw = "\x1b]0;user@host: ~\x07\x1b[?2004h\x1b[01;32mgreen\x1b[0m \x1b[2J\x1b[1;1Hx\r\n";
  assert.equal(stripAnsi(raw), "green x\n");
});

Deno.test("commands are escaped for printf %b without quotes, newlines or backslashes", () => {
  const e = escapeForPrintfB("echo 'a'\n\\ é $X");
  assert.ok(!/['\n\\]\s/.test(e.replace(/\\0\d{3}/g, "")));
  assert.equal(e, "echo \\0047a\\0047\\0012\\0134 é \\0044X");
});

Deno.test("tmux %output escapes decode to the original bytes", () => {
  const out = unescapeOutput(enc("a\\015\\012b\\\\c\\033[0m"));
  assert.equal(new TextDecoder().decode(out), "a\r\nb\\c\x1b[0m");
});

Deno.test("shell integration marks are taken out of the stream, even cut across chunks", () => {
  const f = new MarkFilter();
  const raw = "out\r\n\x1b]133;D;7;rsm=abcd1234\x07\x1b]7;file:///tmp/a%20b\x07$ ";
  const got: string[] = [];
  const marks = [];
  for (let cut = 0; cut <= raw.length; cut += 5) {
    const r = f.push(enc(raw.slice(cut, cut + 5)));
    got.push(new TextDecoder().decode(r.bytes));
    marks.push(...r.marks);
  }
  assert.equal(got.join(""), "out\r\n$ ");
  assert.deepEqual(marks, [
    { kind: "end", code: 7, token: "abcd1234" },
    { kind: "cwd", path: "/tmp/a b" },
  ]);
  // other escape sequences pass untouched
  const colours = enc("\x1b[31mred\x1b[0m\x1b]0;title\x07");
  assert.deepEqual(new MarkFilter().push(colours).bytes, colours);
});

Deno.test("prompt-looking text: questions, passwords, pagers and REPLs, not output", () => {
  for (
    const p of [
      "password: ",
      "[sudo] password for ann: ",
      "Continue? [y/N] ",
      "(END)",
      ">>> ",
      "... ",
      "In [3]: ",
      "mysql> ",
      "Overwrite? ",
    ]
  ) {
    assert.ok(promptLooking(p), p);
  }
  for (const p of ["", "compiling main.c", "50%", "user@host:~$ ", "total 12"]) {
    assert.ok(!promptLooking(p), p);
  }
});

Deno.test("only programs named like shells get integration typed into them", () => {
  assert.ok(looksLikeShell(["/bin/sh"]));
  assert.ok(looksLikeShell("busybox sh"));
  assert.ok(looksLikeShell("bash --norc -i"));
  assert.ok(!looksLikeShell("bash -c 'echo hi'"));
  assert.ok(!looksLikeShell("python3"));
  assert.ok(!looksLikeShell("stty -echo; exec cat"));
  assert.ok(!looksLikeShell(["sh", "-c", "sleep 1"]));
});

Deno.test("an escape at the very end of a chunk is held, then flushed as output", () => {
  const f = new MarkFilter();
  const r = f.push(enc("prompt $ \x1b"));
  assert.equal(new TextDecoder().decode(r.bytes), "prompt $ ");
  assert.equal(f.holding, true);
  assert.equal(new TextDecoder().decode(f.flush()), "\x1b");
  assert.equal(f.holding, false);
});

Deno.test("latin1 maps each byte to the char of that code and back, for all 256 bytes", () => {
  const bytes = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
  const text = latin1(bytes);
  assert.equal(text.length, 512);
  for (let i = 0; i < 512; i++) assert.equal(text.charCodeAt(i), i % 256);
  // a view into a larger buffer decodes only its own bytes
  assert.equal(latin1(bytes.subarray(0x80, 0x83)), "\x80\x81\x82");
  assert.deepEqual(fromLatin1(text), bytes);
  const big = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 256);
  assert.deepEqual(fromLatin1(latin1(big)), big);
});
