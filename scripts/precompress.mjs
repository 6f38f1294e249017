#!/usr/bin/env node
// Writes a brotli (`.br`) and a gzip (`.gz`) sibling of every front-end file in the site's pkg
// directory, for the server to send as they are (src/server/delivery.rs explains why at build
// time). Run after `cargo leptos build` by `make release` and `make test`:
//
//   node scripts/precompress.mjs [pkg dir, default target/site/pkg]
//
// Node is already required by the build (npm's wasm-opt), and its zlib is the reference brotli.
// Brotli quality 11 (the maximum) for every file of a release build; files over 4 MiB only come
// from debug builds (a 16 MB debug wasm), where 11 would take ~30 s on two cores and 9 takes
// under a second. A sibling that would not be smaller is not written. Siblings whose original is
// gone (an earlier build's hashed names) are removed. Each file is written under a temporary
// name and renamed, so a running server never sends half of one.
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { join, extname } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const COMPRESSIBLE = new Set([".wasm", ".js", ".mjs", ".css", ".json", ".svg", ".html", ".txt"]);
const LARGE = 4 * 1024 * 1024;

const dir = process.argv[2] ?? "target/site/pkg";
if (!existsSync(dir) || !statSync(dir).isDirectory()) {
  console.error(`precompress: ${dir} is not a directory: run \`cargo leptos build\` first`);
  process.exit(1);
}

function* files(path) {
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) yield* files(full);
    else if (entry.isFile()) yield full;
  }
}

function writeAtomically(path, bytes) {
  const partial = `${path}.partial`;
  writeFileSync(partial, bytes);
  renameSync(partial, path);
}

/** Writes `path + suffix` when `encoded` is smaller than `raw`; removes a stale one otherwise. */
function sibling(path, suffix, raw, encoded) {
  if (encoded.length < raw.length) {
    writeAtomically(path + suffix, encoded);
    return encoded.length;
  }
  rmSync(path + suffix, { force: true });
  return raw.length;
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const started = Date.now();
for (const path of files(dir)) {
  if (path.endsWith(".br") || path.endsWith(".gz")) {
    if (!existsSync(path.slice(0, -3))) rmSync(path);
    continue;
  }
  if (!COMPRESSIBLE.has(extname(path))) continue;
  const raw = readFileSync(path);
  const quality = raw.length > LARGE ? 9 : constants.BROTLI_MAX_QUALITY;
  const br = brotliCompressSync(raw, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: quality,
      [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
      [constants.BROTLI_PARAM_MODE]: extname(path) === ".wasm" ? constants.BROTLI_MODE_GENERIC : constants.BROTLI_MODE_TEXT,
    },
  });
  const gz = gzipSync(raw, { level: 9 });
  const brSize = sibling(path, ".br", raw, br);
  const gzSize = sibling(path, ".gz", raw, gz);
  console.log(`precompress: ${path}  ${kb(raw.length)} → gzip ${kb(gzSize)}, br ${kb(brSize)} (q${quality})`);
}
console.log(`precompress: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
