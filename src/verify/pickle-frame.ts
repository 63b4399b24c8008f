import type { Val } from './pickle-values.js';

// The unpickler state the scanner keeps per pickle (stack, marks, memo), and its errors.

/** A pickle that cannot be parsed: denied with the offset of the opcode (within its stream). */
export class PickleError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`${reason} at offset ${offset}`);
  }
}

const MAX_MEMO = 4 << 20;

const MISSING = Symbol('missing');

/**
 * The memo. A shadow run (pickle-joblib.ts) gets a layer over its parent that sees the parent as it
 * was when the layer was made: the parent keeps changing while the shadow runs alongside it, so it
 * hands each watching layer a key's old value before it overwrites or adds it.
 */
export class Memo {
  private readonly own = new Map<number, Val | typeof MISSING>();
  private readonly watchers = new Set<Memo>();
  private added = 0;
  private readonly base: number;
  constructor(private readonly parent?: Memo) {
    this.base = parent?.size ?? 0;
    parent?.watchers.add(this);
  }
  get size(): number {
    return this.base + this.added;
  }
  has(i: number): boolean {
    const v = this.own.get(i);
    return v !== undefined ? v !== MISSING : (this.parent?.has(i) ?? false);
  }
  get(i: number): Val | undefined {
    const v = this.own.get(i);
    if (v === MISSING) return undefined;
    return v !== undefined || this.own.has(i) ? (v as Val) : this.parent?.get(i);
  }
  set(i: number, v: Val): void {
    const existed = this.has(i);
    if (!existed && this.size >= MAX_MEMO) throw new Error(`pickle memo has more than ${MAX_MEMO} entries`);
    for (const w of this.watchers) if (!w.own.has(i)) w.own.set(i, existed ? this.get(i)! : MISSING);
    if (!existed) this.added++;
    this.own.set(i, v);
  }
  /** A layer stops watching when its shadow run ends. */
  detach(): void {
    this.parent?.watchers.delete(this);
  }
}

/** One unpickler's state: what a shadow run copies. */
export interface Frame {
  stack: Val[];
  marks: number[];
  memo: Memo;
  /** joblib's NumpyUnpickler reads array bytes after a wrapper's BUILD; plain pickle.load does not. */
  joblib: boolean;
  /** joblib's wrapper class was imported in this pickle. */
  wrapperImported: boolean;
  /** A shadow run: what plain pickle.load would do with joblib's array bytes. Stops quietly where Python would raise. */
  shadow?: string;
  /** Where the shadow run starts in the outer stream (for findings). */
  shadowBase?: number;
  keep: number;
}

export const newFrame = (joblib: boolean, keep = 64): Frame => ({ stack: [], marks: [], memo: new Memo(), joblib, wrapperImported: false, keep });

/** Python raises here; a shadow run just stops. */
export class PickleHalt extends Error {}
