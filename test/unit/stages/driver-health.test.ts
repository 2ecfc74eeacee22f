import { describe, expect, it } from "vitest";
import { driverProblems } from "../../../scripts/lib/stages/health.ts";

type Nodes = Parameters<typeof driverProblems>[0];

const healthy = { Detected: true, Healthy: true, HealthDescription: "Healthy" };

describe("docker driver health in status and verify", () => {
  it("names a docker-profile client whose docker driver is unhealthy or missing, with Nomad's description", () => {
    const nodes: Nodes = [
      { name: "client-1", status: "ready", drivers: { docker: healthy } },
      {
        name: "client-2",
        status: "ready",
        drivers: { docker: { Detected: true, Healthy: false, HealthDescription: "Failed to connect to docker daemon" } },
      },
      { name: "client-3", status: "ready", drivers: { exec: healthy } },
      { name: "client-4", status: "down", drivers: null },
    ];
    expect(driverProblems(nodes, "docker")).toEqual([
      "Nomad client client-2: docker driver unhealthy: Failed to connect to docker daemon",
      "Nomad client client-3: docker driver not detected (is Docker Engine installed and running?)",
    ]);
  });

  it("does not ask the exec profile for Docker", () => {
    expect(driverProblems([{ name: "client-1", status: "ready", drivers: { exec: healthy } }], "exec")).toEqual([]);
  });
});
