// Composition root: the one place that picks concrete implementations. (Being written.)
export type GateMode = 'enforce' | 'audit' | 'off';
export interface ServeOptions {
  /** HOST:PORT; port 0 picks a free port. Default 127.0.0.1:5000. */
  listen?: string;
  dataDir: string;
  configFile?: string;
  /** Overrides the mode of every policy rule. */
  gate?: GateMode;
  /** NAME=URL anonymous upstreams added to the configured ones. */
  upstreams?: Record<string, string>;
  logLevel?: 'silent' | 'error' | 'warn' | 'info' | 'debug';
}
export interface RunningServer {
  /** http://HOST:PORT actually bound. */
  readonly url: string;
  close(): Promise<void>;
}
export declare function startServer(opts: ServeOptions): Promise<RunningServer>;
