/**
 * Renders the Homebrew formula (packaging/homebrew/rsm.rb.in) for a release: the version from
 * deno.json, the repository, and each binary's SHA-256 from dist/SHA256SUMS. The release
 * workflow runs it after writing SHA256SUMS and publishes dist/rsm.rb (README "Install").
 *
 *   deno run --allow-read --allow-write scripts/homebrew.ts --repo OWNER/remote-shell-mcp
 *     [--sums dist/SHA256SUMS] [--out dist/rsm.rb]
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The release assets a formula installs, and their placeholders in the template. */
export const FORMULA_ASSETS: Record<string, string> = {
  "rsm-darwin-arm64": "SHA256_DARWIN_ARM64",
  "rsm-darwin-x64": "SHA256_DARWIN_X64",
  "rsm-linux-arm64": "SHA256_LINUX_ARM64",
  "rsm-linux-x64": "SHA256_LINUX_X64",
};

/** `sha256sum` output → {file: hex}. */
export function parseSums(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)\s*$/i.exec(line.trim());
    if (m?.[1] && m[2]) out[m[2]] = m[1].toLowerCase();
  }
  return out;
}

/** Fills `template`; throws when a value is missing or malformed, so no broken formula ships. */
export function renderFormula(
  template: string,
  values: { version: string; repo: string; sums: Record<string, string> },
): string {
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(values.version)) {
    throw new Error(`version "${values.version}" is not a release version like 1.2.3`);
  }
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(values.repo)) {
    throw new Error(`repo "${values.repo}" is not OWNER/NAME`);
  }
  const fill: Record<string, string> = { VERSION: values.version, REPO: values.repo };
  for (const [asset, key] of Object.entries(FORMULA_ASSETS)) {
    const sum = values.sums[asset];
    if (!sum || !/^[0-9a-f]{64}$/.test(sum)) throw new Error(`no SHA-256 for ${asset}`);
    fill[key] = sum;
  }
  const out = template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (all, key: string) => {
    const value = fill[key];
    if (value === undefined) {
      throw new Error(`unknown placeholder ${all} in the formula template`);
    }
    return value;
  });
  return out.replace("brew install OWNER/tap/rsm", `brew install ${tapName(values.repo)}/rsm`);
}

/** `owner/remote-shell-mcp` → `owner/tap` (the repository `owner/homebrew-tap`). */
export function tapName(repo: string): string {
  return `${repo.split("/")[0]}/tap`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      repo: { type: "string" },
      sums: { type: "string", default: join(ROOT, "dist", "SHA256SUMS") },
      out: { type: "string", default: join(ROOT, "dist", "rsm.rb") },
    },
  });
  if (!values.repo) {
    console.error("homebrew: --repo OWNER/NAME is required");
    Deno.exit(2);
  }
  const version = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).version;
  const template = await Deno.readTextFile(join(ROOT, "packaging", "homebrew", "rsm.rb.in"));
  const sums = parseSums(await Deno.readTextFile(values.sums));
  await Deno.writeTextFile(
    values.out,
    renderFormula(template, { version, repo: values.repo, sums }),
  );
  console.log(`homebrew: wrote ${values.out} for ${values.repo} v${version}`);
}
