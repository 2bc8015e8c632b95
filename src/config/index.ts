export { configSchema, type Config } from './schema.js';
export { loadConfig, configReference, ConfigError, ENV_PREFIX } from './load.js';
export { outcomeSettingsOf, readOutcomeSettings, type OutcomeSettings } from './outcome-settings.js';
