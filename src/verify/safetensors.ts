import { EndOfData, type ByteReader } from './byte-reader.js';
import { parseJsonNoDuplicates } from './strict-json.js';

/**
 * safetensors (huggingface/safetensors, the format's own `validate`): an 8-byte little-endian
 * header length, a JSON header, then the tensors' bytes. The header is checked rather than trusted:
 * a sane length, valid UTF-8 JSON object without duplicate keys, known dtypes, shapes of
 * non-negative integers, each tensor's byte range exactly numel x dtype size, ranges that tile the
 * data from 0 without gaps or overlaps, and a file that ends where the last range does.
 */
const MAX_HEADER = 100_000_000; // the reference implementation's limit
/** Bits per element. */
const DTYPE_BITS: Record<string, number> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64, C64: 64,
  F4: 4, F6_E2M3: 6, F6_E3M2: 6,
};

export async function checkSafetensors(r: ByteReader): Promise<string | undefined> {
  const n = (await r.bytes(8)).readBigUInt64LE(0);
  if (n < 2n || n > BigInt(MAX_HEADER)) return `safetensors header length ${n} is not between 2 and ${MAX_HEADER}`;
  const raw = await r.bytes(Number(n));
  if (raw[0] !== 0x7b) return 'safetensors header does not start with {';
  let header: unknown;
  try {
    header = parseJsonNoDuplicates(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (e) {
    return `safetensors header is not valid JSON: ${(e as Error).message}`;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return 'safetensors header is not a JSON object';
  const ranges: [number, number, string][] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info) || !Object.values(info).every((v) => typeof v === 'string')) return 'safetensors __metadata__ is not a map of strings';
      continue;
    }
    if (typeof info !== 'object' || info === null || Array.isArray(info)) return `safetensors tensor ${name} is not an object`;
    const { dtype, shape, data_offsets: offsets, ...rest } = info as Record<string, unknown>;
    if (Object.keys(rest).length > 0) return `safetensors tensor ${name} has unknown fields ${Object.keys(rest).join(', ')}`;
    const bits = typeof dtype === 'string' ? DTYPE_BITS[dtype] : undefined;
    if (bits === undefined) return `safetensors tensor ${name} has an unknown dtype ${String(dtype)}`;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return `safetensors tensor ${name} has a bad shape`;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) return `safetensors tensor ${name} has bad data_offsets`;
    const numelBits = (shape as number[]).reduce((a, d) => a * BigInt(d), 1n) * BigInt(bits);
    if (numelBits % 8n !== 0n || BigInt(offsets[1] - offsets[0]) !== numelBits / 8n) return `safetensors tensor ${name} spans ${offsets[1] - offsets[0]} bytes, its shape and dtype need ${numelBits / 8n}`;
    ranges.push([offsets[0], offsets[1], name]);
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let end = 0;
  for (const [begin, stop, name] of ranges) {
    if (begin !== end) return `safetensors tensor ${name} starts at ${begin}, not at ${end} where the previous one ends (gap or overlap)`;
    end = stop;
  }
  await r.skip(end).catch((e: unknown) => {
    // Only the end of the data is a finding; a failure to read it (the source's) is passed on as it came.
    throw e instanceof EndOfData ? new Error(`safetensors data is shorter than the ${end} bytes its header declares`) : e;
  });
  if (!(await r.atEnd())) return `safetensors file has bytes after the ${end} bytes its header declares`;
  return undefined;
}
