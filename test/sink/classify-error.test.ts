import { AxiosError } from 'axios';
import { describe, expect, it } from 'vitest';
import { classifyIngestError } from '../../src/sink/kusto/classify-error.js';
import { credentialFor } from '../../src/sink/kusto/connection.js';

/** An error shaped as the SDK rethrows axios failures. */
function httpError(status: number, data?: unknown): unknown {
  const e = new AxiosError(`Request failed with status code ${status}`, 'ERR_BAD_RESPONSE');
  (e as { response?: unknown }).response = { status, data };
  return e;
}
const adx = (code: string, message: string, permanent?: boolean) => ({ error: { code, message, '@message': message, ...(permanent === undefined ? {} : { '@permanent': permanent }) } });

describe('classifying ADX ingestion failures', () => {
  it.each([
    ['429 (ThrottlingError)', Object.assign(new Error('throttled'), { name: 'ThrottlingError', inner: httpError(429) }), 'retry', 'throttled'],
    ['500', httpError(500), 'retry', 'server'],
    ['503 marked not permanent', httpError(503, adx('ServiceUnavailable', 'busy', false)), 'retry', 'server'],
    ['408', httpError(408), 'retry', 'server'],
    ['400 marked not permanent', httpError(400, adx('BadRequest_Transient', 'x', false)), 'retry', 'server'],
    ['400 marked permanent (bad mapping)', httpError(400, adx('BadRequest_MappingReferenceWasNotFound', 'no mapping', true)), 'dead_letter', 'permanent'],
    ['403 without a body (a role not granted yet)', httpError(403), 'retry', 'auth'],
    ['401 (an expired token)', httpError(401), 'retry', 'auth'],
    ['connection refused, wrapped by the SDK cloud-info lookup', new Error('Failed to get cloud info for cluster http://127.0.0.1:1 - Error: connect ECONNREFUSED 127.0.0.1:1'), 'retry', 'network'],
    ['no token to be had', Object.assign(new Error('ManagedIdentityCredential: no response'), { name: 'CredentialUnavailableError' }), 'retry', 'auth'],
    ['413', httpError(413), 'split', 'too_large'],
    ['streaming disabled', httpError(400, adx('BadRequest_StreamingIngestionPolicyNotEnabled', "Streaming ingestion policy is not enabled for the table 'T'", true)), 'fallback', 'streaming_disabled'],
    ['connection reset', Object.assign(new AxiosError('socket hang up', 'ECONNRESET')), 'retry', 'network'],
    ['timeout', Object.assign(new AxiosError('timeout of 30000ms exceeded', 'ECONNABORTED')), 'retry', 'timeout'],
    ['anything else', new Error('surprise'), 'retry', 'unknown'],
  ])('%s → %s (%s)', (_name, err, action, reason) => {
    const v = classifyIngestError(err);
    expect([v.action, v.reason]).toEqual([action, reason]);
  });

  it('puts ADX code and message in the detail an operator reads', () => {
    const v = classifyIngestError(httpError(400, JSON.stringify(adx('BadRequest_MappingReferenceWasNotFound', "Mapping 'x' not found", true))));
    expect(v.detail).toBe("HTTP 400: BadRequest_MappingReferenceWasNotFound: Mapping 'x' not found");
  });
});

describe('credentials', () => {
  it('builds the configured @azure/identity credential', () => {
    expect(credentialFor({ auth: 'none' })).toBeNull();
    expect(credentialFor({ auth: 'workload-identity' }, { AZURE_CLIENT_ID: 'c', AZURE_TENANT_ID: 't', AZURE_FEDERATED_TOKEN_FILE: '/var/run/token' })!.constructor.name).toBe('WorkloadIdentityCredential');
    expect(credentialFor({ auth: 'managed-identity', clientId: 'c' }, {})!.constructor.name).toBe('ManagedIdentityCredential');
    expect(credentialFor({ auth: 'azure-cli' }, {})!.constructor.name).toBe('AzureCliCredential');
    expect(credentialFor({ auth: 'client-secret' }, { AZURE_CLIENT_ID: 'c', AZURE_TENANT_ID: 't', AZURE_CLIENT_SECRET: 's' })!.constructor.name).toBe('ClientSecretCredential');
    expect(credentialFor({ auth: 'default' }, {})!.constructor.name).toBe('ChainedTokenCredential');
  });

  it('says what a client secret needs, without printing any value', () => {
    expect(() => credentialFor({ auth: 'client-secret' }, { AZURE_CLIENT_ID: 'c' })).toThrow(/AZURE_TENANT_ID .* AZURE_CLIENT_SECRET/);
  });
});
