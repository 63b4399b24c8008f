import { describe, expect, it } from 'vitest';
import { dirMd5 } from './dvc.js';

describe('dvc', () => {
  it('computes a directory md5 as DVC 3 does (value from `dvc add` of the same three files)', () => {
    const files = [
      { relPath: 'sub/c', md5: 'a8a78d0ff555c931f045b6f448129846' },
      { relPath: 'b.txt', md5: '401b30e3b8b5d629635a5c613cdb7919' },
      { relPath: 'a.b', md5: '009520053b00386d1173f3988c55d192' },
    ];
    expect(dirMd5(files)).toBe('e7829c8d81dcecbf905316b12aa0318d');
    expect(dirMd5(files.slice(1))).not.toBe('e7829c8d81dcecbf905316b12aa0318d');
  });
});
