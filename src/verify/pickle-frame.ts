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

/** The memo; a shadow run (see pickle-joblib.ts) writes to its own layer over its parent's. */
export class Memo {
  private readonly own = new Map<number, Val>();
  private added = 0;
  constructor(private readonly parent?: Memo) {}
  get size(): number {
    return (this.parent?.size ?? 0) + this.added;
  }
  has(i: number): boolean {
    return this.own.has(i) || (this.parent?.has(i) ?? false);
  }
  get(i: number): Val | undefined {
    return this.own.has(i) ? this.own.get(i) : this.parent?.get(i);
  }
  set(i: number, v: Val): void {
    if (!this.has(i)) {
      if (this.size >= MAX_MEMO) throw new Error(`pickle memo has more than ${MAX_MEMO} entries`);
      this.added++;
    }
    this.own.set(i, v);
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
