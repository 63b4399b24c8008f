export { Console } from './console.js';
export type { ConsoleDeps } from './deps.js';
export type { PageContext } from './components.js';
export type { Viewer, ConsoleAction } from './viewer.js';
export type { AuditFilterText } from './pages/audit.js';
export { ASSETS } from './assets.js';
export { loginPage, barePage } from './pages/login.js';
export { MATERIAL } from './lineage-view.js';
