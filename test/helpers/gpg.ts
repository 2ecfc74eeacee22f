/**
 * Throwaway OpenPGP keys for tests, made by the gpg CLI in temp GNUPGHOMEs
 * (never the operator's keyring): no passphrase, ed25519 + cv25519.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";

export interface TestPgpKey {
  name: string;
  fingerprint: string;
  /** ASCII-armored public key file */
  armored: string;
  /** binary public key file */
  binary: string;
}

/** An empty GNUPGHOME (gpg wants it 0700). */
export async function gnupgHome(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Generate a key in `home` and export its public part, armored and binary, into `outDir`. */
export async function generateTestKey(home: string, name: string, outDir: string): Promise<TestPgpKey> {
  await mkdir(outDir, { recursive: true });
  const uid = `${name} <${name}@hashistack.test>`;
  await $({
    quiet: true,
  })`gpg --homedir ${home} --batch --passphrase ${""} --quick-gen-key ${uid} future-default default never`;
  const listed = (await $({ quiet: true })`gpg --homedir ${home} --batch --with-colons --list-keys ${uid}`).stdout;
  const fingerprint =
    listed
      .split("\n")
      .find((l) => l.startsWith("fpr:"))
      ?.split(":")[9] ?? "";
  const armored = join(outDir, `${name}.asc`);
  const binary = join(outDir, `${name}.gpg`);
  await writeFile(armored, (await $({ quiet: true })`gpg --homedir ${home} --batch --armor --export ${fingerprint}`).stdout);
  await $({ quiet: true })`gpg --homedir ${home} --batch --output ${binary} --export ${fingerprint}`;
  return { name, fingerprint, armored, binary };
}

/** Copy secret keys from one home into another (a keyring holding only some of the keys). */
export async function copySecretKeys(from: string, to: string, fingerprints: string[]): Promise<void> {
  const file = join(to, `export-${Date.now()}.gpg`);
  await $({
    quiet: true,
  })`gpg --homedir ${from} --batch --pinentry-mode loopback --passphrase ${""} --output ${file} --export-secret-keys ${fingerprints}`;
  await $({ quiet: true })`gpg --homedir ${to} --batch --import ${file}`;
}

/** Stop the gpg-agent a test home may have started (that home's only). */
export async function stopGnupgHome(home: string): Promise<void> {
  await $({ quiet: true, nothrow: true })`gpgconf --homedir ${home} --kill all`;
}
