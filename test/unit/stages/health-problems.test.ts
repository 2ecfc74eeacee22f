import { describe, expect, it } from "vitest";
import { jwksProxyUrl } from "../../../scripts/lib/cluster/jwks-proxy.ts";
import { certificateProblems, identityProblems } from "../../../scripts/lib/stages/health.ts";
import { vaultTrustsProxy } from "../../../scripts/lib/stages/workload-identity.ts";

describe("certificate problems", () => {
  const cert = (lifetimeLeft: number) => ({
    host: "client-1",
    file: "/etc/nomad.d/tls/agent.pem",
    expires: "2026-12-05T00:00:00.000Z",
    lifetimeLeft,
  });

  it("name a certificate below the configured share of its lifetime, not one waiting for its normal renewal", () => {
    expect(certificateProblems([cert(0.12), cert(0.071)], 0.07)).toEqual([]);
    const [problem, ...rest] = certificateProblems([cert(0.05)], 0.07);
    expect(rest).toEqual([]);
    expect(problem).toMatch(
      /^client-1: \/etc\/nomad\.d\/tls\/agent\.pem has 5 % of its lifetime left .*journalctl -u consul-template/,
    );
  });

  it("name a certificate that cannot be read", () => {
    expect(certificateProblems([{ host: "server-1", file: "/etc/vault.d/tls/vault.pem", error: "No such file" }], 0.07)).toEqual([
      "server-1: cannot read /etc/vault.d/tls/vault.pem: No such file",
    ]);
  });
});

describe("workload identity trust problems", () => {
  const base = { nomadKeys: ["k1", "k2"], consulUsesProxy: true, vaultUsesProxy: true };

  it("none when every proxy serves every Nomad key and both auth methods read the proxy", () => {
    expect(identityProblems({ ...base, proxies: [{ host: "server-1", keys: ["k2", "k1", "k0"] }] }, true)).toEqual([]);
  });

  it("a key a proxy does not serve, an unreachable proxy, and static keys in Consul or Vault", () => {
    const problems = identityProblems(
      {
        ...base,
        consulUsesProxy: false,
        vaultUsesProxy: false,
        proxies: [
          { host: "server-1", keys: ["k1"] },
          { host: "server-2", error: "server-2: the Nomad JWKS proxy did not answer (exit 7)." },
        ],
      },
      true,
    );
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/^Consul's auth method nomad-workloads does not read/);
    expect(problems[1]).toMatch(/^Vault's jwt-nomad auth does not read/);
    expect(problems[2]).toMatch(/^the JWKS proxy on server-1 does not serve Nomad's signing keys k2/);
    expect(problems[3]).toMatch(/^server-2: the Nomad JWKS proxy did not answer/);
  });

  it("no key comparison when Nomad did not answer (that is reported on its own)", () => {
    expect(identityProblems({ ...base, nomadKeys: [], proxies: [{ host: "server-1", keys: [] }] }, false)).toEqual([]);
  });
});

describe("Vault's JWT config", () => {
  it("counts as trusting the proxy only with its URL, the cluster CA and no static keys", () => {
    expect(vaultTrustsProxy({ jwks_url: jwksProxyUrl, jwks_ca_pem: "CA\n", jwt_validation_pubkeys: [] }, "CA")).toBe(true);
    expect(vaultTrustsProxy({ jwks_url: jwksProxyUrl, jwks_ca_pem: "OTHER" }, "CA")).toBe(false);
    expect(vaultTrustsProxy({ jwks_url: jwksProxyUrl, jwt_validation_pubkeys: ["-----BEGIN PUBLIC KEY-----"] }, undefined)).toBe(
      false,
    );
    expect(vaultTrustsProxy({ jwt_validation_pubkeys: ["-----BEGIN PUBLIC KEY-----"] }, undefined)).toBe(false);
    expect(vaultTrustsProxy(undefined, "CA")).toBe(false);
  });
});
