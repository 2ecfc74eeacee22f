/** The shape the stages keep: independent of each other, reaching the cluster through one module. */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { stageNames } from "../../../scripts/lib/stages/pipeline.ts";

const lib = join(import.meta.dirname, "..", "..", "..", "scripts", "lib");
const stageFiles = stageNames.map((name) => `${name}.ts`);
const imports = (file: string) => [...readFileSync(file, "utf8").matchAll(/from "([^"]+)"/g)].map((m) => m[1] as string);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

describe("stage structure", () => {
  it("every stage has a module of its name, and no stage imports another stage", () => {
    for (const file of stageFiles) {
      const stageImports = imports(join(lib, "stages", file)).filter((i) => stageFiles.includes(i.replace(/^\.\//, "")));
      expect(stageImports, file).toEqual([]);
    }
  });

  it("only the cluster-access module opens tunnels; nothing outside the stages imports a stage", () => {
    const openers = sources(lib).filter((f) => /\bopenTunnel\(/.test(readFileSync(f, "utf8")));
    expect(openers.map((f) => relative(lib, f)).sort()).toEqual(["cluster/access.ts", "remote/tunnel.ts"]);
    const outside = sources(lib).filter((f) => !f.includes("/stages/"));
    for (const file of outside) {
      const reached = imports(file).filter((i) => stageFiles.some((s) => i.endsWith(`/stages/${s}`)));
      expect(reached, relative(lib, file)).toEqual([]);
    }
  });
});
