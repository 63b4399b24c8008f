import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_WRITE_BYTES, writeAllCapped } from './file-writes.js';

describe('writeAllCapped', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-writes-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A real file whose writev calls are recorded (sizes) on their way through. */
  async function recorded(name: string) {
    const fh = await open(join(dir, name), 'w+');
    const sizes: number[] = [];
    const writev = fh.writev.bind(fh);
    fh.writev = ((buffers: NodeJS.ArrayBufferView[], position?: number) => {
      sizes.push(buffers.reduce((a, b) => a + b.byteLength, 0));
      return writev(buffers, position);
    }) as typeof fh.writev;
    return { fh, sizes };
  }

  it('writes buffers of any sizes in order, no call over 1 MiB, at a position or appending', async () => {
    const parts = [randomBytes(3 * MAX_WRITE_BYTES + 5), randomBytes(10), randomBytes(MAX_WRITE_BYTES - 3), randomBytes(700_000)];
    const whole = Buffer.concat(parts);
    const { fh, sizes } = await recorded('positional');
    await fh.write(Buffer.from('head'), 0, 4, 0);
    expect(await writeAllCapped(fh, parts, 4)).toBe(whole.length);
    await fh.close();
    expect((await readFile(join(dir, 'positional'))).equals(Buffer.concat([Buffer.from('head'), whole]))).toBe(true);
    expect(Math.max(...sizes)).toBe(MAX_WRITE_BYTES);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(whole.length);

    const append = await recorded('append');
    await writeAllCapped(append.fh, [parts[0]!]);
    await writeAllCapped(append.fh, [parts[1]!]);
    await append.fh.close();
    expect((await readFile(join(dir, 'append'))).equals(Buffer.concat([parts[0]!, parts[1]!]))).toBe(true);
    expect(Math.max(...append.sizes)).toBeLessThanOrEqual(MAX_WRITE_BYTES);
  });
});
