import type { ByteReader } from './byte-reader.js';
import { PickleError, newFrame } from './pickle-frame.js';
import type { PickleScanner } from './pickle.js';
import { itemsOf } from './pickle-values.js';

/**
 * torch.save's legacy format (`_use_new_zipfile_serialization=False`, the default before PyTorch
 * 1.6; torch/serialization.py `_legacy_save`): pickles of the magic number, the protocol version
 * (1001) and sys_info, then the object (its persistent ids name the storages), then the sorted list
 * of storage keys, then for each key its element count (int64) and raw bytes. torch.load reads the
 * storages in the order of that list and checks each count against the pickle's; so does this.
 * Bytes after the last storage are not part of the format and are denied.
 */
export const TORCH_LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** Element sizes of torch's typed storage classes (torch/storage.py). */
export const STORAGE_ELEMENT_SIZE: Record<string, number> = {
  FloatStorage: 4, DoubleStorage: 8, HalfStorage: 2, BFloat16Storage: 2, LongStorage: 8, IntStorage: 4, ShortStorage: 2, CharStorage: 1,
  ByteStorage: 1, BoolStorage: 1, ComplexFloatStorage: 8, ComplexDoubleStorage: 16, QInt8Storage: 1, QUInt8Storage: 1, QInt32Storage: 4,
  QUInt4x2Storage: 1, QUInt2x4Storage: 1, UntypedStorage: 1,
};

const MAX_STORAGES = 1 << 20;

export async function scanLegacyTorchTail(s: PickleScanner, r: ByteReader, where: string): Promise<void> {
  const versionAt = r.pos;
  if ((await s.scanOne(r, where, newFrame(false))) !== 1001) throw new PickleError('legacy torch file whose protocol version is not 1001', versionAt);
  await s.scanOne(r, where, newFrame(false)); // sys_info
  await s.scanOne(r, where, newFrame(false)); // the object
  const storages = new Map(s.storages);
  const keysAt = r.pos;
  const keys = itemsOf(await s.scanOne(r, where, newFrame(false, MAX_STORAGES)));
  if (!keys || !keys.every((k): k is string => typeof k === 'string')) throw new PickleError('legacy torch file without a list of storage keys', keysAt);
  for (const key of keys) {
    const st = storages.get(key);
    if (!st) throw new PickleError(`legacy torch storage key ${key} is not named by the pickle`, keysAt);
    const at = r.pos;
    const n = (await r.bytes(8)).readBigInt64LE(0);
    if (n !== BigInt(st.numel)) throw new PickleError(`legacy torch storage ${key} holds ${n} elements, the pickle says ${st.numel}`, at);
    await r.skip(st.numel * STORAGE_ELEMENT_SIZE[st.type]!);
  }
  if (!(await r.atEnd())) throw new PickleError('bytes after the last storage of a legacy torch file', r.pos);
}
