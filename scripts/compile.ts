/**
 * `deno task compile`: builds `rsm` for the five release targets with the permission set of
 * deno.json (`-P=rsm`, the same set `deno task rsm` runs with), then writes `dist/SHA256SUMS`.
 *
 *   deno task compile                      all five targets
 *   deno task compile --target linux-x64   one (repeatable)
 *   deno task compile --dry-run [--json]   print the `deno compile` command lines, run nothing
 *
 * Outputs: `dist/rsm-<os>-<arch>` (os = linux | darwin | windows, arch = x64 | arm64; Windows
 * gets `.exe` from deno compile) — the asset names scripts/install.sh downloads.
 * `deno compile` downloads its `denort` runtime per target, so it needs network access to
 * dl.deno.land (the release workflow has it; some build machines do not).
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** One release target. */
export interface Target {
  /** `<os>-<arch>`, e.g. `linux-x64`. */
  name: string;
  /** Rust target triple for `deno compile --target`. */
  triple: string;
  /** File name deno compile produces in dist/ (with `.exe` on Windows). */
  file: string;
}

/** The five targets of a release. */
export const TARGETS: Target[] = [
  { name: "linux-x64", triple: "x86_64-unknown-linux-gnu", file: "rsm-linux-x64" },
  { name: "linux-arm64", triple: "aarch64-unknown-linux-gnu", file: "rsm-linux-arm64" },
  { name: "darwin-x64", triple: "x86_64-apple-darwin", file: "rsm-darwin-x64" },
  { name: "darwin-arm64", triple: "aarch64-apple-darwin", file: "rsm-darwin-arm64" },
  { name: "windows-x64", triple: "x86_64-pc-windows-msvc", file: "rsm-windows-x64.exe" },
];

/** The permission set both `deno task rsm` and the compiled binary use (deno.json). */
export const PERMISSION_FLAGS = ["-P=rsm"];

/** The argv that compiles one target (run with cwd = the project root). */
export function compileArgv(target: Target): [program: string, ...args: string[]] {
  return [
    "deno",
    "compile",
    ...PERMISSION_FLAGS,
    "--target",
    target.triple,
    "--output",
    `dist/rsm-${target.name}`,
    "main.ts",
  ];
}

/**
 * The permission flags in an argv (`-P…`, `--permission-set…`, `-A`, `--allow-*`, `--deny-*`),
 * so a check can compare the compile task with the run task.
 */
export function permissionFlags(argv: string[]): string[] {
  return argv.filter((a) =>
    /^(-P|--permission-set)(=|$)/.test(a) || a === "-A" || /^--(allow|deny)-/.test(a)
  );
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      target: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log("Usage: deno task compile [--target OS-ARCH]... [--dry-run [--json]]");
    console.log(`Targets: ${TARGETS.map((t) => t.name).join(", ")}`);
    return 0;
  }
  const wanted = values.target ?? TARGETS.map((t) => t.name);
  const unknown = wanted.filter((w) => !TARGETS.some((t) => t.name === w));
  if (unknown.length) {
    console.error(
      `compile: unknown target ${unknown.join(", ")}; use ${TARGETS.map((t) => t.name).join(", ")}`,
    );
    return 2;
  }
  const targets = TARGETS.filter((t) => wanted.includes(t.name));
  const root = fileURLToPath(new URL("..", import.meta.url));
  if (values["dry-run"]) {
    if (values.json) {
      const plan = targets.map((t) => ({
        target: t.name,
        output: `dist/${t.file}`,
        argv: compileArgv(t),
      }));
      console.log(JSON.stringify(plan, null, 2));
    } else {
      for (const t of targets) console.log(compileArgv(t).map(shellQuote).join(" "));
    }
    return 0;
  }
  await Deno.mkdir(join(root, "dist"), { recursive: true });
  for (const t of targets) {
    const [cmd, ...argv] = compileArgv(t);
    console.error(`compile: ${t.name}: ${[cmd, ...argv].map(shellQuote).join(" ")}`);
    const out = await new Deno.Command(cmd, {
      args: argv,
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    })
      .output();
    if (!out.success) {
      console.error(`compile: ${t.name} failed (exit ${out.code})`);
      return 1;
    }
  }
  // SHA256SUMS over every binary in dist/ (sha256sum format, read by install.sh)
  const lines: string[] = [];
  for (const t of TARGETS) {
    const path = join(root, "dist", t.file);
    try {
      lines.push(`${await sha256(path)}  ${t.file}`);
    } catch {
      // not built in this run
    }
  }
  await Deno.writeTextFile(join(root, "dist", "SHA256SUMS"), lines.join("\n") + "\n");
  console.error(`compile: wrote dist/SHA256SUMS (${lines.length} files)`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
