/** The part of ssh2's `lib/protocol/crypto.js` (untyped upstream) that rsm replaces. */
declare const ssh2Crypto: {
  // deno-lint-ignore no-explicit-any
  createCipher: (config: any) => unknown;
  // deno-lint-ignore no-explicit-any
  createDecipher: (config: any) => unknown;
};
export default ssh2Crypto;
