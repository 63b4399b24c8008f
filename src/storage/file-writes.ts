import type { FileHandle } from 'node:fs/promises';

/**
 * The most one write syscall hands the kernel. Writes of 2 MiB and more into a
 * new file make ext4 (Linux 6.x large folios) ask for 2 MiB pages, and on a VM
 * that returns free memory to its host those are slow to come by. Measured on
 * the project's 2-core VM (`dd` of a new 1 GiB file): bs=1M 0.42-0.60 s,
 * bs=2M 3.3-4.2 s, of system time. A 1 MiB cap costs nothing elsewhere: a
 * thousand syscalls per GiB.
 */
export const MAX_WRITE_BYTES = 1024 * 1024;

/**
 * Writes all of `buffers`, in order, at `position` (or at the file's offset when
 * null), in writev calls of at most MAX_WRITE_BYTES, resuming after short writes.
 */
export async function writeAllCapped(fh: FileHandle, buffers: readonly Uint8Array[], position: number | null = null): Promise<number> {
  let total = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  const flush = async () => {
    let pending = batch;
    while (pending.length > 0) {
      const { bytesWritten } = await fh.writev(pending, position === null ? undefined : position + total);
      total += bytesWritten;
      pending = dropWritten(pending, bytesWritten);
    }
    batch = [];
    batchBytes = 0;
  };
  for (const buffer of buffers) {
    for (let offset = 0; offset < buffer.byteLength; ) {
      const take = Math.min(buffer.byteLength - offset, MAX_WRITE_BYTES - batchBytes);
      batch.push(offset === 0 && take === buffer.byteLength ? buffer : buffer.subarray(offset, offset + take));
      batchBytes += take;
      offset += take;
      if (batchBytes === MAX_WRITE_BYTES) await flush();
    }
  }
  if (batchBytes > 0) await flush();
  return total;
}

function dropWritten(buffers: Uint8Array[], n: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = n;
  for (const b of buffers) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}
