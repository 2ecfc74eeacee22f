/**
 * Where HashiCorp's official releases and their signing key come from, and the key's
 * pinned fingerprint. No imports: the config schema takes its defaults from here.
 */

/** releases.hashicorp.com layout: `<base>/<tool>/<version>/<tool>_<version>_linux_amd64.zip` */
export const defaultReleasesUrl = "https://releases.hashicorp.com";

/** HashiCorp publishes its release signing key here (linked from https://www.hashicorp.com/security) */
export const defaultSigningKeyUrl = "https://www.hashicorp.com/.well-known/pgp-key.txt";

/**
 * "HashiCorp Security <security@hashicorp.com>", the key that signs the SHA256SUMS of
 * every release since the April 2021 rotation (HCSEC-2021-12, key id 72D7468F). A key
 * fetched from the key URL is used only when its primary fingerprint equals this one.
 */
export const hashicorpSigningKeyFingerprint = "C874011F0AB405110D02105534365D9472D7468F";

/** `C874 011F …` or lower case → `C874011F…` */
export function normalizeFingerprint(fingerprint: string): string {
  return fingerprint.replace(/\s+/g, "").toUpperCase();
}
