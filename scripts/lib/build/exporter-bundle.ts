/**
 * Bundles the exporter into one ES module that runs with a bare `node` ≥18
 * (Debian 12's nodejs) and no node_modules: the exec profile ships this file.
 * The output is reproducible — same sources and lock file, same bytes — so it
 * is built by the test and bootstrap commands, never committed.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

// relative to the repository, not to wherever the command was started
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const exporterEntry = resolve(repoRoot, "scripts/energy-exporter.ts");
export const exporterBundle = resolve(repoRoot, "dist/energy-exporter.mjs");

export async function buildExporterBundle(outfile = exporterBundle): Promise<{ file: string; bytes: number; sha256: string }> {
  await build({
    entryPoints: [exporterEntry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node18",
    // CommonJS dependencies (axios' helpers) call require() on builtins
    banner: {
      js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
    },
    legalComments: "eof",
    // smaller code is less memory on every node (about 5 MB RSS); names are kept for error classes
    minify: true,
    keepNames: true,
    sourcemap: false,
    logLevel: "warning",
    // no absolute paths or timestamps in the output
    absWorkingDir: repoRoot,
  });
  const content = await readFile(outfile);
  return { file: outfile, bytes: content.length, sha256: createHash("sha256").update(content).digest("hex") };
}
