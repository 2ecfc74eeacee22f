/**
 * DigitalOcean identifies SSH keys by the MD5 fingerprint of the public key
 * blob (the base64 part of `ssh-ed25519 AAAA… comment`), as colon-separated hex.
 * Computing it locally lets us look the key up before uploading it.
 */
import { createHash } from "node:crypto";
import { InputError } from "../../errors.ts";

export function md5Fingerprint(publicKey: string): string {
  const parts = publicKey.trim().split(/\s+/);
  const blob = parts[1];
  if (!parts[0]?.startsWith("ssh-") && !parts[0]?.startsWith("ecdsa-")) {
    throw new InputError(`Not an OpenSSH public key (starts with '${parts[0]?.slice(0, 20) ?? ""}').`, {
      hint: "Expected a line such as 'ssh-ed25519 AAAA… comment'.",
    });
  }
  const bytes = Buffer.from(blob ?? "", "base64");
  // the blob starts with its own key type, length-prefixed: a cheap integrity check
  const typeLength = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  if (typeLength <= 0 || bytes.subarray(4, 4 + typeLength).toString() !== parts[0]) {
    throw new InputError("The public key's base64 blob is damaged (its embedded key type does not match).", {
      hint: "Regenerate the key pair or copy the .pub file again.",
    });
  }
  return createHash("md5").update(bytes).digest("hex").match(/../g)!.join(":");
}
