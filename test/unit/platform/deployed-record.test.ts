import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { NomadJobListStub } from "../../../scripts/lib/clients/nomad.ts";
import {
  currentIndexes,
  type PlatformInputs,
  platformDigest,
  readDeployedRecord,
  unchangedSinceRecord,
  writeDeployedRecord,
} from "../../../scripts/lib/platform/deployed-record.ts";
import { tempDir } from "../../helpers/fixtures.ts";

const inputs: PlatformInputs = {
  nomadVersion: "1.11.3",
  namespace: "platform",
  jobs: [
    { name: "fabio", source: 'job "fabio" {}', variables: { runtime: "exec" } },
    { name: "prometheus", source: 'job "prometheus" {}', variables: { runtime: "exec" } },
  ],
  variables: { "nomad/jobs/prometheus": { cluster_rules: "groups: []", vault_targets: '"10.0.0.11:8200"' } },
};

/** A Nomad that answers the two list calls from these tables. */
function nomadWith(jobs: Record<string, number | "stopped">, variables: Record<string, number>) {
  const calls: string[] = [];
  return {
    calls,
    jobs: async (namespace: string) => {
      calls.push(`jobs ${namespace}`);
      return Object.entries(jobs).map(([ID, index]): NomadJobListStub => ({
        ID,
        Type: "service",
        Status: "running",
        Stop: index === "stopped",
        JobModifyIndex: index === "stopped" ? 99 : index,
      }));
    },
    variableIndexes: async (namespace: string) => {
      calls.push(`vars ${namespace}`);
      return Object.entries(variables).map(([Path, ModifyIndex]) => ({ Path, ModifyIndex }));
    },
  };
}

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  dir = await tempDir("deployed-record");
});
afterEach(async () => dir.remove());

describe("the platform stage's deployed record", () => {
  it("has the same digest for the same inputs in any key or job order, another for any change", () => {
    const digest = platformDigest(inputs);
    const reordered: PlatformInputs = {
      ...inputs,
      jobs: [...inputs.jobs].reverse(),
      variables: { "nomad/jobs/prometheus": { vault_targets: '"10.0.0.11:8200"', cluster_rules: "groups: []" } },
    };
    expect(platformDigest(reordered)).toBe(digest);
    const changes: PlatformInputs[] = [
      { ...inputs, nomadVersion: "1.11.4" },
      {
        ...inputs,
        jobs: [{ ...(inputs.jobs[0] as PlatformInputs["jobs"][0]), source: 'job "fabio" { }' }, ...inputs.jobs.slice(1)],
      },
      {
        ...inputs,
        jobs: [{ ...(inputs.jobs[0] as PlatformInputs["jobs"][0]), variables: { runtime: "docker" } }, ...inputs.jobs.slice(1)],
      },
      { ...inputs, jobs: inputs.jobs.slice(1) },
      { ...inputs, variables: { "nomad/jobs/prometheus": { cluster_rules: "groups: [x]", vault_targets: '"10.0.0.11:8200"' } } },
      { ...inputs, extra: { exporterPolicy: "namespace" } },
    ];
    for (const changed of changes) expect(platformDigest(changed)).not.toBe(digest);
  });

  it("is written 0600 and read back; a damaged or malformed one reads as none", async () => {
    const file = join(dir.path, "platform-deployed.json");
    const record = { digest: "d", jobs: { fabio: 10 }, variables: { "nomad/jobs/prometheus": 7 } };
    await writeDeployedRecord(file, record);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readDeployedRecord(file)).toEqual(record);
    await writeFile(file, "{not json");
    expect(await readDeployedRecord(file)).toBeUndefined();
    await writeFile(file, JSON.stringify({ digest: "d", jobs: { fabio: "10" }, variables: {} }));
    expect(await readDeployedRecord(file)).toBeUndefined();
    expect(await readDeployedRecord(join(dir.path, "missing.json"))).toBeUndefined();
  });

  it("reads the indexes of the named jobs (not stopped ones) and variables", async () => {
    const nomad = nomadWith({ fabio: 10, prometheus: 12, other: 3, old: "stopped" }, { "nomad/jobs/prometheus": 7, x: 1 });
    expect(await currentIndexes(nomad, "platform", ["fabio", "prometheus", "old"], ["nomad/jobs/prometheus"])).toEqual({
      jobs: { fabio: 10, prometheus: 12 },
      variables: { "nomad/jobs/prometheus": 7 },
    });
  });

  it("skips only with the same digest and every job and variable still at its recorded index", async () => {
    const digest = platformDigest(inputs);
    const paths = ["nomad/jobs/prometheus"];
    const record = { digest, jobs: { fabio: 10, prometheus: 12 }, variables: { "nomad/jobs/prometheus": 7 } };
    const expected = { jobCount: 2, paths };
    const same = nomadWith({ fabio: 10, prometheus: 12 }, { "nomad/jobs/prometheus": 7 });
    expect(await unchangedSinceRecord(same, "platform", record, digest, expected)).toBe(true);
    expect(same.calls).toEqual(["jobs platform", "vars platform"]);

    // no record, another digest, another job or variable set: no API call needed to say no
    const untouched = nomadWith({}, {});
    expect(await unchangedSinceRecord(untouched, "platform", undefined, digest, expected)).toBe(false);
    expect(await unchangedSinceRecord(untouched, "platform", record, "other", expected)).toBe(false);
    expect(await unchangedSinceRecord(untouched, "platform", record, digest, { jobCount: 3, paths })).toBe(false);
    expect(await unchangedSinceRecord(untouched, "platform", record, digest, { jobCount: 2, paths: [...paths, "y"] })).toBe(
      false,
    );
    expect(untouched.calls).toEqual([]);

    // re-registered, stopped or purged jobs, an edited or deleted variable
    for (const nomad of [
      nomadWith({ fabio: 11, prometheus: 12 }, { "nomad/jobs/prometheus": 7 }),
      nomadWith({ fabio: "stopped", prometheus: 12 }, { "nomad/jobs/prometheus": 7 }),
      nomadWith({ prometheus: 12 }, { "nomad/jobs/prometheus": 7 }),
      nomadWith({ fabio: 10, prometheus: 12 }, { "nomad/jobs/prometheus": 8 }),
      nomadWith({ fabio: 10, prometheus: 12 }, {}),
    ])
      expect(await unchangedSinceRecord(nomad, "platform", record, digest, expected)).toBe(false);
  });
});
