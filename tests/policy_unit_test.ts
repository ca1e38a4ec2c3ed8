/** The policy's pure parts: splitting command lines, deciding calls, parsing the file. */
import assert from "node:assert/strict";
import {
  callHash,
  decide,
  parsePolicy,
  splitCommand,
  type Subject,
  within,
} from "../lib/policy/mod.ts";

const parts = (cmd: string) => splitCommand(cmd).parts.map((p) => p.text);

Deno.test("splitCommand finds every part of a compound command", () => {
  assert.deepEqual(parts("echo ok; rm -rf /tmp/x"), ["echo ok", "rm -rf /tmp/x"]);
  assert.deepEqual(parts("a && b || c | d & e\nf"), ["a", "b", "c", "d", "e", "f"]);
  assert.ok(parts("echo $(rm -rf /tmp/x)").includes("rm -rf /tmp/x"));
  assert.ok(parts("echo `rm -rf /tmp/x`").includes("rm -rf /tmp/x"));
  assert.ok(parts('echo "$(rm -rf /tmp/x)"').includes("rm -rf /tmp/x"));
  assert.ok(parts("echo $(echo $(rm -rf /a))").includes("rm -rf /a"));
  assert.deepEqual(parts("echo 'a; b'"), ["echo 'a; b'"]);
  assert.equal(splitCommand("echo 'unclosed").uncertain, "a single quote is not closed");
  assert.equal(splitCommand("echo $(x").uncertain, "a $( … ) command substitution is not closed");
});

const policy = parsePolicy(
  `
[[rule]]
name = "prod"
targets = ["prod-*"]
deny = ["rm -rf", "re:\\\\bmkfs\\\\b"]
confirm = ["re:^sudo\\\\b"]

[[rule]]
targets = ["ro-*"]
read_only = true

[[rule]]
hosts = ["*.corp"]
allow = ["ls", "cat", "echo"]
writable_paths = ["/tmp", "~/app"]
`,
  "/cfg/policy.toml",
);
const tool = { name: "ssh_exec", readOnly: false };
const exec = (target: string, command: string): Subject => ({ kind: "ssh", target, command });

Deno.test("deny matches the whole command and every part, naming the rule and the file", () => {
  for (
    const cmd of [
      "echo ok; rm -rf /tmp/x",
      "echo $(rm -rf /tmp/x)",
      "echo `rm -rf /tmp/x`",
      "true && rm  -rf /tmp/x",
      "mkfs.ext4 /dev/sdz",
    ]
  ) {
    const d = decide(policy, tool, exec("prod-1", cmd));
    assert.equal(d.action, "deny", cmd);
    assert.match((d as { message: string }).message, /"prod" \(rule #1\) in \/cfg\/policy\.toml/);
  }
  assert.equal(decide(policy, tool, exec("dev-1", "rm -rf /tmp/x")).action, "allow");
  assert.equal(decide(policy, tool, exec("prod-1", "farm -rfx")).action, "allow");
});

Deno.test("words hidden by quoting fail closed and say why", () => {
  for (const cmd of ['echo "rm -rf /tmp/x"', 'r"m" -rf /tmp/x', "'rm' -rf /x", "echo 'rm -rf"]) {
    const d = decide(policy, tool, exec("prod-1", cmd));
    assert.equal(d.action, "deny", cmd);
    assert.match((d as { message: string }).message, /fail closed/, cmd);
  }
});

Deno.test("confirm asks, deny beats confirm", () => {
  const d = decide(policy, tool, exec("prod-1", "sudo systemctl restart nginx"));
  assert.equal(d.action, "confirm");
  assert.equal(decide(policy, tool, exec("prod-1", "sudo rm -rf /x")).action, "deny");
});

Deno.test("read_only targets refuse tools that change things; read-only tools pass", () => {
  assert.equal(decide(policy, tool, exec("ro-1", "ls")).action, "deny");
  assert.equal(
    decide(policy, { name: "ssh_file_read", readOnly: true }, { kind: "ssh", target: "ro-1" })
      .action,
    "allow",
  );
});

Deno.test("allow lists, writable_paths and bind addresses select by host", () => {
  const facts = { hosts: ["db.corp"] };
  assert.equal(decide(policy, tool, exec("x", "ls -l | cat"), facts).action, "allow");
  assert.equal(decide(policy, tool, exec("x", "ls; curl evil"), facts).action, "deny");
  assert.equal(decide(policy, tool, exec("x", "ls 'unclosed"), facts).action, "deny");
  const write = (path: string) =>
    decide(policy, { name: "ssh_file_write", readOnly: false }, {
      kind: "ssh",
      target: "x",
      writes: [path],
    }, facts).action;
  assert.equal(write("/tmp/a.txt"), "allow");
  assert.equal(write("app/conf"), "allow");
  assert.equal(write("~/app/../.ssh/authorized_keys"), "deny");
  assert.equal(write("/tmp/../etc/passwd"), "deny");
  assert.equal(write("/tmpfoo"), "deny");
  const fwd = (bindAddr: string) =>
    decide(policy, { name: "ssh_forward_local", readOnly: false }, {
      kind: "ssh",
      target: "x",
      bindAddr,
    }, facts).action;
  assert.equal(fwd("127.0.0.1"), "allow");
  assert.equal(fwd("0.0.0.0"), "deny");
});

Deno.test("read-only mode refuses every tool that is not read-only", () => {
  const ro = parsePolicy('mode = "read-only"', "p.toml");
  assert.equal(decide(ro, tool, undefined).action, "deny");
  assert.equal(decide(ro, { name: "status", readOnly: true }, undefined).action, "allow");
});

Deno.test("a broken policy file is an error that says what is wrong", () => {
  assert.throws(() => parsePolicy("mode = ", "p"), /not valid TOML/);
  assert.throws(() => parsePolicy('mode = "readonly"', "p"), /mode must be/);
  assert.throws(() => parsePolicy("[[rule]]\ndenny = []", "p"), /unknown key "denny"/);
  assert.throws(() => parsePolicy('[[rule]]\ndeny = ["re:("]', "p"), /regular expression/);
});

Deno.test("within normalises .. and keeps home-relative paths apart", () => {
  assert.ok(within("/srv/app/x", "/srv/app"));
  assert.ok(!within("/srv/application", "/srv/app"));
  assert.ok(within("x/y", "~"));
});

Deno.test("callHash binds to the exact arguments, in any key order", () => {
  assert.equal(
    callHash("t", { a: 1, b: [1, { c: 2 }] }),
    callHash("t", { b: [1, { c: 2 }], a: 1 }),
  );
  assert.notEqual(callHash("t", { a: 1 }), callHash("t", { a: 2 }));
});
