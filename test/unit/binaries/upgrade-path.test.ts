/** Which version changes a re-run refuses before any binary reaches a node. */
import { describe, expect, it } from "vitest";
import { checkUpgradePaths, upgradeRefusal, versionFromOutput } from "../../../scripts/lib/binaries/upgrade-path.ts";
import { InputError } from "../../../scripts/lib/errors.ts";

describe("upgrade paths", () => {
  it("allows patch and minor upgrades, Nomad at most two minors at a time", () => {
    expect(upgradeRefusal("consul", "1.21.4", "1.22.5")).toBeUndefined();
    expect(upgradeRefusal("nomad", "1.9.7", "1.11.3")).toBeUndefined();
    expect(upgradeRefusal("nomad", "1.8.4", "1.11.3")).toBe(
      "nomad 1.8.4 → 1.11.3 jumps more than two minor versions, which Nomad does not support",
    );
    expect(upgradeRefusal("nomad", "1.11.3", "2.0.0")).toMatch(/more than two minor versions/);
  });

  it("refuses downgrades of every product", () => {
    expect(upgradeRefusal("vault", "1.21.0", "1.20.4")).toBe(
      "vault 1.21.0 → 1.20.4 is a downgrade, which its raft data does not support",
    );
    expect(upgradeRefusal("consul", "1.22.5", "1.22.4")).toMatch(/downgrade/);
  });

  it("reads the version from each product's `version` line", () => {
    expect(versionFromOutput("Nomad v1.11.3")).toBe("1.11.3");
    expect(versionFromOutput("Vault v1.21.0 (abc), built 2025-10-01")).toBe("1.21.0");
    expect(versionFromOutput("")).toBeUndefined();
  });

  it("names every refused change in one bad-input error with the way out", () => {
    expect(() =>
      checkUpgradePaths([
        { product: "nomad", installed: "1.8.0", wanted: "1.11.3" },
        { product: "consul", installed: "1.22.5", wanted: "1.22.5" },
      ]),
    ).toThrow(InputError);
    expect(() => checkUpgradePaths([{ product: "consul", installed: "1.22.4", wanted: "1.22.5" }])).not.toThrow();
  });
});
