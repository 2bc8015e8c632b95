export * from './tables.js';
export { createTableCommand, jsonMappingCommand, schemaMarkdown } from './kusto.js';
