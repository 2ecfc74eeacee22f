import { describe, expect, it } from "vitest";
import { parseError } from "../../../scripts/lib/deploy/parse.ts";

// messages as the real parse endpoint returns them (Nomad 1.11, HTTP 400)
describe("parse endpoint errors", () => {
  it("point at the job file and line instead of Nomad's input.hcl", () => {
    const error = parseError(
      "jobs/web.nomad.hcl",
      "Failed to parse job: input.hcl:2,9-3,1: Invalid expression; Expected the start of an expression, but found an invalid expression token.",
    );
    expect(error.message).toBe("jobs/web.nomad.hcl is not a valid job file.");
    expect(error.details).toEqual([
      "jobs/web.nomad.hcl:2:9: Invalid expression; Expected the start of an expression, but found an invalid expression token.",
    ]);
  });

  it("name the variable and where its value came from when it does not fit the declared type", () => {
    const error = parseError(
      "web.nomad.hcl",
      "Failed to parse job: input.hcl:1,9-14: Invalid value for variable; The value for count is not compatible with the variable's type constraint: a number is required.",
      { count: "--var count" },
    );
    expect(error.message).toBe("web.nomad.hcl: the value for variable 'count' does not fit its type: a number is required.");
    expect(error.details).toEqual(["the value comes from --var count"]);
  });

  it("hint at a missing declaration when the job uses an undeclared variable", () => {
    const error = parseError(
      "web.nomad.hcl",
      'Failed to parse job: input.hcl:12,24-32: Unsupported attribute; This object does not have an attribute named "missing".\ninput.hcl:12,21-32: Unsuitable value type; Unsuitable value: value must be known',
    );
    expect(error.details).toEqual([
      'web.nomad.hcl:12:24: Unsupported attribute; This object does not have an attribute named "missing".',
      "web.nomad.hcl:12:21: Unsuitable value type; Unsuitable value: value must be known",
    ]);
    expect(error.hint).toContain('variable "name"');
  });
});
