/** A minimal Prometheus text exposition (format 0.0.4) writer. */
export type Labels = Record<string, string>;

export interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: { labels: Labels; value: number }[];
}

export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

export function renderFamilies(families: Family[]): string {
  const out: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    out.push(`# HELP ${family.name} ${family.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    out.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
      out.push(`${family.name}${labels ? `{${labels}}` : ""} ${formatValue(sample.value)}`);
    }
  }
  return `${out.join("\n")}\n`;
}

/**
 * Writes exposition lines straight into one Buffer per render, so a scrape
 * sends bytes without encoding a string and no text of hundreds of KB lives
 * in the JS heap between samples (it would survive young-generation GCs and
 * grow the old generation). Each render gets a fresh buffer sized from the
 * last one: a slow scrape still sending the previous bytes is never
 * overwritten.
 */
export class ExpositionBuffer {
  private buffer: Buffer = Buffer.alloc(0);
  private length = 0;
  private lastLength = 4096;

  start(): void {
    this.buffer = Buffer.allocUnsafe(Math.ceil(this.lastLength * 1.25) + 1024);
    this.length = 0;
  }

  /** appends `text` (no newline) */
  write(text: string): void {
    // utf8 is at most 3 bytes per UTF-16 unit
    if (this.length + text.length * 3 > this.buffer.length) this.grow(text.length * 3);
    this.length += this.buffer.write(text, this.length, "utf8");
  }

  /** appends `prefix` + the value + "\n" */
  sample(prefix: string, value: number): void {
    this.write(prefix);
    this.value(value);
  }

  /**
   * `count` lines: line i is prefixes[i] (a pre-encoded prefix, the views of
   * one buffer holding them back to back, so they are read from contiguous
   * memory), values[i] and "\n"; no string or object per line.
   */
  samplesFrom(prefixes: Uint8Array[], values: Float64Array, count: number): void {
    for (let i = 0; i < count; i++) {
      const prefix = prefixes[i] as Uint8Array;
      if (this.length + prefix.length > this.buffer.length) this.grow(prefix.length);
      this.buffer.set(prefix, this.length);
      this.length += prefix.length;
      this.value(values[i] as number);
    }
  }

  /** the value and "\n", stored byte by byte: formatValue's text is ASCII */
  private value(value: number): void {
    const text = formatValue(value);
    if (this.length + text.length + 1 > this.buffer.length) this.grow(text.length + 1);
    const buffer = this.buffer;
    let at = this.length;
    for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
    buffer[at++] = 0x0a;
    this.length = at;
  }

  finish(): Buffer {
    this.lastLength = this.length;
    return this.buffer.subarray(0, this.length);
  }

  private grow(needed: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + needed));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }
}
