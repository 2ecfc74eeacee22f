import { describe, expect, it } from "vitest";
import { ExpositionBuffer } from "../../../scripts/lib/energy/exposition.ts";

describe("ExpositionBuffer", () => {
  it("writes lines as UTF-8 bytes, growing past its first size, special values as Prometheus spells them", () => {
    const out = new ExpositionBuffer();
    out.start();
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const prefix = `m{task="tâche-${i}",job="é\\"x"} `;
      out.sample(prefix, i / 3);
      lines.push(`${prefix}${String(i / 3)}`);
    }
    out.sample("nan ", Number.NaN);
    out.sample("inf ", Infinity);
    const bytes = out.finish();
    expect(bytes.toString("utf8")).toBe(`${lines.join("\n")}\nnan NaN\ninf +Inf\n`);
    expect(bytes.length).toBe(Buffer.byteLength(bytes.toString("utf8")));
  });

  it("gives every render its own bytes: a scrape still sending the last render is not overwritten", () => {
    const out = new ExpositionBuffer();
    out.start();
    out.write("first\n");
    const first = out.finish();
    out.start();
    out.write("again\n");
    const second = out.finish();
    expect(first.toString()).toBe("first\n");
    expect(second.toString()).toBe("again\n");
  });

  it("copies pre-encoded line prefixes as they are, growing past its first size", () => {
    const out = new ExpositionBuffer();
    out.start();
    const prefixes = Array.from({ length: 3000 }, (_, i) => `m{task="tâche-${i}",job="日本"} `);
    const values = Float64Array.from(prefixes, (_, i) => (i % 3 === 0 ? i * 1e21 : -i / 7));
    values[5] = -Infinity;
    out.samplesFrom(
      prefixes.map((p) => Buffer.from(p)),
      values,
      2999, // the last one is left out
    );
    const lines = prefixes.slice(0, 2999).map((p, i) => `${p}${i === 5 ? "-Inf" : String(values[i])}`);
    expect(out.finish().toString("utf8")).toBe(`${lines.join("\n")}\n`);
  });
});
