/**
 * The per-host binary listing (scripts/lib/stages/binary-listing.ts): a recorded
 * checksum counts only while the file's identity is the one recorded with it.
 */
import { describe, expect, it } from "vitest";
import { listingContent, parseListing } from "../../../scripts/lib/stages/binary-listing.ts";

const sum = (c: string) => c.repeat(64);
const stat = ["/usr/local/bin/consul|10 1.5 1.5 7 755 root root", "/usr/local/bin/nomad|20 2.5 2.5 8 755 root root"].join("\n");
const sums = new Map([
  ["/usr/local/bin/nomad", sum("b")],
  ["/usr/local/bin/consul", sum("a")],
  ["/usr/local/bin/vault", sum("c")], // not on the host: not listed
]);

describe("binary listing", () => {
  it("records the verified checksums with the identities stat reports, sorted by path", () => {
    expect(listingContent(sums, stat)).toBe(
      `${sum("a")} /usr/local/bin/consul|10 1.5 1.5 7 755 root root\n${sum("b")} /usr/local/bin/nomad|20 2.5 2.5 8 755 root root\n`,
    );
  });

  it("trusts a recorded checksum only while the identity is unchanged", () => {
    const listing = listingContent(sums, stat);
    const changed = stat.replace("2.5 2.5 8", "2.5 3.1 8"); // nomad's ctime moved: written, chmod'ed or chown'ed
    const parsed = parseListing(`${listing}--- hashistack stat ---\n${changed}\n`);
    expect([...parsed.keys()]).toEqual(["/usr/local/bin/consul"]);
    expect(parsed.get("/usr/local/bin/consul")?.sha256).toBe(sum("a"));
  });

  it("knows nothing without the separator, for malformed lines or for files gone since", () => {
    expect(parseListing(listingContent(sums, stat)).size).toBe(0);
    expect(parseListing(`not a listing\n--- hashistack stat ---\n${stat}\n`).size).toBe(0);
    expect(parseListing(`${listingContent(sums, stat)}--- hashistack stat ---\n`).size).toBe(0);
  });
});
