/** Job files named on the command line: files as given, directories expanded to their job files. */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../errors.ts";

export const jobFilePattern = /\.nomad(\.hcl)?$/;

/** Directories give their `*.nomad.hcl` / `*.nomad` files (not recursive), sorted; duplicates are dropped. */
export async function discoverJobFiles(paths: string[]): Promise<string[]> {
  if (paths.length === 0) {
    throw new InputError("No job files given.", { hint: "Name job files or a directory: npm run deploy -- jobs/" });
  }
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new InputError(`Job file or directory ${path} does not exist.`);
    if (info.isDirectory()) {
      const found = (await readdir(path, { withFileTypes: true }))
        .filter((e) => e.isFile() && jobFilePattern.test(e.name))
        .map((e) => join(path, e.name))
        .sort();
      if (found.length === 0) {
        throw new InputError(`Directory ${path} holds no job files.`, { hint: "Job files are named *.nomad.hcl or *.nomad." });
      }
      files.push(...found);
    } else {
      files.push(path);
    }
  }
  return [...new Set(files)];
}
