import { existsSync } from "node:fs";
import { binaryPath } from "../../scripts/lib/binaries/build.ts";
import { type ToolName, tools } from "../../scripts/lib/binaries/catalog.ts";

/** Path of a cached binary; tests never build (the README test command does, before vitest). */
export function requireBinary(name: ToolName): string {
  const path = binaryPath(tools[name]);
  if (!existsSync(path)) {
    throw new Error(`${name} ${tools[name].version} is not built at ${path}. Run 'npm run binaries' (npm test does it for you).`);
  }
  return path;
}
