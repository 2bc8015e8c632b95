export * from './tables.js';
export { createTableCommand, schemaMarkdown } from './kusto.js';
export { avroSchema, avroMapping, jsonMapping, avroBranch } from './avro.js';
export { kqlFiles, functionCommands, functionDefinitions, type FunctionDefinition, mappingName, DEFAULT_TABLE_NAMES, type TableNames } from './kql.js';
