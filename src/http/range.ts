import { err } from '../oci/index.js';
import type { ByteRange } from '../storage/index.js';

/**
 * `Range: bytes=a-b | a- | -n` for blob GETs (RFC 9110). Multiple ranges are not
 * supported; like most registries we then answer with the whole blob.
 * Returns undefined for "whole blob"; throws RANGE_INVALID when unsatisfiable.
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined; // syntactically invalid: ignore (RFC 9110 14.1.1)
  }
  if (start >= size || size === 0) throw unsatisfiable(size);
  return { start, end };
}

const unsatisfiable = (size: number) => err('RANGE_INVALID', `range not satisfiable for a blob of ${size} bytes`, { size });

/** `Content-Range: <start>-<end>` of chunked uploads (the spec's form; `bytes ` prefix tolerated). */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw err('RANGE_INVALID', `invalid Content-Range: ${header.slice(0, 100)}`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw err('RANGE_INVALID', `invalid Content-Range: ${header.slice(0, 100)}`);
  return { start, end };
}

/** The spec's upload progress header: `Range: 0-<last byte>`. */
export const uploadRange = (size: number): string => `0-${Math.max(0, size - 1)}`;
