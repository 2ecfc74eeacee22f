import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { discoverJobFiles } from "../../../scripts/lib/deploy/discover.ts";
import { InputError } from "../../../scripts/lib/errors.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

describe("job file discovery", () => {
  it("expands a directory to its *.nomad.hcl and *.nomad files, sorted, not recursing; files pass as given", async () => {
    const dir = await scratch.make("jobs");
    for (const name of ["b.nomad.hcl", "a.nomad", "c.hcl", "README.md", "vars.pkrvars.hcl"]) await writeFile(join(dir, name), "");
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "sub", "d.nomad.hcl"), "");
    expect(await discoverJobFiles([dir])).toEqual([join(dir, "a.nomad"), join(dir, "b.nomad.hcl")]);
    // an explicitly named file is taken whatever its name; duplicates are dropped
    expect(await discoverJobFiles([join(dir, "c.hcl"), dir, join(dir, "a.nomad")])).toEqual([
      join(dir, "c.hcl"),
      join(dir, "a.nomad"),
      join(dir, "b.nomad.hcl"),
    ]);
  });

  it("a missing path, an empty directory or no paths at all are input errors", async () => {
    const dir = await scratch.make("jobs");
    await expect(discoverJobFiles([join(dir, "nope.nomad.hcl")])).rejects.toThrow(
      new InputError(`Job file or directory ${join(dir, "nope.nomad.hcl")} does not exist.`),
    );
    await expect(discoverJobFiles([dir])).rejects.toThrow(`Directory ${dir} holds no job files.`);
    await expect(discoverJobFiles([])).rejects.toThrow("No job files given.");
  });
});
