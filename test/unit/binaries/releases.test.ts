import { afterEach, describe, expect, it } from "vitest";
import { primaryFingerprints } from "../../../scripts/lib/binaries/pgp.ts";
import { hashicorpSigningKeyFingerprint } from "../../../scripts/lib/binaries/release-source.ts";
import { parseSha256Sums, releaseBinaryPath, releaseFiles, releaseSource } from "../../../scripts/lib/binaries/releases.ts";
import { makeConfig } from "../../helpers/fixtures.ts";

describe("release URLs", () => {
  it("follows the releases.hashicorp.com layout", () => {
    expect(releaseFiles("https://releases.hashicorp.com", "consul", "1.22.5")).toEqual({
      zip: {
        name: "consul_1.22.5_linux_amd64.zip",
        url: "https://releases.hashicorp.com/consul/1.22.5/consul_1.22.5_linux_amd64.zip",
      },
      sums: { name: "consul_1.22.5_SHA256SUMS", url: "https://releases.hashicorp.com/consul/1.22.5/consul_1.22.5_SHA256SUMS" },
      signature: {
        name: "consul_1.22.5_SHA256SUMS.sig",
        url: "https://releases.hashicorp.com/consul/1.22.5/consul_1.22.5_SHA256SUMS.sig",
      },
    });
  });

  it("keeps a mirror's path prefix and drops trailing slashes", () => {
    expect(releaseFiles("http://mirror.example:8080/hashicorp//", "consul-template", "0.41.1").zip.url).toBe(
      "http://mirror.example:8080/hashicorp/consul-template/0.41.1/consul-template_0.41.1_linux_amd64.zip",
    );
  });

  it("caches apart from the source builds", () => {
    expect(releaseBinaryPath("vault", "1.21.0", "/c")).toBe("/c/releases/vault/1.21.0/vault");
  });
});

describe("SHA256SUMS", () => {
  const a = "a".repeat(64);
  const b = "B".repeat(64);

  it("maps file names to lower-case digests, text and binary mode", () => {
    const sums = parseSha256Sums(`${a}  consul_1.22.5_darwin_arm64.zip\n${b} *consul_1.22.5_linux_amd64.zip\r\n`);
    expect([...sums]).toEqual([
      ["consul_1.22.5_darwin_arm64.zip", a],
      ["consul_1.22.5_linux_amd64.zip", "b".repeat(64)],
    ]);
  });

  it("ignores lines that are not checksum lines", () => {
    const sums = parseSha256Sums(`# comment\n${a.slice(1)}  short.zip\n${a}consul.zip\n\n${a}  ok.zip`);
    expect([...sums.keys()]).toEqual(["ok.zip"]);
  });
});

describe("key fingerprints", () => {
  it("takes the primary key fingerprints, not the subkeys'", () => {
    // synthetic `gpg --show-keys --with-colons` output: two keys, the first with a signing subkey
    const colons = [
      "pub:-:4096:1:0123456789ABCDEF:1618849040:::-:::scSC::::::23::0:",
      "fpr:::::::::11112222333344445555666677778888AAAABBBB:",
      "uid:-::::1618849040::ABCD::Release Signing <release@example.invalid>::::::::::0:",
      "sub:-:4096:1:FEDCBA9876543210:1618849127::::::s::::::23:",
      "fpr:::::::::9999888877776666555544443333222211110000:",
      "pub:-:255:22:1111111111111111:1700000000:::-:::scSC::::::23::0:",
      "fpr:::::::::aaaa111111111111111111111111111111111111:",
    ].join("\n");
    expect(primaryFingerprints(colons)).toEqual([
      "11112222333344445555666677778888AAAABBBB",
      "AAAA111111111111111111111111111111111111",
    ]);
  });
});

describe("release source settings", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it("defaults to HashiCorp's releases, key URL and pinned fingerprint", () => {
    delete process.env.HASHISTACK_RELEASES_URL;
    delete process.env.HASHISTACK_SIGNING_KEY_URL;
    expect(releaseSource(makeConfig().install)).toEqual({
      releasesUrl: "https://releases.hashicorp.com",
      signingKeyUrl: "https://www.hashicorp.com/.well-known/pgp-key.txt",
      fingerprint: hashicorpSigningKeyFingerprint,
    });
  });

  it("takes a fingerprint written with spaces, and the environment's URLs over the config's", () => {
    process.env.HASHISTACK_RELEASES_URL = "http://127.0.0.1:9/tree";
    process.env.HASHISTACK_SIGNING_KEY_URL = "http://127.0.0.1:9/key.asc";
    const config = makeConfig({
      install: {
        method: "download",
        releasesUrl: "https://mirror.example/hashicorp/",
        signingKeyFingerprint: "c874 011f 0ab4 0511 0d02  1055 3436 5d94 72d7 468f",
      },
    });
    expect(config.install.releasesUrl).toBe("https://mirror.example/hashicorp");
    expect(releaseSource(config.install)).toEqual({
      releasesUrl: "http://127.0.0.1:9/tree",
      signingKeyUrl: "http://127.0.0.1:9/key.asc",
      fingerprint: "C874011F0AB405110D02105534365D9472D7468F",
    });
  });

  it("rejects a malformed fingerprint and a non-HTTP URL", () => {
    expect(() => makeConfig({ install: { signingKeyFingerprint: "72D7468F" } })).toThrow(/40-hex-digit OpenPGP fingerprint/);
    expect(() => makeConfig({ install: { releasesUrl: "ftp://mirror.example" } })).toThrow(/http:\/\/ or https:\/\//);
  });
});
