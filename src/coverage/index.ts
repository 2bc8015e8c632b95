export { CoverageWindow, type CoverageOptions } from './coverage-window.js';
export { configHash } from './config-hash.js';
