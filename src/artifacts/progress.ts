/** Progress of one phase (hashing, uploading, downloading) in bytes; the CLI draws it on a TTY. */
export interface Progress {
  begin(label: string, total: number): void;
  tick(bytes: number): void;
  end(): void;
}

export const silentProgress: Progress = { begin() {}, tick() {}, end() {} };
