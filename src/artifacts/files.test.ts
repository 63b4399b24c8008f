import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { digestOf, type Descriptor } from '../oci/index.js';
import { checkRelativePath, containedPath, hashFile, listFiles } from './files.js';
import { ModelPack } from './media-types.js';
import { plannedPaths } from './pull.js';

const layer = (path: string | undefined, mediaType: string = ModelPack.weightRaw): Descriptor => ({
  mediaType,
  digest: digestOf(path ?? ''),
  size: 1,
  ...(path === undefined ? {} : { annotations: { [ModelPack.filepathAnnotation]: path } }),
});

describe('path safety', () => {
  it('accepts plain relative paths', () => {
    expect(checkRelativePath('model.joblib')).toBe('model.joblib');
    expect(checkRelativePath('a/b/c.bin')).toBe('a/b/c.bin');
    expect(checkRelativePath('..data')).toBe('..data'); // a name starting with dots is not a parent reference
  });

  it.each([
    ['/etc/passwd'],
    ['../x'],
    ['a/../../x'],
    ['a/..'],
    ['a//b'],
    ['./a'],
    ['a\\..\\b'],
    ['C:/x'],
    ['a\0b'],
    [''],
  ])('refuses %j', (p) => {
    expect(() => checkRelativePath(p)).toThrow();
  });

  it('refuses a manifest with an unsafe, missing, duplicate or archive path before writing anything', () => {
    expect(plannedPaths([layer('a'), layer('b/c')])).toEqual(['a', 'b/c']);
    expect(() => plannedPaths([layer('a'), layer('../b')])).toThrow(/'\.\.'/);
    expect(() => plannedPaths([layer('/abs')])).toThrow(/absolute/);
    expect(() => plannedPaths([layer(undefined)])).toThrow(/org.cncf.model.filepath/);
    expect(() => plannedPaths([layer('a'), layer('a')])).toThrow(/two layers/);
    expect(() => plannedPaths([layer('w', ModelPack.weightRaw.replace('.raw', '.tar'))])).toThrow(/archive/);
  });

  it('refuses to write through a symlinked directory or onto a symlink', async () => {
    const root = await mkdtemp(join(tmpdir(), 'customs-path-'));
    const outside = await mkdtemp(join(tmpdir(), 'customs-outside-'));
    await symlink(outside, join(root, 'link'));
    await expect(containedPath(root, 'link/x')).rejects.toThrow(/escapes/);
    await symlink(join(outside, 'f'), join(root, 'f'));
    await expect(containedPath(root, 'f')).rejects.toThrow(/symlink/);
    await mkdir(join(root, 'ok'));
    expect(await containedPath(root, 'ok/x')).toMatch(/ok\/x$/);
  });
});

describe('listing and hashing', () => {
  it('lists files sorted, skips .git, refuses symlinks, and hashes by streaming', async () => {
    const root = await mkdtemp(join(tmpdir(), 'customs-list-'));
    await mkdir(join(root, 'sub'));
    await mkdir(join(root, '.git'));
    await writeFile(join(root, 'b.bin'), 'bbb');
    await writeFile(join(root, 'sub', 'a.json'), '{}');
    await writeFile(join(root, '.git', 'HEAD'), 'x');
    const files = await listFiles(root);
    expect(files.map((f) => f.relPath)).toEqual(['b.bin', 'sub/a.json']);
    expect(await hashFile(join(root, 'b.bin'))).toEqual({ digest: digestOf('bbb'), size: 3 });
    expect((await listFiles(join(root, 'b.bin')))[0]!.relPath).toBe('b.bin');
    await symlink('/etc/passwd', join(root, 'evil'));
    await expect(listFiles(root)).rejects.toThrow(/symlink/);
  });
});
