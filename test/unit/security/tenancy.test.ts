/**
 * The tenant rules as data: what each CI token may do, which drivers tenant
 * namespaces get, who may register which Consul service, and that the list of
 * platform services matches the job files. The e2e attacker suite
 * (test/e2e/tenant-isolation.test.ts) proves the same rules on a real cluster.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkClusterName } from "../../../scripts/lib/config/load.ts";
import { InputError } from "../../../scripts/lib/errors.ts";
import { platformServices, taskIsolation, tenantNamespaces } from "../../../scripts/lib/security/tenancy.ts";
import { ciDeployPolicy, clusterNamespaces } from "../../../scripts/lib/cluster/nomad-acl.ts";
import {
  consulBindingRules,
  observerPolicy,
  routerPolicy,
  tenantTasksPolicy,
} from "../../../scripts/lib/stages/workload-identity.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";

const jobsDir = join(import.meta.dirname, "../../../jobs");

describe("tenant isolation rules", () => {
  it("each environment's CI policy names only its own namespace and grants no host volumes, exec or variables", () => {
    for (const ns of tenantNamespaces) {
      const policy = ciDeployPolicy(ns);
      expect([...policy.matchAll(/namespace "([^"]+)"/g)].map((m) => m[1])).toEqual([ns]);
      for (const forbidden of ["host_volume", "alloc-exec", "alloc-node-exec", "variables", "sentinel-override", "csi"]) {
        expect(policy).not.toContain(forbidden);
      }
    }
  });

  it("tenant namespaces get only isolating drivers; raw_exec only in platform", () => {
    for (const runtime of ["exec", "docker"] as const) {
      const namespaces = clusterNamespaces(runtime);
      for (const ns of tenantNamespaces) {
        const drivers = namespaces.find((n) => n.Name === ns)?.Capabilities?.EnabledTaskDrivers;
        expect(drivers).toEqual(runtime === "docker" ? ["docker", "exec"] : ["exec"]);
      }
      expect(namespaces.find((n) => n.Name === "default")?.Capabilities?.DisabledTaskDrivers).toContain("raw_exec");
    }
  });

  it("the platform services are the services the job files register", () => {
    const registered = readdirSync(jobsDir)
      .filter((f) => f.endsWith(".nomad.hcl"))
      .flatMap((f) =>
        [...readFileSync(join(jobsDir, f), "utf8").matchAll(/service\s*\{\s*name\s*=\s*"([^"]+)"/g)].map((m) => m[1]),
      );
    expect([...registered].sort()).toEqual([...platformServices].sort());
  });

  it("tenant services must carry their namespace's prefix; plain names only from platform and default", () => {
    const serviceRules = consulBindingRules.filter((r) => r.BindType === "service");
    for (const ns of tenantNamespaces) {
      const rule = serviceRules.find((r) => r.Selector?.includes(`value.nomad_namespace == "${ns}"`));
      expect(rule?.Selector).toContain(`value.nomad_service matches "^${ns}-`);
    }
    const plain = serviceRules.filter((r) => !r.Selector?.includes("matches"));
    expect(plain).toHaveLength(1);
    for (const ns of tenantNamespaces) expect(plain[0]?.Selector).not.toContain(`"${ns}"`);
  });

  it("Fabio reads only the platform's services; tenant tasks only their own namespace's", () => {
    const router = routerPolicy();
    expect(router).not.toMatch(/service_prefix/);
    for (const name of platformServices) expect(router).toContain(`service "${name}"`);
    for (const ns of tenantNamespaces) {
      expect(tenantTasksPolicy(ns)).toContain(`service_prefix "${ns}-"`);
      expect(tenantTasksPolicy(ns)).not.toContain('service_prefix ""');
    }
  });

  it("Prometheus' Consul role reads services, nodes and agents, and only the platform's prometheus job gets it", () => {
    const rules = [...observerPolicy.matchAll(/^(\w+) "([^"]*)" \{\n {2}policy = "(\w+)"\n\}$/gm)].map((m) =>
      m.slice(1).join(" "),
    );
    expect(rules).toEqual(["agent_prefix  read", "node_prefix  read", "service_prefix  read"]);
    expect(observerPolicy.replace(/^(\w+) "[^"]*" \{\n {2}policy = "read"\n\}\n/gm, "")).toBe("");
    const observer = consulBindingRules.filter((r) => r.BindName === "platform-observer");
    expect(observer.map((r) => r.Selector)).toEqual([
      '"nomad_service" not in value and value.nomad_namespace == "platform" and value.nomad_job_id == "prometheus"',
    ]);
  });

  it("exec tasks: no capability that overrides permissions or changes ids, no system users", () => {
    const dangerous = [
      "dac_override",
      "dac_read_search",
      "chown",
      "fowner",
      "fsetid",
      "setuid",
      "setgid",
      "setpcap",
      "setfcap",
      "mknod",
      "sys_chroot",
      "sys_admin",
    ];
    for (const cap of dangerous) expect(taskIsolation.execCapabilities).not.toContain(cap);
    expect(taskIsolation.deniedUsers).toEqual(expect.arrayContaining(["root", "consul", "nomad", "vault"]));
  });
});

describe("cluster names", () => {
  it.each(["../etc", "demo\nname", "a/b", "Demo", "-x", "x-", "", "a"])("rejects %j with the rule and an example", (name) => {
    const error = (() => {
      try {
        checkClusterName(name, "--cluster");
      } catch (e) {
        return e;
      }
    })() as InputError;
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toContain("--cluster");
    expect(error.hint).toContain("DNS label");
  });

  it("accepts DNS labels, and the state paths refuse anything else", () => {
    expect(checkClusterName("demo-2", "--cluster")).toBe("demo-2");
    expect(statePaths("demo-2", "/state").root).toBe("/state/demo-2");
    expect(() => statePaths("../x", "/state")).toThrow(/unchecked cluster name/);
  });
});
