/** The slice of pino that pull-through uses; any pino logger fits. */
export interface ProxyLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: ProxyLogger = { info() {}, warn() {}, error() {} };
