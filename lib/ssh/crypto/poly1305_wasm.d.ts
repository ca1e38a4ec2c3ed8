/** ssh2's Emscripten factory for its WebAssembly Poly1305 (untyped upstream). */
declare const createPoly1305: () => Promise<unknown>;
export default createPoly1305;
