import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseHcl } from "@cdktf/hcl2json";
import { afterAll, describe, expect, it } from "vitest";
import {
  checkUnknownVariables,
  declaredVariables,
  hclLiteralString,
  loadVariables,
  parseVarFlags,
  renderVariables,
} from "../../../scripts/lib/deploy/variables.ts";
import { InputError } from "../../../scripts/lib/errors.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const dir = await scratch.make("vars");
const file = async (name: string, text: string) => {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
};

describe("--var flags", () => {
  it("split at the first '=' and keep the rest verbatim", () => {
    expect(parseVarFlags(["image=reg/app:1.2", "args=a=b", "empty="])).toEqual({ image: "reg/app:1.2", args: "a=b", empty: "" });
  });

  it("without '=' or with a bad name are input errors", () => {
    expect(() => parseVarFlags(["image"])).toThrow(new InputError("--var 'image' must look like name=value."));
    expect(() => parseVarFlags(["=x"])).toThrow(InputError);
    expect(() => parseVarFlags(["1abc=x"])).toThrow("'1abc' is not a valid variable name");
  });
});

describe("HCL quoting", () => {
  // the real HCL2 parser decides whether the quoting is right
  const roundTrip = async (value: string) => ((await parseHcl("t.hcl", `v = ${hclLiteralString(value)}\n`)) as { v: string }).v;

  it("escapes quotes, backslashes and newlines", async () => {
    for (const value of ['he said "hi"', "back\\slash", "two\nlines", "tab\there", 'mixed \\" end']) {
      expect(await roundTrip(value)).toBe(value);
    }
  });

  it("keeps ${ and %{ literal instead of interpolating", () => {
    // hcl2json shows template escapes as written, so check the text: $${ and %%{ are HCL's literal forms
    expect(hclLiteralString("${NOMAD_PORT_http} %{ if }")).toBe('"$${NOMAD_PORT_http} %%{ if }"');
  });
});

describe("var files and flags", () => {
  it("later files win, flags win over files, and the merge renders as one var-file body", async () => {
    const a = await file("a.hcl", 'image = "a"\ncount = 2\ntags = ["x", "y"]\n');
    const b = await file("b.hcl", 'image = "b"\nnote = "say \\"hi\\" $${lit}"\nlabels = { team = "ops" }\n');
    const set = await loadVariables([a, b], ["count=3"]);
    expect(set.values).toEqual({ image: "b", count: "3", tags: ["x", "y"], note: 'say "hi" $${lit}', labels: { team: "ops" } });
    expect(set.origins).toEqual({ image: b, count: "--var count", tags: a, note: b, labels: b });
    const text = renderVariables(set);
    expect(text).toBe(
      'count = "3"\nimage = "b"\nlabels = { "team" = "ops" }\nnote = "say \\"hi\\" $${lit}"\ntags = ["x", "y"]\n',
    );
    // the rendered body is valid HCL with each name once
    expect(await parseHcl("rendered.hcl", text)).toMatchObject({ image: "b", count: "3", labels: { team: "ops" } });
  });

  it("a missing or broken var file names the file", async () => {
    await expect(loadVariables([join(dir, "nope.hcl")], [])).rejects.toThrow(
      `Cannot read var file ${join(dir, "nope.hcl")}: ENOENT.`,
    );
    const broken = await file("broken.hcl", "image = \n");
    const error = (await loadVariables([broken], []).catch((e: unknown) => e)) as InputError;
    expect(error.message).toBe(`Var file ${broken} is not valid HCL.`);
    expect(error.details[0]).toContain(`${broken}:1,`);
  });
});

describe("unknown variables", () => {
  const job = 'variable "image" {\n  type = string\n}\nvariable "count" {\n  default = 1\n}\njob "x" {}\n';

  it("reads the declared variable names of a job file", async () => {
    expect(await declaredVariables("x.nomad.hcl", job)).toEqual(new Set(["image", "count"]));
    expect(await declaredVariables("x.nomad.hcl", "job {")).toBeUndefined();
  });

  it("a value no job declares is an input error naming where it came from", async () => {
    const set = await loadVariables([], ["imgae=x", "image=y"]);
    const declared = [{ file: "x.nomad.hcl", names: await declaredVariables("x.nomad.hcl", job) }];
    const error = (() => {
      try {
        checkUnknownVariables(set, declared);
      } catch (e) {
        return e as InputError;
      }
    })();
    expect(error).toBeInstanceOf(InputError);
    expect(error?.message).toBe("Unknown variable 'imgae': no job file declares it.");
    expect(error?.details).toEqual(["imgae is set by --var imgae", "job files: x.nomad.hcl (count, image)"]);
  });

  it("a value only one of several jobs declares is fine", async () => {
    const set = await loadVariables([], ["image=y"]);
    expect(() =>
      checkUnknownVariables(set, [
        { file: "a.nomad.hcl", names: new Set(["image"]) },
        { file: "b.nomad.hcl", names: new Set() },
      ]),
    ).not.toThrow();
  });
});
