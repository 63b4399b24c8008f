/**
 * A pull-based reader over a stream of chunks, for scanners that walk a format byte by byte
 * without holding the whole blob: memory is one chunk plus what a caller asks `bytes()` for.
 */
export class EndOfData extends Error {
  constructor() {
    super('unexpected end of data');
  }
}

const EMPTY = Buffer.alloc(0);

export type Tap = (chunk: Buffer | null, offset: number) => void | Promise<void>;

export class ByteReader {
  private buf: Buffer = EMPTY;
  private off = 0;
  private done = false;
  /** Bytes consumed so far. */
  pos = 0;

  /** Bytes pulled from the source so far (the offset of the next pulled chunk). */
  private pulled = 0;
  private readonly taps = new Set<Tap>();

  constructor(private readonly pull: () => Promise<Buffer | null>) {}

  /**
   * Sees every chunk this reader pulls from now on, with its offset (null at the end), before the
   * reader uses it; a tap that awaits holds the reader back. For a second parse of the same bytes
   * that runs alongside the first (see pickle-joblib.ts). Returns the function that removes it.
   */
  tap(t: Tap): () => void {
    this.taps.add(t);
    return () => this.taps.delete(t);
  }

  /** What has been pulled but not consumed yet, and its offset. */
  buffered(): { data: Buffer; offset: number } {
    return { data: this.buf.subarray(this.off), offset: this.pos };
  }

  private async next(): Promise<Buffer | null> {
    const c = await this.pull();
    for (const t of [...this.taps]) await t(c, this.pulled);
    if (c !== null) this.pulled += c.length;
    return c;
  }

  static from(source: AsyncIterable<Uint8Array>): ByteReader {
    const it = source[Symbol.asyncIterator]();
    return new ByteReader(async () => {
      const r = await it.next();
      return r.done ? null : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    });
  }

  static ofBuffer(b: Buffer): ByteReader {
    let given = false;
    return new ByteReader(async () => (given ? null : ((given = true), b)));
  }

  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (this.done) return false;
      const c = await this.next();
      if (c === null) {
        this.done = true;
        return false;
      }
      this.buf = c;
      this.off = 0;
    }
    return true;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }

  /** Synchronous fast paths: undefined when the current chunk cannot serve the request. */
  tryByte(): number | undefined {
    if (this.off >= this.buf.length) return undefined;
    this.pos++;
    return this.buf[this.off++]!;
  }

  tryBytes(n: number): Buffer | undefined {
    if (this.off + n > this.buf.length) return undefined;
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    this.pos += n;
    return out;
  }

  async byte(): Promise<number> {
    if (this.off >= this.buf.length && !(await this.fill())) throw new EndOfData();
    this.pos++;
    return this.buf[this.off++]!;
  }

  /** Reads exactly n bytes; n is bounded by the caller (never a size taken from the data unchecked). */
  async bytes(n: number): Promise<Buffer> {
    if (this.off + n <= this.buf.length) {
      const out = this.buf.subarray(this.off, this.off + n);
      this.off += n;
      this.pos += n;
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw new EndOfData();
      const take = Math.min(need, this.buf.length - this.off);
      parts.push(this.buf.subarray(this.off, this.off + take));
      this.off += take;
      need -= take;
    }
    this.pos += n;
    return Buffer.concat(parts, n);
  }

  async skip(n: number): Promise<void> {
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw new EndOfData();
      const take = Math.min(need, this.buf.length - this.off);
      this.off += take;
      need -= take;
    }
    this.pos += n;
  }

  /** A newline-terminated line (the newline is consumed, not returned). */
  async line(max = 64 * 1024): Promise<string> {
    const parts: Buffer[] = [];
    let len = 0;
    for (;;) {
      if (!(await this.fill())) throw new EndOfData();
      const nl = this.buf.indexOf(0x0a, this.off);
      const end = nl === -1 ? this.buf.length : nl;
      parts.push(this.buf.subarray(this.off, end));
      len += end - this.off;
      this.pos += end - this.off;
      this.off = end;
      if (len > max) throw new Error(`line longer than ${max} bytes`);
      if (nl !== -1) {
        this.off++;
        this.pos++;
        return Buffer.concat(parts, len).toString('latin1');
      }
    }
  }

  /** Looks at the next n bytes (fewer at the end) without consuming them. */
  async peek(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n && (await this.fill())) {
      const take = Math.min(n - got, this.buf.length - this.off);
      parts.push(this.buf.subarray(this.off, this.off + take));
      this.off += take;
      got += take;
    }
    const head = Buffer.concat(parts, got);
    this.buf = Buffer.concat([head, this.buf.subarray(this.off)]);
    this.off = 0;
    return head;
  }

  /** Puts bytes back in front of what is left (a decoder that read past the end of its stream). */
  unread(b: Buffer): void {
    if (b.length === 0) return;
    this.buf = Buffer.concat([b, this.buf.subarray(this.off)]);
    this.off = 0;
    this.pos -= b.length;
  }

  /** The next piece of at most max bytes, or null at the end (for sub-readers). */
  async chunk(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const take = Math.min(max, this.buf.length - this.off);
    const out = this.buf.subarray(this.off, this.off + take);
    this.off += take;
    this.pos += take;
    return out;
  }

  /** A reader over the next `length` bytes; call `rest()` afterwards to skip what it left. */
  sub(length: number): { reader: ByteReader; rest: () => Promise<void> } {
    let remaining = length;
    const reader = new ByteReader(async () => {
      if (remaining <= 0) return null;
      const c = await this.chunk(remaining);
      if (c === null) throw new EndOfData();
      remaining -= c.length;
      return c;
    });
    return {
      reader,
      rest: async () => {
        const left = remaining;
        remaining = 0;
        await this.skip(left);
      },
    };
  }
}
