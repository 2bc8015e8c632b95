import {
  AzureCliCredential, ChainedTokenCredential, ClientSecretCredential, EnvironmentCredential, ManagedIdentityCredential,
  WorkloadIdentityCredential, type TokenCredential,
} from '@azure/identity';
import { KustoConnectionStringBuilder } from 'azure-kusto-data';

export type AuthMethod = 'workload-identity' | 'managed-identity' | 'client-secret' | 'azure-cli' | 'default' | 'none';

export interface AuthSettings {
  auth: AuthMethod;
  clientId?: string | undefined;
  tenantId?: string | undefined;
}

/**
 * The credential for a configured method. Secrets are read by @azure/identity from the environment
 * (AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE) and never pass through hubble-adx's logs.
 */
export function credentialFor(s: AuthSettings, env: NodeJS.ProcessEnv = process.env): TokenCredential | null {
  const clientId = s.clientId ?? env.AZURE_CLIENT_ID;
  const tenantId = s.tenantId ?? env.AZURE_TENANT_ID;
  const tokenFilePath = env.AZURE_FEDERATED_TOKEN_FILE;
  const workload = () =>
    new WorkloadIdentityCredential({ ...(clientId ? { clientId } : {}), ...(tenantId ? { tenantId } : {}), ...(tokenFilePath ? { tokenFilePath } : {}) });
  switch (s.auth) {
    case 'none':
      return null;
    case 'workload-identity':
      return workload();
    case 'managed-identity':
      return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
    case 'client-secret': {
      const secret = env.AZURE_CLIENT_SECRET;
      if (!clientId || !tenantId || !secret) {
        throw new Error('auth client-secret needs AZURE_CLIENT_ID (or sink.kusto.clientId), AZURE_TENANT_ID (or sink.kusto.tenantId) and AZURE_CLIENT_SECRET');
      }
      return new ClientSecretCredential(tenantId, clientId, secret);
    }
    case 'azure-cli':
      return new AzureCliCredential(tenantId ? { tenantId } : {});
    case 'default':
      // DefaultAzureCredential minus the developer-tool credentials: what a production pod may use.
      // Workload identity joins the chain only where its token file is mounted.
      return new ChainedTokenCredential(
        new EnvironmentCredential(),
        ...(tokenFilePath ? [workload()] : []),
        clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential(),
      );
  }
}

export function connectionFor(url: string, credential: TokenCredential | null): KustoConnectionStringBuilder {
  // A plain http://127.0.0.1 URL with no credential is a local test server, trusted by the SDK.
  return credential ? KustoConnectionStringBuilder.withTokenCredential(url, credential) : new KustoConnectionStringBuilder(url);
}
