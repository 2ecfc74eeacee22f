import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nomadFromEnv } from "../../../scripts/lib/deploy/connect.ts";
import { InputError } from "../../../scripts/lib/errors.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

describe("Nomad from the NOMAD_* environment", () => {
  it("is not used when NOMAD_ADDR is unset or empty (the cluster state is used then)", () => {
    expect(nomadFromEnv({})).toBeUndefined();
    expect(nomadFromEnv({ NOMAD_ADDR: "" })).toBeUndefined();
  });

  it("takes the address, token and TLS files, and never shows the token", async () => {
    const dir = await scratch.make("env");
    const ca = join(dir, "ca.pem");
    await writeFile(ca, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    const connection = nomadFromEnv({ NOMAD_ADDR: "https://127.0.0.1:4646", NOMAD_TOKEN: "secret-token", NOMAD_CACERT: ca });
    expect(connection?.nomad.api.options).toMatchObject({ address: "https://127.0.0.1:4646", token: "secret-token", caFile: ca });
    expect(connection?.via).toBe("NOMAD_ADDR https://127.0.0.1:4646");
    expect(connection?.via).not.toContain("secret-token");
  });

  it("names the variable when a TLS file is missing or only half of the client pair is set", async () => {
    const dir = await scratch.make("env");
    const missing = join(dir, "nope.pem");
    expect(() => nomadFromEnv({ NOMAD_ADDR: "https://n:4646", NOMAD_CACERT: missing })).toThrow(
      new InputError(`NOMAD_CACERT points to ${missing}, which does not exist.`),
    );
    const cert = join(dir, "cert.pem");
    await writeFile(cert, "x");
    expect(() => nomadFromEnv({ NOMAD_ADDR: "https://n:4646", NOMAD_CLIENT_CERT: cert })).toThrow(
      "Set both NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY, or neither.",
    );
    expect(() => nomadFromEnv({ NOMAD_ADDR: "10.0.0.1:4646" })).toThrow("NOMAD_ADDR must start with http:// or https://");
  });
});
