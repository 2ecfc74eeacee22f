/**
 * Vault started from the rendered config (raft storage, TLS listeners on a
 * loopback "private" address and 127.0.0.1) reaches "uninitialized"; then the
 * Vault client initialises, unseals and builds a PKI that issues a certificate
 * which openssl verifies against the new root.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { ApiError } from "../../../scripts/lib/clients/http.ts";
import { VaultClient } from "../../../scripts/lib/clients/vault.ts";
import { requireBinary } from "../../helpers/binaries.ts";
import { tempDir } from "../../helpers/fixtures.ts";
import { type LoopbackNode, renderLoopbackServer } from "../../helpers/loopback-node.ts";
import { type Agent, startAgent, untilReady } from "../../helpers/processes.ts";

const ip = "127.0.0.23";
let dir: Awaited<ReturnType<typeof tempDir>>;
let node: LoopbackNode;
let agent: Agent;
let vault: VaultClient;
let root: VaultClient;

beforeAll(async () => {
  dir = await tempDir("vault");
  node = await renderLoopbackServer(dir.path, ip);
  agent = startAgent(
    "vault",
    requireBinary("vault"),
    ["server", `-config=${node.layout.vault.configFile}`],
    `${dir.path}/vault.log`,
  );
  vault = new VaultClient({ address: `https://${ip}:8200`, caFile: node.ca.caFile });
  await untilReady(agent, () => vault.health());
});

afterAll(async () => {
  await agent?.stop();
  await dir?.remove();
});

describe("Vault from the rendered config", () => {
  it("starts uninitialized and sealed, over TLS on both listeners", async () => {
    expect(await vault.health()).toMatchObject({ initialized: false, sealed: true });
    const viaLoopback = await $({
      quiet: true,
      nothrow: true,
    })`curl -sS --cacert ${node.ca.caFile} https://127.0.0.1:8200/v1/sys/seal-status`;
    expect(JSON.parse(viaLoopback.stdout)).toMatchObject({ initialized: false, sealed: true, type: "shamir" });
    const plain = await $({
      quiet: true,
      nothrow: true,
    })`curl -sS -o /dev/null -w %{http_code} http://${ip}:8200/v1/sys/seal-status`;
    expect(plain.stdout).not.toBe("200");
  });

  it("initialises, unseals and answers with the root token", async () => {
    const init = await vault.init({ secretShares: 3, secretThreshold: 2 });
    expect(init.keys_base64).toHaveLength(3);
    expect((await vault.unseal(init.keys_base64[0] as string)).sealed).toBe(true);
    expect((await vault.unseal(init.keys_base64[1] as string)).sealed).toBe(false);
    root = vault.withToken(init.root_token);
    await root.waitUntil((h) => !h.sealed && !h.standby, { timeoutMs: 30_000, what: "active" });
    // a second init is refused: a re-run must detect "initialized" instead of calling init
    const again = (await vault.init({ secretShares: 1, secretThreshold: 1 }).catch((e: unknown) => e)) as ApiError;
    expect(again).toBeInstanceOf(ApiError);
    expect(again.apiMessage).toMatch(/already initialized/);
  });

  it("mounts PKI engines idempotently and refuses a mount of the wrong type", async () => {
    expect(await root.ensureMount("pki-root", "pki", { max_lease_ttl: "87600h" })).toBe(true);
    expect(await root.ensureMount("pki-root", "pki", { max_lease_ttl: "87600h" })).toBe(false);
    expect(await root.ensureMount("pki-nomad", "pki", { max_lease_ttl: "43800h" })).toBe(true);
    await expect(root.ensureMount("pki-nomad", "kv")).rejects.toThrow(
      "Vault already has a 'pki' mount at pki-nomad/, expected 'kv'.",
    );
  });

  it("issues a leaf through root → intermediate that openssl verifies", async () => {
    const rootCa = await root.write<{ certificate: string }>("pki-root/root/generate/internal", {
      common_name: "hashistack test root",
      ttl: "87600h",
      key_type: "ec",
      key_bits: 256,
    });
    const csr = await root.write<{ csr: string }>("pki-nomad/intermediate/generate/internal", {
      common_name: "hashistack test nomad intermediate",
      key_type: "ec",
      key_bits: 256,
    });
    const signed = await root.write<{ certificate: string }>("pki-root/root/sign-intermediate", {
      csr: csr?.data.csr,
      format: "pem_bundle",
      ttl: "43800h",
    });
    await root.write("pki-nomad/intermediate/set-signed", { certificate: signed?.data.certificate });
    await root.write("pki-nomad/roles/server", {
      allowed_domains: ["server.global.nomad"],
      allow_bare_domains: true,
      allow_localhost: true,
      allow_ip_sans: true,
      key_type: "ec",
      key_bits: 256,
      max_ttl: "72h",
    });
    const leaf = await root.issueCertificate("pki-nomad/issue/server", {
      common_name: "server.global.nomad",
      alt_names: "localhost",
      ip_sans: `127.0.0.1,${ip}`,
      ttl: "1h",
    });
    const rootFile = join(dir.path, "vault-root.pem");
    const chainFile = join(dir.path, "vault-intermediate.pem");
    const leafFile = join(dir.path, "vault-leaf.pem");
    await writeFile(rootFile, rootCa?.data.certificate ?? "");
    await writeFile(chainFile, leaf.issuing_ca);
    await writeFile(leafFile, leaf.certificate);
    const verify = await $({
      quiet: true,
      nothrow: true,
    })`openssl verify -CAfile ${rootFile} -untrusted ${chainFile} ${leafFile}`;
    expect(verify.stdout.trim()).toBe(`${leafFile}: OK`);
    const text = (await $({ quiet: true })`openssl x509 -in ${leafFile} -noout -ext subjectAltName`).stdout;
    expect(text).toContain("DNS:server.global.nomad");
    expect(text).toContain(`IP Address:${ip}`);

    // a name outside the role is refused with Vault's message
    await expect(root.issueCertificate("pki-nomad/issue/server", { common_name: "evil.example.com" })).rejects.toThrow(
      /common name evil.example.com not allowed/,
    );
  });

  it("an unsealed Vault refuses requests without a token", async () => {
    await expect(vault.mounts()).rejects.toMatchObject({ status: 403 });
  });
});
