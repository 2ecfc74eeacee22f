/** Many files' state in one command (scripts/lib/remote/file-state.ts), as sha256sum and stat print it. */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fileStateCommand, isCurrent, parseFileStates } from "../../../scripts/lib/remote/file-state.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("file state", () => {
  it("quotes every path into one command", () => {
    expect(fileStateCommand(["/etc/a b", "/etc/c"])).toContain("sha256sum -- '/etc/a b' /etc/c");
  });

  it("pairs checksums with mode and owners; a file without either is unknown", () => {
    const out = [
      `${sha("one")}  /etc/one`,
      `${sha("two")}  /etc/two`,
      "--- hashistack file state ---",
      "/etc/one|640 root consul",
      "/etc/three|644 root root",
    ].join("\n");
    const states = parseFileStates(out);
    expect([...states.keys()]).toEqual(["/etc/one"]);
    expect(isCurrent(states.get("/etc/one"), "one", { mode: 0o640, owner: "root", group: "consul" })).toBe(true);
    expect(isCurrent(states.get("/etc/one"), "one", { mode: 0o644, owner: "root", group: "consul" })).toBe(false);
    expect(isCurrent(states.get("/etc/one"), "changed", { mode: 0o640, owner: "root", group: "consul" })).toBe(false);
    expect(isCurrent(states.get("/etc/two"), "two", { mode: 0o644 })).toBe(false);
    expect(parseFileStates(`${sha("one")}  /etc/one\n`).size).toBe(0);
  });
});
