/**
 * An LZMA decoder, written from the LZMA SDK's reference decoder (LzmaSpec.cpp, public domain) for
 * joblib's lzma and xz containers: no npm package decodes LZMA as a stream in pure JavaScript on
 * Node 20 without fetching native code at run time. It decodes one symbol at a time and pauses
 * when fewer than IN_MARGIN input bytes remain (no symbol reads more), or when a slice of output
 * is ready, so the caller streams: memory is the dictionary (the window every match refers to,
 * capped at MAX_DICT) plus one slice. Every bound is checked; corrupt input throws LzmaError.
 */
export class LzmaError extends Error {}

/** No LZMA symbol consumes more input than this (a bit per decoded binary decision at most). */
export const IN_MARGIN = 64;
export const MAX_DICT = 64 << 20;
const OUT_SLICE = 1 << 20;

const PROB_INIT = 1024;
const N_STATES = 12;
const POS_BITS_MAX = 4;
const END_POS_MODEL = 14;
const FULL_DISTANCES = 128;
const ALIGN_BITS = 4;
const MATCH_MIN = 2;

/** Len decoder probabilities: choice, choice2, low[16][8], mid[16][8], high[256]. */
const LEN_LOW = 2;
const LEN_MID = LEN_LOW + (16 << 3);
const LEN_HIGH = LEN_MID + (16 << 3);
const LEN_SIZE = LEN_HIGH + 256;

export interface LzmaProps {
  lc: number;
  lp: number;
  pb: number;
}

export function decodeProps(b: number): LzmaProps {
  if (b >= 9 * 5 * 5) throw new LzmaError('lzma: bad properties byte');
  return { lc: b % 9, lp: Math.floor(b / 9) % 5, pb: Math.floor(b / 45) };
}

export class LzmaDecoder {
  // Output window (the dictionary).
  private readonly win: Uint8Array;
  private wpos = 0;
  private full = false;
  total = 0;
  private flushed = 0;
  /** `total` at the last dictionary reset: positions (for pb and lp) count from there. */
  private base = 0;
  // Range decoder over `input` from `ip`.
  private input: Uint8Array = new Uint8Array(0);
  private ip = 0;
  private range = 0;
  private code = 0;
  // Model.
  private props: LzmaProps = { lc: 3, lp: 0, pb: 2 };
  private lit = new Uint16Array(0);
  private readonly p = {
    isMatch: new Uint16Array(N_STATES << POS_BITS_MAX),
    isRep: new Uint16Array(N_STATES),
    isRepG0: new Uint16Array(N_STATES),
    isRepG1: new Uint16Array(N_STATES),
    isRepG2: new Uint16Array(N_STATES),
    isRep0Long: new Uint16Array(N_STATES << POS_BITS_MAX),
    posSlot: new Uint16Array(4 << 6),
    posSpecial: new Uint16Array(1 + FULL_DISTANCES - END_POS_MODEL),
    align: new Uint16Array(1 << ALIGN_BITS),
    len: new Uint16Array(LEN_SIZE),
    repLen: new Uint16Array(LEN_SIZE),
  };
  private state = 0;
  private rep0 = 0;
  private rep1 = 0;
  private rep2 = 0;
  private rep3 = 0;
  /** Set when the end marker was decoded. */
  ended = false;

  constructor(readonly dictSize: number) {
    if (dictSize > MAX_DICT) throw new LzmaError(`lzma: dictionary of ${dictSize} bytes is larger than the ${MAX_DICT} this scanner allows`);
    this.win = new Uint8Array(Math.max(dictSize, 4096));
    this.slice = Math.min(OUT_SLICE, this.win.length - 512);
  }

  /** Output held before `take()` must be called: below the window, so nothing is overwritten first. */
  readonly slice: number;

  /** New literal context (lc/lp/pb) and a reset state: LZMA2's state resets, and every LZMA stream's start. */
  resetState(props?: LzmaProps): void {
    if (props) this.props = props;
    const litSize = 0x300 << (this.props.lc + this.props.lp);
    if (this.lit.length !== litSize) this.lit = new Uint16Array(litSize);
    this.lit.fill(PROB_INIT);
    for (const a of Object.values(this.p)) a.fill(PROB_INIT);
    this.state = 0;
    this.rep0 = this.rep1 = this.rep2 = this.rep3 = 0;
    this.ended = false;
  }

  /** LZMA2's dictionary reset: later matches may not reach back before it. */
  resetDict(): void {
    if (this.total !== this.flushed) throw new LzmaError('lzma: dictionary reset with output not taken');
    this.wpos = 0;
    this.full = false;
    this.base = this.total;
  }

  /** Starts a range coder on the first five bytes of `input` (the caller provides at least five). */
  initRange(input: Uint8Array, at: number): number {
    if (input[at] !== 0) throw new LzmaError('lzma: corrupt stream (range coder start)');
    this.code = 0;
    for (let i = 1; i < 5; i++) this.code = (this.code << 8) | input[at + i]!;
    this.range = -1; // 0xffffffff
    if (this.code === this.range) throw new LzmaError('lzma: corrupt stream (range coder start)');
    return at + 5;
  }

  get rangeFinished(): boolean {
    return this.code === 0;
  }

  /** Raw bytes (an LZMA2 uncompressed chunk) pass through the dictionary. */
  putRaw(b: Uint8Array): void {
    for (let i = 0; i < b.length; i++) this.put(b[i]!);
  }

  /**
   * Decodes symbols from input[at..] until `limit` bytes were produced (undefined: until the end
   * marker), the output slice is full, or fewer than IN_MARGIN input bytes are left and `final` is
   * false. Returns the input position reached.
   */
  decode(input: Uint8Array, at: number, final: boolean, limit: number | undefined): number {
    this.input = input;
    this.ip = at;
    const { isMatch, isRep, isRepG0, isRepG1, isRepG2, isRep0Long } = this.p;
    const pbMask = (1 << this.props.pb) - 1;
    while (!this.ended && (limit === undefined || limit > 0) && this.total - this.flushed < this.slice && (final || input.length - this.ip >= IN_MARGIN)) {
      const posState = (this.total - this.base) & pbMask;
      const before = this.total;
      if (this.bit(isMatch, (this.state << POS_BITS_MAX) + posState) === 0) {
        this.literal();
        this.state = this.state < 4 ? 0 : this.state < 10 ? this.state - 3 : this.state - 6;
      } else {
        let len: number;
        if (this.bit(isRep, this.state) !== 0) {
          if (this.wpos === 0 && !this.full) throw new LzmaError('lzma: corrupt stream (repeat before any output)');
          if (this.bit(isRepG0, this.state) === 0) {
            if (this.bit(isRep0Long, (this.state << POS_BITS_MAX) + posState) === 0) {
              this.state = this.state < 7 ? 9 : 11;
              this.put(this.byteAt(this.rep0 + 1));
              if (limit !== undefined) limit -= 1;
              continue;
            }
          } else {
            let dist: number;
            if (this.bit(isRepG1, this.state) === 0) dist = this.rep1;
            else {
              if (this.bit(isRepG2, this.state) === 0) dist = this.rep2;
              else {
                dist = this.rep3;
                this.rep3 = this.rep2;
              }
              this.rep2 = this.rep1;
            }
            this.rep1 = this.rep0;
            this.rep0 = dist;
          }
          len = this.length(this.p.repLen, posState);
          this.state = this.state < 7 ? 8 : 11;
        } else {
          this.rep3 = this.rep2;
          this.rep2 = this.rep1;
          this.rep1 = this.rep0;
          len = this.length(this.p.len, posState);
          this.state = this.state < 7 ? 7 : 10;
          this.rep0 = this.distance(len);
          if (this.rep0 === 0xffffffff) {
            if (!this.rangeFinished) throw new LzmaError('lzma: corrupt stream (end marker)');
            this.ended = true;
            break;
          }
          if (this.rep0 >= this.dictSize || !(this.rep0 < this.wpos || this.full)) throw new LzmaError('lzma: corrupt stream (match distance beyond the dictionary)');
        }
        len += MATCH_MIN;
        if (limit !== undefined && len > limit) throw new LzmaError('lzma: corrupt stream (match beyond the declared size)');
        for (let i = 0; i < len; i++) this.put(this.byteAt(this.rep0 + 1));
      }
      if (limit !== undefined) limit -= this.total - before;
    }
    return this.ip;
  }

  /** The output produced since the last call (copied out of the window). */
  take(): Buffer {
    const n = this.total - this.flushed;
    const out = Buffer.allocUnsafe(n);
    const size = this.win.length;
    let start = (this.wpos - n + size) % size;
    for (let o = 0; o < n; ) {
      const run = Math.min(n - o, size - start);
      out.set(this.win.subarray(start, start + run), o);
      o += run;
      start = 0;
    }
    this.flushed = this.total;
    return out;
  }

  private put(b: number): void {
    this.win[this.wpos++] = b;
    if (this.wpos === this.win.length) {
      this.wpos = 0;
      this.full = true;
    }
    this.total++;
    if (this.total - this.flushed > this.win.length) throw new LzmaError('lzma: output slice larger than the dictionary');
  }

  private byteAt(dist: number): number {
    return this.win[dist <= this.wpos ? this.wpos - dist : this.win.length - dist + this.wpos]!;
  }

  private readByte(): number {
    if (this.ip >= this.input.length) throw new LzmaError('lzma: compressed data ends early');
    return this.input[this.ip++]!;
  }

  // range and code are kept as int32 (small integers to V8, no boxed doubles); compared unsigned via ^ 0x80000000.
  private bit(probs: Uint16Array, i: number): number {
    const v = probs[i]!;
    const bound = ((this.range >>> 11) * v) | 0;
    let symbol: number;
    if ((this.code ^ 0x80000000) < (bound ^ 0x80000000)) {
      probs[i] = v + ((2048 - v) >>> 5);
      this.range = bound;
      symbol = 0;
    } else {
      probs[i] = v - (v >>> 5);
      this.code = (this.code - bound) | 0;
      this.range = (this.range - bound) | 0;
      symbol = 1;
    }
    if (this.range >>> 0 < 0x1000000) {
      this.range <<= 8;
      this.code = (this.code << 8) | this.readByte();
    }
    return symbol;
  }

  private direct(n: number): number {
    let res = 0;
    for (; n > 0; n--) {
      this.range = this.range >>> 1;
      let t = 0;
      if ((this.code ^ 0x80000000) >= (this.range ^ 0x80000000)) {
        this.code = (this.code - this.range) | 0;
        t = 1;
      }
      if (this.range >>> 0 < 0x1000000) {
        this.range <<= 8;
        this.code = (this.code << 8) | this.readByte();
      }
      res = (res << 1) | t;
    }
    return res >>> 0;
  }

  private tree(probs: Uint16Array, base: number, bits: number): number {
    let m = 1;
    for (let i = 0; i < bits; i++) m = (m << 1) + this.bit(probs, base + m);
    return m - (1 << bits);
  }

  private reverse(probs: Uint16Array, base: number, bits: number): number {
    let m = 1;
    let sym = 0;
    for (let i = 0; i < bits; i++) {
      const b = this.bit(probs, base + m);
      m = (m << 1) + b;
      sym |= b << i;
    }
    return sym;
  }

  private literal(): void {
    const { lc, lp } = this.props;
    const prev = this.wpos === 0 && !this.full ? 0 : this.byteAt(1);
    const litState = (((this.total - this.base) & ((1 << lp) - 1)) << lc) + (prev >>> (8 - lc));
    const base = 0x300 * litState;
    let symbol = 1;
    if (this.state >= 7) {
      let match = this.byteAt(this.rep0 + 1);
      do {
        const matchBit = (match >>> 7) & 1;
        match <<= 1;
        const b = this.bit(this.lit, base + ((1 + matchBit) << 8) + symbol);
        symbol = (symbol << 1) | b;
        if (matchBit !== b) break;
      } while (symbol < 0x100);
    }
    while (symbol < 0x100) symbol = (symbol << 1) | this.bit(this.lit, base + symbol);
    this.put(symbol - 0x100);
  }

  private length(probs: Uint16Array, posState: number): number {
    if (this.bit(probs, 0) === 0) return this.tree(probs, LEN_LOW + (posState << 3), 3);
    if (this.bit(probs, 1) === 0) return 8 + this.tree(probs, LEN_MID + (posState << 3), 3);
    return 16 + this.tree(probs, LEN_HIGH, 8);
  }

  private distance(len: number): number {
    const lenState = Math.min(len, 3);
    const slot = this.tree(this.p.posSlot, lenState << 6, 6);
    if (slot < 4) return slot;
    const direct = (slot >>> 1) - 1;
    let dist = ((2 | (slot & 1)) << direct) >>> 0;
    if (slot < END_POS_MODEL) dist += this.reverse(this.p.posSpecial, dist - slot, direct);
    else {
      dist = (dist + ((this.direct(direct - ALIGN_BITS) << ALIGN_BITS) >>> 0)) >>> 0;
      dist = (dist + this.reverse(this.p.align, 0, ALIGN_BITS)) >>> 0;
    }
    return dist >>> 0;
  }
}
