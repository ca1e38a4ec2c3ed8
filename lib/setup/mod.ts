/**
 * `rsm setup`: registers `rsm stdio` in every detected MCP client (SPEC §6).
 * (Stub: filled in by the distribution work.) Returns the process exit code.
 */
export function setupCommand(_args: string[]): Promise<number> {
  console.error("rsm setup: not available yet");
  return Promise.resolve(1);
}
