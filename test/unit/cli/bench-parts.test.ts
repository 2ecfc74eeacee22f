import { describe, expect, it } from "vitest";
import { selectedParts } from "../../../scripts/lib/bench/parts.ts";
import { InputError } from "../../../scripts/lib/errors.ts";

describe("bench --only", () => {
  it("runs every part by default and only the named ones with --only", () => {
    expect([...selectedParts({})]).toEqual(["render", "local", "bootstrap", "docker", "energy"]);
    expect([...selectedParts({ only: "docker, bootstrap" })].sort()).toEqual(["bootstrap", "docker"]);
  });

  it("lets --skip-local and --skip-energy take parts away, also from --only", () => {
    expect([...selectedParts({ skipLocal: true })]).toEqual(["render", "energy"]);
    expect([...selectedParts({ only: "docker,energy", skipEnergy: true })]).toEqual(["docker"]);
  });

  it("refuses an unknown part, naming the valid ones", () => {
    expect(() => selectedParts({ only: "dokcer" })).toThrow(InputError);
    expect(() => selectedParts({ only: "dokcer" })).toThrow(/Unknown bench part "dokcer"/);
  });
});
